"""AIGQ-Direct generation: serialised user context -> a ranked list of K queries.

`build_prompt` is the one owner of the prompt format (training and serving both call it).
`DirectGenerator` loads a model directory and generates in batches (left padding, KV cache,
sampling with a repetition penalty); `parse_list` turns raw text into distinct, normalised,
valid queries; `complete_list` fills a shortfall from a fallback and marks it. No Feast or
server import here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.lists import as_list
from core.text import valid_query
from models.base_lm import CONTEXT, EOS, LIST, SPECIAL_TOKENS, load
from models.grammar import QueryGrammar, mask_logits, separator_id

SEPARATOR = " | "


def build_prompt(
    ctx: Mapping, category_names: Mapping[str, str], is_shopping: Callable[[str], bool] | None = None
) -> str:
    """A compact text rendering of the `direct_generation_v1` features of one user. With
    `is_shopping` (the catalogue's validity), only searches that name something the shop sells
    reach the prompt: "buy now" or "ignore previous instructions" typed into the search box
    neither steer the generator nor push a real search out of the context."""

    def searches(values, n: int) -> str:
        kept = [q for q in as_list(values) if is_shopping is None or (isinstance(q, str) and is_shopping(q))]
        return "; ".join(kept[:n]) or "none"

    def cats(ids, weights=None, n=4) -> str:
        ids = as_list(ids)[:n]
        names = [category_names.get(c, c) for c in ids]
        if weights is None:
            return "; ".join(names) or "none"
        ws = as_list(weights)
        return "; ".join(f"{name} {round(100 * w)}" for name, w in zip(names, ws)) or "none"

    profile = " ".join(str(ctx.get(k)) for k in ("gender", "age_band") if ctx.get(k) is not None) or "unknown"
    tier = ctx.get("city_tier")
    parts = [
        f"user {profile}" + (f" tier{int(tier)}" if tier is not None and not _isnan(tier) else ""),
        f"hour {int(ctx.get('hour_of_day') or 0)}",
        f"interests {cats(ctx.get('top_categories_30d'), ctx.get('top_category_weights_30d'))}",
        f"week {cats(ctx.get('top_categories_7d'), ctx.get('top_category_weights_7d'), 3)}",
        f"recent {searches(ctx.get('recent_queries'), 5)}",
        f"clicked {cats(_dedupe(as_list(ctx.get('recent_click_categories'))), n=3)}",
        f"session {searches(ctx.get('session_queries'), 3)}",
    ]
    return CONTEXT + " | ".join(parts) + LIST


SCOPES = ("all", "interests", "quota")
SCOPE_FEATURES = ("top_categories_30d", "top_categories_7d", "recent_click_categories")


def interest_scope(ctx: Mapping, k: int, capped: bool) -> dict[str, int]:
    """Category -> most queries of it in the list, over the categories a user context names (the
    features `build_prompt` renders as interests, week and clicked). Capped: a 30-day interest
    of weight w takes max(1, round(w k)), any other named category one; else each takes up to k."""
    named = dict.fromkeys(c for f in SCOPE_FEATURES for c in as_list(ctx.get(f)) if isinstance(c, str))
    if not capped:
        return dict.fromkeys(named, k)
    weights = dict(zip(as_list(ctx.get("top_categories_30d")), as_list(ctx.get("top_category_weights_30d"))))
    return {c: max(1, round(float(weights.get(c) or 0.0) * k)) for c in named}


def format_completion(queries: Sequence[str]) -> str:
    return " " + SEPARATOR.join(queries) + EOS


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _dedupe(xs: Sequence) -> list:
    out = []
    for x in xs:
        if x not in out:
            out.append(x)
    return out


def clean_query(text: str) -> str | None:
    """One generated query, special tokens removed, as a valid normalised query (or None)."""
    for tok in SPECIAL_TOKENS:
        text = text.replace(tok, " ")
    return valid_query(text)


def candidates(text: str) -> list[str]:
    """Distinct well-formed query strings of a completion, in order (before validity checks)."""
    out: list[str] = []
    text = text.split(EOS)[0]
    for tok in SPECIAL_TOKENS:  # a stray special token separates queries (and contains "|")
        text = text.replace(tok, "|")
    for piece in text.split("|"):
        q = clean_query(piece)
        if q is not None and q not in out:
            out.append(q)
    return out


def parse_list(
    text: str, k: int, is_valid: Callable[[str], bool] | None = None, blocklist: Sequence[str] = ()
) -> list[str]:
    """Up to k distinct acceptable queries from a generated completion, in order: well formed,
    not blocklisted and (when a validator is given) valid."""
    out = [q for q in candidates(text) if not any(b in q for b in blocklist) and (is_valid is None or is_valid(q))]
    return out[:k]


def vote(lists: Sequence[Sequence[str]]) -> list[str]:
    """One ranked list from several: each list credits its query at rank r with 1 / (r + 1);
    ties keep the order of first appearance."""
    score: dict[str, float] = {}
    for ranked in lists:
        for r, q in enumerate(ranked):
            score[q] = score.get(q, 0.0) + 1.0 / (r + 1)
    return sorted(score, key=lambda q: -score[q])  # stable: first appearance breaks ties


def complete_list(parsed: Sequence[str], fallback: Sequence[str], k: int) -> tuple[list[str], list[str]]:
    """Exactly k distinct queries: the parsed ones, then the fallback's; sources say which."""
    queries, sources = list(parsed[:k]), ["model"] * min(len(parsed), k)
    for q in fallback:
        if len(queries) == k:
            break
        if q not in queries:
            queries.append(q)
            sources.append("fallback")
    return queries, sources


@dataclass
class GenerationConfig:
    k: int = 8
    max_new_tokens: int = 72
    do_sample: bool = True
    # low: a list of the model's likeliest queries (with the grammar no repeats or loops follow);
    # measured in benchmarks/bench_decoding.py
    temperature: float = 0.3
    top_p: float = 0.95
    repetition_penalty: float = 1.05
    batch_size: int = 32
    seed: int = 0
    # completions sampled per prompt; with more than one, their queries vote (rank-discounted)
    # into one list: the model's consensus rather than one draw, and fewer shortfalls
    num_samples: int = 1
    # with a vocabulary given, the list may only spell its queries, each once, exactly k of them
    constrained: bool = True
    # constrained lists with the vocabulary's categories known: "interests" scopes each list to
    # the categories its user context names (interests, the week's, clicked; any category when it
    # names none); "quota" also caps each category at its share of the user's 30-day interest
    # (at least one query) until all are full; "all" leaves every vocabulary query open
    scope: str = "quota"
    # a scoped list's last `explore` queries may come from any category: the model's own reach
    # beyond the user's named interests (serendipity), at the positions looked at least
    explore: int = 0


@dataclass
class GeneratedList:
    queries: list[str]  # exactly k
    sources: list[str]  # "model" or "fallback", per query
    n_parsed: int  # usable queries the model produced (at most k)
    n_candidates: int  # well-formed distinct strings before validity and blocklist filtering
    n_valid: int = 0  # of those, the valid and allowed ones
    raw: str = field(repr=False, default="")

    @property
    def model_queries(self) -> list[str]:
        """The queries the model itself wrote (not the fallback fill)."""
        return [q for q, s in zip(self.queries, self.sources) if s == "model"]

    @property
    def parse_failed(self) -> bool:
        return self.n_parsed == 0


NUCLEUS_CAP = 128  # the nucleus is looked for among the 128 likeliest tokens (a full sort costs 4 ms a step)


def sample_nucleus(logits: torch.Tensor, top_p: float, generators: Sequence | None = None) -> torch.Tensor:  # noqa: F821
    """One token per row from the smallest set of likeliest tokens whose probability reaches
    top_p (nucleus sampling), by the Gumbel-max trick (multinomial is slow on CPU). With one
    torch.Generator per row, a row's draw does not depend on what else shares its batch."""
    import torch

    k = min(NUCLEUS_CAP, logits.shape[-1]) if top_p < 1.0 else logits.shape[-1]
    top, index = logits.topk(k, dim=-1)
    if top_p < 1.0:
        p = (top - logits.logsumexp(-1, keepdim=True)).exp()
        outside = (p.cumsum(-1) - p) >= top_p  # the mass before this token already reached top_p
        top = top.masked_fill(outside, float("-inf"))
    if generators is None:
        uniform = torch.rand_like(top)
    else:  # noise per token id, not per rank: a near-tie ordered differently draws the same token
        uniform = torch.stack([torch.rand(logits.shape[-1], generator=g) for g in generators]).gather(1, index)
    gumbel = -torch.log(-torch.log(uniform.clamp_(1e-10, 1.0)))
    return index.gather(1, (top + gumbel).argmax(-1, keepdim=True)).squeeze(1)


def row_generators(prompts: Sequence[str], seed: int, sample_ids: Sequence[int] | None = None) -> list:
    """One random generator per row, seeded by the seed, the prompt's text and the row's sample
    number (the samples of one prompt differ): a list depends on its prompt alone, not on its
    batch, so every server, and the nearline job, write the same list for the same user."""
    import torch

    out = []
    for i, p in enumerate(prompts):
        sample = sample_ids[i] if sample_ids is not None else 0
        digest = hashlib.blake2b(f"{seed}|{sample}|{p}".encode(), digest_size=8).digest()
        out.append(torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1)))
    return out


