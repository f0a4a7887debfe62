"""The CTR ranker: (user context, candidate query, position) -> click probability.

Inputs are the columns of the `ctr_ranking_v1` feature service (plus `query` and `position`).
The query text enters as hashed word unigrams and bigrams, so a query never seen in training
still gets a score from its words and category. Position enters as an additive logit (a
position-aware "PAL" term): scoring every candidate at one position ranks them by relevance.

`featurize` is plain numpy (no Feast, no server); `CTRScorer` loads a saved model directory and
scores a batch of candidates for one or many users in one forward pass.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.feature_store import CTR_SERVICE
from core.lists import as_list

FEATURE_SERVICE = CTR_SERVICE
MAX_POSITION = 16
DENSE_FEATURES = (
    "price_sensitivity",
    "city_tier",
    "log_user_searches",
    "log_user_clicks",
    "log_user_events",
    "is_cold_start",
    "interest_entropy",
    "hour_sin",
    "hour_cos",
    "log_query_searches_7d",
    "log_query_searches_30d",
    "query_search_share",
    "log_query_impressions",
    "query_coec",
    "query_stats_missing",
    "affinity_30d",
    "affinity_7d",
    "sqrt_affinity_30d",
    "in_recent_queries",
    "domain_affinity_30d",
    "user_history_missing",
    "recent_click_category_share",
)


@dataclass
class CTRConfig:
    hash_buckets: int = 1 << 15
    token_dim: int = 16
    category_dim: int = 16
    hidden: tuple[int, ...] = (64, 32)
    max_tokens: int = 12


@dataclass
class Vocab:
    categories: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    category_domain: dict[str, str] = field(default_factory=dict)
    age_bands: list[str] = field(default_factory=list)
    genders: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, frame: Mapping[str, Sequence]) -> Vocab:
        cats = sorted(
            {c for c in frame["query_category_id"] if isinstance(c, str)}
            | {c for cs in frame["top_categories_30d"] if cs is not None for c in cs}
        )
        pairs = {
            c: d
            for c, d in zip(frame["query_category_id"], frame["query_domain"])
            if isinstance(c, str) and isinstance(d, str)
        }
        return cls(
            categories=cats,
            domains=sorted(set(pairs.values())),
            category_domain=pairs,
            age_bands=sorted({a for a in frame["age_band"] if isinstance(a, str)}),
            genders=sorted({g for g in frame["gender"] if isinstance(g, str)}),
        )

    def lookup(self, field_name: str) -> dict[str, int]:
        """value -> 1-based id for one vocabulary, built once (featurize runs per request)."""
        cache = self.__dict__.setdefault("_lookups", {})
        if field_name not in cache:
            cache[field_name] = {v: i + 1 for i, v in enumerate(getattr(self, field_name))}
        return cache[field_name]

    def index(self, values: Sequence, field_name: str) -> np.ndarray:
        """1-based ids, 0 for unknown or missing."""
        lookup = self.lookup(field_name)
        return np.array([lookup.get(v, 0) if isinstance(v, str) else 0 for v in values], dtype=np.int64)


def _num(values: Sequence, default: float = 0.0) -> np.ndarray:
    arr = np.array([default if v is None else v for v in values], dtype=np.float64)
    return np.where(np.isnan(arr), default, arr)


def _missing(values: Sequence) -> np.ndarray:
    return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values], dtype=np.float32)


def hash_tokens(queries: Sequence[str], buckets: int, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashed word unigrams and bigrams: (flat ids, offsets) for an EmbeddingBag. crc32 is
    stable across processes (Python's hash() is salted)."""
    ids, offsets = [], []
    for q in queries:
        offsets.append(len(ids))
        words = (q or "").split()
        grams = words + [a + " " + b for a, b in zip(words, words[1:])]
        toks = [zlib.crc32(g.encode()) % (buckets - 1) + 1 for g in grams[:max_tokens]] or [0]
        ids.extend(toks)
    return np.asarray(ids, dtype=np.int64), np.asarray(offsets, dtype=np.int64)