def model_version(model_dir: Path) -> str:
    """name@mtime: a retrained model in the same directory is a new version in the logs."""
    return f"{model_dir.name}@{int((model_dir / 'config.json').stat().st_mtime)}"


class DirectGenerator:
    """Loads a (merged) model directory; generates lists for many prompts in batches."""

    def __init__(
        self,
        model_dir: str | Path,
        config: GenerationConfig | None = None,
        is_valid: Callable[[str], bool] | None = None,
        blocklist: Sequence[str] = (),
        vocabulary: Sequence[str] = (),
        category_of: Mapping[str, str] | None = None,
    ):
        """`category_of` (query -> category) lets lists be scoped to categories (`config.scope`)."""
        self.config = config or GenerationConfig()
        if self.config.scope not in SCOPES:
            raise ValueError(f"GenerationConfig.scope: {self.config.scope!r} is not one of {' | '.join(SCOPES)}")
        self.model_dir = Path(model_dir)
        self.model, self.tokenizer = load(self.model_dir)
        self.is_valid, self.blocklist = is_valid, tuple(blocklist)
        self.version = model_version(self.model_dir)
        # constrained when asked and possible (a tokenizer that splits the separator cannot be)
        allowed = [q for q in vocabulary if not any(b in q for b in self.blocklist)]
        possible = allowed and self.config.constrained and separator_id(self.tokenizer) is not None
        groups = [category_of.get(q, "") for q in allowed] if category_of and self.config.scope != "all" else None
        self.grammar = QueryGrammar(self.tokenizer, allowed, groups) if possible else None

    def scopes_for(self, contexts: Sequence[Mapping]) -> list[dict[str, int]] | None:
        """Each context's category quota under `config.scope` (None: every list unscoped)."""
        if self.config.scope == "all" or self.grammar is None:
            return None
        return [interest_scope(c, self.config.k, self.config.scope == "quota") for c in contexts]

    def generate_texts(
        self,
        prompts: Sequence[str],
        use_cache: bool = True,
        batch_size: int | None = None,
        sample_ids: Sequence[int] | None = None,
        scopes: Sequence[Mapping[str, int] | None] | None = None,
    ) -> list[str]:
        """One completion per prompt; `sample_ids` tell apart several samples of one prompt;
        `scopes` the categories each constrained list may write from."""
        import torch

        cfg = self.config
        size = batch_size or cfg.batch_size
        # similar lengths share a batch: less left padding to run through the model
        order = (
            sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
            if len(prompts) > size
            else list(range(len(prompts)))
        )
        out: list[str] = [""] * len(prompts)
        generators = row_generators(prompts, cfg.seed, sample_ids)
        for start in range(0, len(prompts), size):
            idx = order[start : start + size]
            batch = [prompts[i] for i in idx]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(cfg.seed + start)
            with torch.inference_mode():
                if use_cache:
                    quotas = [scopes[i] for i in idx] if scopes else None
                    new = self.decode(enc, [generators[i] for i in idx], quotas)
                else:  # the reference path: transformers' generate, no KV cache (the naive baseline)
                    gen = self.model.generate(
                        **enc,
                        max_new_tokens=cfg.max_new_tokens,
                        do_sample=cfg.do_sample,
                        temperature=cfg.temperature if cfg.do_sample else None,
                        top_p=cfg.top_p if cfg.do_sample else None,
                        top_k=None,
                        repetition_penalty=cfg.repetition_penalty,
                        use_cache=False,
                        pad_token_id=self.tokenizer.pad_token_id,
                        eos_token_id=self.tokenizer.eos_token_id,
                    )
                    new = gen[:, enc["input_ids"].shape[1] :]
            for i, text in zip(idx, self.tokenizer.batch_decode(new, skip_special_tokens=False)):
                out[i] = text
        return out

    def decode(self, enc, generators: Sequence | None = None, quotas: Sequence | None = None) -> torch.Tensor:  # noqa: F821
        """New token ids for a left-padded batch: KV-cached decoding with the same repetition
        penalty, temperature and nucleus (top-p) sampling as `transformers` generate, without its
        per-step overhead (10.4 -> ~3 ms a step for 64 sequences of the tiny model; see sample_nucleus). Sequences
        that emitted EOS are padded until all have."""
        import torch

        cfg, eos, pad = self.config, self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        ids, mask = enc["input_ids"], enc["attention_mask"]
        position = (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: positions start at 0
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :]
        vocab = logits.shape[-1]
        seen = ids.masked_fill(mask == 0, vocab)  # left padding is not penalised (as in transformers)
        position = position[:, -1:] + 1
        done = torch.zeros(ids.shape[0], dtype=torch.bool)
        states = None
        if self.grammar:
            free_from = cfg.k - cfg.explore if cfg.explore > 0 else None
            states = [self.grammar.start(quotas[i] if quotas else None, free_from) for i in range(ids.shape[0])]
        steps = []
        for _ in range(cfg.max_new_tokens):
            logits = logits.float()
            if cfg.repetition_penalty != 1.0:  # one spare column absorbs the padding positions
                padded = torch.nn.functional.pad(logits, (0, 1))
                prev = padded.gather(1, seen)
                logits = padded.scatter(
                    1, seen, torch.where(prev < 0, prev * cfg.repetition_penalty, prev / cfg.repetition_penalty)
                )[:, :vocab]
            if states is not None:
                logits = mask_logits(logits, states, self.grammar, cfg.k)
            if cfg.do_sample:
                token = sample_nucleus(logits / cfg.temperature, cfg.top_p, generators)
            else:
                token = logits.argmax(-1)
            token = torch.where(done, torch.full_like(token, pad), token)
            steps.append(token)
            if states is not None:
                for state, t in zip(states, token.tolist()):
                    state.advance(self.grammar, t)
            done |= token == eos
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            out = self.model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=position,
                past_key_values=past,
                use_cache=True,
            )
            past, logits, position = out.past_key_values, out.logits[:, -1, :], position + 1
            seen = torch.cat([seen, token[:, None]], 1)
        return torch.stack(steps, 1) if steps else ids[:, :0]

    def generate(
        self,
        prompts: Sequence[str],
        fallbacks: Sequence[Sequence[str]] | None = None,
        use_cache: bool = True,
        batch_size: int | None = None,
        scopes: Sequence[Mapping[str, int] | None] | None = None,
    ) -> list[GeneratedList]:
        n = max(1, self.config.num_samples)
        texts = self.generate_texts(
            [p for p in prompts for _ in range(n)],
            use_cache=use_cache,
            batch_size=batch_size,
            sample_ids=[j for _ in prompts for j in range(n)],
            scopes=[s for s in scopes for _ in range(n)] if scopes else None,
        )
        k = self.config.k
        lists = []
        for i in range(len(prompts)):
            drawn = texts[i * n : (i + 1) * n]
            usable = vote([parse_list(t, len(t), self.is_valid, self.blocklist) for t in drawn])
            found = {q for t in drawn for q in candidates(t)}
            queries, sources = complete_list(usable[:k], fallbacks[i] if fallbacks else (), k)
            lists.append(GeneratedList(queries, sources, min(len(usable), k), len(found), len(usable), drawn[0]))
        return lists