def featurize(rows: Mapping[str, Sequence], vocab: Vocab, cfg: CTRConfig) -> dict[str, np.ndarray]:
    """Columns of the ctr_ranking_v1 frame (+ query, position) -> model inputs. Missing columns
    and values are allowed: an unknown user or unseen query still gets features."""
    n = len(rows["query"])

    def col(name, default=None):
        return rows[name] if name in rows else [default] * n

    queries = [q if isinstance(q, str) else "" for q in rows["query"]]
    qcat = list(col("query_category_id"))
    top30 = [as_list(v) for v in col("top_categories_30d")]
    w30 = [as_list(v) for v in col("top_category_weights_30d")]
    top7 = [as_list(v) for v in col("top_categories_7d")]
    w7 = [as_list(v) for v in col("top_category_weights_7d")]
    recent = [set(as_list(v)) for v in col("recent_queries")]
    recent_cats = [as_list(v) for v in col("recent_click_categories")]
    qdom = [vocab.category_domain.get(c) if isinstance(c, str) else None for c in qcat]

    def affinity(cats, weights):
        return np.array([sum(w for c2, w in zip(cs, ws) if c2 == c) for c, cs, ws in zip(qcat, cats, weights)])

    aff30, aff7 = affinity(top30, w30), affinity(top7, w7)
    dom_aff = np.array(
        [
            sum(w for c2, w in zip(cs, ws) if d is not None and vocab.category_domain.get(c2) == d)
            for d, cs, ws in zip(qdom, top30, w30)
        ]
    )
    hour = _num(col("hour_of_day"), 12.0)
    dense = np.stack(
        [
            _num(col("price_sensitivity"), 0.5),
            _num(col("city_tier"), 3.0) / 5.0,
            np.log1p(_num(col("n_search_30d"))) / 5,
            np.log1p(_num(col("n_click_30d"))) / 5,
            np.log1p(_num(col("n_events_30d"))) / 5,
            _num(col("is_cold_start"), 1.0),
            _num(col("interest_entropy")) / 2,
            np.sin(2 * np.pi * hour / 24),
            np.cos(2 * np.pi * hour / 24),
            np.log1p(_num(col("q_n_search_7d"))) / 5,
            np.log1p(_num(col("q_n_search_30d"))) / 5,
            _num(col("q_search_share_30d")) * 100,
            np.log1p(_num(col("q_impressions_30d"))) / 8,
            np.log(_num(col("q_coec_30d"), 1.0)),
            _missing(col("q_coec_30d")),
            aff30,
            aff7,
            np.sqrt(aff30),
            np.array([q in r for q, r in zip(queries, recent)], dtype=float),
            dom_aff,
            np.array([not c for c in top30], dtype=float),
            np.array([rc.count(c) / len(rc) if rc and isinstance(c, str) else 0.0 for c, rc in zip(qcat, recent_cats)]),
        ],
        axis=1,
    ).astype(np.float32)
    tok_ids, tok_off = hash_tokens(queries, cfg.hash_buckets, cfg.max_tokens)
    ucat_ids, ucat_off, ucat_w = [], [], []
    cat_lookup = vocab.lookup("categories")
    for cs, ws in zip(top30, w30):
        ucat_off.append(len(ucat_ids))
        pairs = [(cat_lookup.get(c, 0), float(w)) for c, w in zip(cs, ws)] or [(0, 0.0)]
        ucat_ids.extend(p[0] for p in pairs)
        ucat_w.extend(p[1] for p in pairs)
    return {
        "dense": dense,
        "position": np.clip(_num(col("position"), 0).astype(np.int64), 0, MAX_POSITION - 1),
        "age": vocab.index(col("age_band"), "age_bands"),
        "gender": vocab.index(col("gender"), "genders"),
        "qcat": vocab.index(qcat, "categories"),
        "qdom": vocab.index(qdom, "domains"),
        "tok_ids": tok_ids,
        "tok_off": tok_off,
        "ucat_ids": np.asarray(ucat_ids, dtype=np.int64),
        "ucat_off": np.asarray(ucat_off, dtype=np.int64),
        "ucat_w": np.asarray(ucat_w, dtype=np.float32),
    }


def build_model(cfg: CTRConfig, vocab: Vocab):
    import torch
    from torch import nn

    class CTRNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.EmbeddingBag(cfg.hash_buckets, cfg.token_dim, mode="mean")
            self.category = nn.Embedding(len(vocab.categories) + 1, cfg.category_dim)
            self.user_categories = nn.EmbeddingBag(len(vocab.categories) + 1, cfg.category_dim, mode="sum")
            self.domain = nn.Embedding(len(vocab.domains) + 1, 4)
            self.age = nn.Embedding(len(vocab.age_bands) + 1, 3)
            self.gender = nn.Embedding(len(vocab.genders) + 1, 2)
            self.position_logit = nn.Embedding(MAX_POSITION, 1)
            nn.init.zeros_(self.position_logit.weight)
            width = len(DENSE_FEATURES) + cfg.token_dim + 2 * cfg.category_dim + 1 + 4 + 3 + 2
            layers, prev = [], width
            for h in cfg.hidden:
                layers += [nn.Linear(prev, h), nn.ReLU()]
                prev = h
            self.mlp = nn.Sequential(*layers, nn.Linear(prev, 1))

        def forward(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
            qcat = self.category(b["qcat"])
            ucat = self.user_categories(b["ucat_ids"], b["ucat_off"], per_sample_weights=b["ucat_w"])
            x = torch.cat(
                [
                    b["dense"],
                    self.tokens(b["tok_ids"], b["tok_off"]),
                    qcat,
                    ucat,
                    (qcat * ucat).sum(dim=1, keepdim=True),
                    self.domain(b["qdom"]),
                    self.age(b["age"]),
                    self.gender(b["gender"]),
                ],
                dim=1,
            )
            return self.mlp(x).squeeze(1) + self.position_logit(b["position"]).squeeze(1)

    return CTRNet()


def to_tensors(batch: dict[str, np.ndarray]):
    import torch

    return {k: torch.from_numpy(v) for k, v in batch.items()}


def slice_batch(batch: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Rows `idx` of a featurized batch, re-packing the bag (ragged) inputs."""
    out = {k: batch[k][idx] for k in ("dense", "position", "age", "gender", "qcat", "qdom")}
    for ids, off, extra in (("tok_ids", "tok_off", ()), ("ucat_ids", "ucat_off", ("ucat_w",))):
        ends = np.append(batch[off][1:], len(batch[ids]))
        starts, stops = batch[off][idx], ends[idx]
        lengths = stops - starts
        take = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)]) if len(idx) else np.array([], int)
        out[ids] = batch[ids][take]
        out[off] = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        for e in extra:
            out[e] = batch[e][take]
    return out


def save(directory: Path, model, cfg: CTRConfig, vocab: Vocab, metrics: dict, card: str) -> None:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    (directory / "config.json").write_text(
        json.dumps(
            {"model": asdict(cfg), "feature_service": FEATURE_SERVICE, "dense_features": list(DENSE_FEATURES)}, indent=1
        )
    )
    (directory / "vocab.json").write_text(json.dumps(asdict(vocab), indent=1))
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (directory / "README.md").write_text(card)


class CTRScorer:
    """Loads a saved CTR model directory; scores candidates in one forward pass.

    scorer = CTRScorer(path)
    scorer.score(user_features, ["red dress", {"query": "tent", "query_category_id": "c030"}])
    scorer.score_users([ctx_a, ctx_b], [cands_a, cands_b])
    """

    def __init__(self, directory: str | Path):
        import torch

        directory = Path(directory)
        for name in ("model.pt", "config.json", "vocab.json"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory}: not a CTR model directory (missing {name})")
        meta = json.loads((directory / "config.json").read_text())
        raw = meta["model"]
        raw["hidden"] = tuple(raw["hidden"])
        self.config = CTRConfig(**raw)
        self.vocab = Vocab(**json.loads((directory / "vocab.json").read_text()))
        self.feature_service = meta["feature_service"]
        self.version = f"{directory.name}@{int((directory / 'model.pt').stat().st_mtime)}"
        self.model = build_model(self.config, self.vocab)
        self.model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
        self.model.eval()

    def score_rows(self, rows: Mapping[str, Sequence]) -> np.ndarray:
        """Click probabilities for rows in the CTR frame layout (user and query columns)."""
        import torch

        if len(rows["query"]) == 0:
            return np.zeros(0)
        with torch.inference_mode():
            logits = self.model(to_tensors(featurize(rows, self.vocab, self.config)))
        return torch.sigmoid(logits).numpy().astype(np.float64)

    def score_users(
        self,
        contexts: Sequence[Mapping[str, Any]],
        candidates: Sequence[Sequence[str | Mapping[str, Any]]],
        position: int | Sequence[Sequence[int]] = 0,
    ) -> list[np.ndarray]:
        """One array of probabilities per user, all users in one forward pass. A candidate is a
        query string or a mapping with `query` and optional query_stats columns."""
        rows: dict[str, list] = {}
        qkeys = {k for cands in candidates for c in cands if isinstance(c, Mapping) for k in c} | {"query"}
        # user-level columns come from the context; query-level ones only from the candidate
        keys = (set().union(*[c.keys() for c in contexts]) if contexts else set()) - qkeys - {"position"}
        sizes = []
        for u, (ctx, cands) in enumerate(zip(contexts, candidates)):
            sizes.append(len(cands))
            for j, cand in enumerate(cands):
                cand = {"query": cand} if isinstance(cand, str) else cand
                for k in keys:
                    rows.setdefault(k, []).append(ctx.get(k))
                for k in qkeys:
                    rows.setdefault(k, []).append(cand.get(k))
                pos = position if isinstance(position, int) else position[u][j]
                rows.setdefault("position", []).append(pos)
        if not rows:
            return [np.zeros(0) for _ in contexts]
        probs = self.score_rows(rows)
        return np.split(probs, np.cumsum(sizes)[:-1])

    def score(
        self,
        context: Mapping[str, Any],
        candidates: Sequence[str | Mapping[str, Any]],
        position: int | Sequence[int] = 0,
    ) -> np.ndarray:
        pos = position if isinstance(position, int) else [list(position)]
        return self.score_users([context], [candidates], pos)[0]
