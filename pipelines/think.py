"""`aigq think`: AIGQ-Think, trigger -> queries mappings generated offline with a rationale.

A trigger is something a user did that says what they may want next: a search (`wireless
earbuds`) or a clicked category (`category:c042`). Training mappings are mined from the logs
before the hold-out window: what users searched after the trigger, counted once per user, across
users. Each mapping gets a rationale built from the catalogue (the trigger's category and domain,
the categories its follow-ups fall in), so the model learns to reason first and list second:

    <|ctx|> trigger search: wireless earbuds<|think|> headphones in electronics; next: phone
    cases, chargers <|list|> earbuds case | usb c charger | ... <|endoftext|>

The model is the base LM fine-tuned by the same prompt-completion trainer as IL-SFT; a local
pretrained instruct checkpoint replaces it by `base_model`. The offline batch generates mappings
for the most frequent triggers, pushes them to Feast's `think_mappings` view (rationale kept for
audit) and writes $AIGQ_HOME/think/mappings.parquet.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.catalogue import QueryCatalogue
from core.config import aigq_home, option
from core.engine import check_ray_address, engine_name, ensure_ray, stage_env
from core.errors import AigqError
from core.feature_store import CATEGORY_PREFIX, open_store
from core.history import EventLog
from core.lists import fill, pool
from core.window import holdout_days, holdout_start
from models.base_lm import CONTEXT, EOS, LIST, SPECIAL_TOKENS, THINK
from models.generator import SEPARATOR, DirectGenerator, GenerationConfig, complete_list, parse_list
from pipelines import train_sft
from pipelines.baselines import Policy

ENGAGED = ("click", "cart", "purchase")


@dataclass
class ThinkConfig:
    base_model: str = option(
        "",
        "base checkpoint (default $AIGQ_HOME/models/base); a local pretrained "
        "instruct checkpoint directory can replace the tiny model",
    )
    k: int = option(8, "queries per trigger")
    horizon_hours: float = option(24.0, "a search within this many hours after a trigger follows it")
    lookahead_events: int = option(6, "look at most this many events after a trigger")
    per_category: int = option(3, "at most this many queries of one category in a mined mapping")
    min_support: int = option(3, "a mined mapping needs follow-ups from at least this many users")
    trl: dict = option(
        {"max_steps": 800},
        "TRL SFTConfig fields of the fine-tuning, over IL-SFT's defaults (about 0.1 s a step for the tiny base)",
    )
    max_triggers: int = option(3000, "offline batch: the most frequent N triggers (0: all)")
    max_new_tokens: int = option(96, "generation budget (rationale + list)")
    gen_batch_size: int = option(64, "prompts per generation batch")
    store: str = option("sqlite", "feature store to push the mappings to (sqlite | redis_postgres)")
    push: bool = option(True, "push the mappings to Feast's online store")
    seed: int = option(0, "seed")
    engine: str = option("", "offline batch: local | ray (default $AIGQ_ENGINE or local; `aigq --engine`)")
    output_dir: str = option("", "model directory (default $AIGQ_HOME/models/think)")


def model_dir(cfg: ThinkConfig | None = None) -> Path:
    return Path(cfg.output_dir) if cfg and cfg.output_dir else aigq_home() / "models" / "think"


def mappings_path() -> Path:
    return aigq_home() / "think" / "mappings.parquet"


# ---- mining ---------------------------------------------------------------------------------


def trigger_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events that are triggers, with their trigger key: searches by query, engagements by category."""
    ev = events.sort_values(["user_id", "event_ts"], kind="stable").reset_index(drop=True)
    key = np.where(
        ev["event_type"] == "search",
        ev["query"].astype(object),
        np.where(
            ev["event_type"].isin(ENGAGED) & ev["category_id"].notna(),
            CATEGORY_PREFIX + ev["category_id"].astype(str),
            None,
        ),
    )
    return ev.assign(trigger=key)


def mine_follow_ups(events: pd.DataFrame, horizon_hours: float, lookahead: int) -> pd.DataFrame:
    """(trigger, query, users): how many distinct users searched `query` within the horizon after
    the trigger (the trigger's own query excluded)."""
    ev = trigger_events(events)
    horizon = pd.Timedelta(hours=horizon_hours)
    pairs = []
    for lag in range(1, lookahead + 1):
        nxt = ev.shift(-lag)
        ok = (
            ev["trigger"].notna()
            & (nxt["user_id"] == ev["user_id"])
            & (nxt["event_type"] == "search")
            & ((nxt["event_ts"] - ev["event_ts"]) <= horizon)
            & (nxt["query"] != ev["query"])
        )
        pairs.append(
            pd.DataFrame(
                {"trigger": ev.loc[ok, "trigger"], "query": nxt.loc[ok, "query"], "user_id": ev.loc[ok, "user_id"]}
            )
        )
    pairs = pd.concat(pairs).drop_duplicates()
    return pairs.groupby(["trigger", "query"]).size().rename("users").reset_index()


def pick_targets(follow: pd.DataFrame, category_of: Mapping[str, str], k: int, per_category: int) -> list[str]:
    """The strongest follow-ups, at most `per_category` per category first (so one dominant need
    does not fill the list), then the rest by strength."""
    ranked = list(follow.sort_values(["users", "query"], ascending=[False, True])["query"])
    picked, per = [], Counter()
    for q in ranked:
        c = category_of.get(q)
        if per[c] < per_category:
            picked.append(q)
            per[c] += 1
        if len(picked) == k:
            return picked
    return fill(picked, ranked, k)


def trigger_category(catalogue: QueryCatalogue, trigger: str) -> str | None:
    if trigger.startswith(CATEGORY_PREFIX):
        return trigger[len(CATEGORY_PREFIX) :]
    return catalogue.category(trigger)


def describe_trigger(catalogue: QueryCatalogue, trigger: str) -> str:
    """The prompt's trigger line, with its place in the catalogue (observed structure) so the
    model reasons about what follows rather than about what the trigger is."""
    cat = trigger_category(catalogue, trigger)
    where = f" ({catalogue.name[cat]}, {catalogue.domain[cat]})" if cat in catalogue.name else ""
    if trigger.startswith(CATEGORY_PREFIX):
        return f"trigger clicked{where}"
    return f"trigger search: {trigger}{where}"


def rationale(catalogue: QueryCatalogue, trigger: str, targets: Sequence[str]) -> str:
    """What the trigger says about intent (its category and domain) and which needs follow (the
    other categories of the follow-ups, strongest first)."""
    cat = trigger_category(catalogue, trigger)
    name = catalogue.name.get(cat)
    here = f"{name} in {catalogue.domain.get(cat)}" if name else "unknown need"
    nxt: list[str] = []
    for q in targets:
        c = catalogue.category(q)
        if c and c != cat and catalogue.name.get(c) not in nxt:
            nxt.append(catalogue.name.get(c))
    return f"{here}; next: {', '.join(nxt[:3]) if nxt else 'more ' + (name or 'of the same')}"


def prompt(catalogue: QueryCatalogue, trigger: str) -> str:
    return f"{CONTEXT}{describe_trigger(catalogue, trigger)}{THINK}"


def completion(reason: str, queries: Sequence[str]) -> str:
    return f" {reason} {LIST} " + SEPARATOR.join(queries) + EOS


def split_completion(text: str) -> tuple[str, str]:
    """(rationale, list text) of a generated completion."""

    text = text.split(EOS)[0]
    if LIST not in text:
        return "", text
    reason, rest = text.split(LIST, 1)
    for tok in SPECIAL_TOKENS:
        reason = reason.replace(tok, " ")
    return " ".join(reason.split())[:200], rest


def mined_mappings(events: pd.DataFrame, catalogue: QueryCatalogue, cfg: ThinkConfig) -> pd.DataFrame:
    follow = mine_follow_ups(events, cfg.horizon_hours, cfg.lookahead_events)
    support = follow.groupby("trigger")["users"].sum()
    rows = []
    for trigger, group in follow.groupby("trigger", sort=True):
        if support[trigger] < cfg.min_support:
            continue
        targets = pick_targets(group, catalogue.category_of, cfg.k, cfg.per_category)
        rows.append(
            {
                "trigger": trigger,
                "support": int(support[trigger]),
                "queries": targets,
                "rationale": rationale(catalogue, trigger, targets),
            }
        )
    return pd.DataFrame(rows, columns=["trigger", "support", "queries", "rationale"])


def training_samples(mined: pd.DataFrame, catalogue: QueryCatalogue) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt": [prompt(catalogue, t) for t in mined["trigger"]],
            "completion": [completion(r, q) for r, q in zip(mined["rationale"], mined["queries"])],
        }
    )


# ---- the offline batch -------------------------------------------------------------------------


def frequent_triggers(events: pd.DataFrame, n: int) -> list[str]:
    counts = trigger_events(events)["trigger"].dropna().value_counts(sort=False)
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")  # ties by name: deterministic
    return list(counts.index[:n] if n else counts.index)


def generate_mappings(
    generator,
    catalogue: QueryCatalogue,
    triggers: Sequence[str],
    fallbacks: Mapping[str, Sequence[str]],
    batch_size: int,
) -> pd.DataFrame:
    """One mapping per trigger, batch after batch in this process."""
    rows = []
    for start in tqdm(range(0, len(triggers), batch_size), desc="think batch", unit="batch"):
        rows += batch_mappings(generator, catalogue, triggers[start : start + batch_size], fallbacks)
    return pd.DataFrame(rows)


def batch_mappings(
    generator, catalogue: QueryCatalogue, triggers: Sequence[str], fallbacks: Mapping[str, Sequence[str]]
) -> list[dict]:
    """One mapping per trigger: the model's rationale and queries, a shortfall filled from the
    fallback (the mined mapping, else the category's popular queries) and marked."""
    rows = []
    texts = generator.generate_texts([prompt(catalogue, t) for t in triggers])
    for trigger, text in zip(triggers, texts):
        reason, listed = split_completion(text)
        listed_queries = parse_list(listed, 4 * generator.config.k, generator.is_valid, generator.blocklist)
        parsed = [q for q in listed_queries if q != trigger]
        queries, sources = complete_list(
            parsed, [q for q in fallbacks.get(trigger, ()) if q != trigger], generator.config.k
        )
        rows.append(
            {
                "trigger": trigger,
                "think_queries": queries,
                "sources": sources,
                "think_rationale": reason or rationale(catalogue, trigger, queries),
                "rationale_generated": bool(reason),
            }
        )
    return rows


class _ThinkActor:
    """Ray Data actor: the Think model and the catalogue loaded once, one torch thread per CPU."""

    def __init__(self, model: str, gen_config: GenerationConfig, env: dict[str, str]):
        import torch

        os.environ.update(env)  # the driver's home: the catalogue is read there
        torch.set_num_threads(1)
        self.catalogue = QueryCatalogue.load(aigq_home() / "data")
        self.generator = DirectGenerator(Path(model), gen_config, is_valid=self.catalogue.is_valid)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        fallbacks = {t: list(f) for t, f in zip(batch["trigger"], batch["fallback"])}
        return pd.DataFrame(batch_mappings(self.generator, self.catalogue, list(batch["trigger"]), fallbacks))


def ray_generate_mappings(
    model: Path,
    gen_config: GenerationConfig,
    triggers: Sequence[str],
    fallbacks: Mapping[str, Sequence[str]],
    batch_size: int,
) -> pd.DataFrame:
    """The same mappings as `generate_mappings`, the batches on Ray Data actors (generation is
    seeded by prompt, so a trigger's mapping does not depend on where it ran)."""
    import ray
    import ray.data

    ensure_ray()
    if not triggers:
        return pd.DataFrame(columns=["trigger", "think_queries", "sources", "think_rationale", "rationale_generated"])
    actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
    blocks = [
        pd.DataFrame({"trigger": chunk, "fallback": [list(fallbacks.get(t, ())) for t in chunk]})
        for chunk in (list(triggers[s : s + batch_size]) for s in range(0, len(triggers), batch_size))
    ]
    out = (
        ray.data.from_pandas(blocks)
        .map_batches(
            _ThinkActor,
            fn_constructor_args=(str(model), gen_config, stage_env()),
            batch_size=batch_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=1,
        )
        .to_pandas()
    )
    for column in ("think_queries", "sources"):  # Arrow hands lists back as arrays
        out[column] = out[column].map(list)
    order = {t: i for i, t in enumerate(triggers)}
    return out.sort_values("trigger", key=lambda col: col.map(order)).reset_index(drop=True)


def push_mappings(mappings: pd.DataFrame, store: str) -> None:
    from feast.data_source import PushMode

    cols = ["trigger", "think_queries", "think_rationale", "think_model_version", "event_timestamp"]
    fs = open_store(store)
    for start in range(0, len(mappings), 2000):
        fs.push("think_mappings_push", mappings[cols].iloc[start : start + 2000], to=PushMode.ONLINE)


def category_popular(events: pd.DataFrame, n: int) -> dict[str, list[str]]:
    s = events[events["event_type"] == "search"]
    counts = s.groupby(["category_id", "query"]).size().rename("n").reset_index()
    counts = counts.sort_values(["category_id", "n", "query"], ascending=[True, False, True])
    return {c: list(g["query"][:n]) for c, g in counts.groupby("category_id")}


def load_logs() -> tuple[pd.DataFrame, QueryCatalogue]:
    data = aigq_home() / "data"
    for name in ("events", "sessions", "queries", "categories"):
        if not (data / f"{name}.parquet").exists():
            raise AigqError(f"{data / (name + '.parquet')}: missing; run `aigq simulate` or `aigq ingest DIR`")
    events = pd.read_parquet(
        data / "events.parquet", columns=["user_id", "event_ts", "event_type", "query", "category_id"]
    )
    sessions = pd.read_parquet(data / "sessions.parquet", columns=["session_start"])
    cutoff = holdout_start(sessions["session_start"])
    return events[events["event_ts"] < cutoff], QueryCatalogue.load(data)


def main(cfg: ThinkConfig) -> dict:
    started = time.perf_counter()
    on_ray = engine_name(cfg.engine) == "ray"
    if on_ray:
        check_ray_address()
    events, catalogue = load_logs()
    mined = mined_mappings(events, catalogue, cfg)
    if mined.empty:
        raise AigqError(
            f"no trigger has follow-ups from {cfg.min_support}+ users before the hold-out window; "
            "simulate more days or lower min_support"
        )
    out = model_dir(cfg)
    sft_cfg = train_sft.TrainSFTConfig(base_model=cfg.base_model, trl=cfg.trl, seed=cfg.seed)
    train = train_sft.fine_tune(
        sft_cfg,
        training_samples(mined, catalogue),
        out,
        "AIGQ-Think",
        {
            "data": f"{len(mined)} trigger->queries mappings mined before the last {holdout_days()} days",
            "prompt": "<|ctx|>trigger ...<|think|> rationale <|list|> q1 | q2 ...",
            "think config": asdict(cfg),
        },
    )

    gen_config = GenerationConfig(
        k=cfg.k, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.gen_batch_size, seed=cfg.seed, temperature=0.7
    )
    popular = category_popular(events, cfg.k)
    searches = events.loc[events["event_type"] == "search", "query"].value_counts()
    overall = list(searches.index[: 3 * cfg.k])
    mined_lists = dict(zip(mined["trigger"], mined["queries"]))
    triggers = frequent_triggers(events, cfg.max_triggers)
    # a shortfall is filled from the mined mapping, then the trigger category's and the overall
    # popular queries, so every trigger gets exactly k
    fallbacks = {
        t: fill(
            fill(list(mined_lists.get(t, [])), popular.get(trigger_category(catalogue, t) or "", []), cfg.k),
            overall,
            2 * cfg.k,
        )
        for t in triggers
    }
    t0 = time.perf_counter()
    if on_ray:
        mappings = ray_generate_mappings(out, gen_config, triggers, fallbacks, cfg.gen_batch_size)
    else:
        generator = DirectGenerator(out, gen_config, is_valid=catalogue.is_valid)
        mappings = generate_mappings(generator, catalogue, triggers, fallbacks, cfg.gen_batch_size)
    gen_seconds = time.perf_counter() - t0
    mappings["think_model_version"] = f"think@{int(time.time())}"
    mappings["event_timestamp"] = pd.Timestamp.now(tz="UTC").floor("us")
    mappings["support"] = mappings["trigger"].map(dict(zip(mined["trigger"], mined["support"]))).fillna(0).astype(int)
    path = mappings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    mappings.to_parquet(path, index=False)
    if cfg.push:
        push_mappings(mappings, cfg.store)
    model_share = float(np.mean([s == "model" for ss in mappings["sources"] for s in ss])) if len(mappings) else 0.0
    summary = {
        "mined_mappings": len(mined),
        "train": train,
        "triggers": len(mappings),
        "model_share": model_share,
        "rationale_generated": float(mappings["rationale_generated"].mean()),
        "mappings_per_s": len(mappings) / max(gen_seconds, 1e-9),
        "pushed": bool(cfg.push),
        "seconds": time.perf_counter() - started,
        "mappings": str(path),
    }
    (out / "think_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


# ---- evaluation policy ----------------------------------------------------------------------------


def recent_triggers(log: EventLog, user: str, t, n_queries: int = 3, n_categories: int = 2) -> list[str]:
    """The user's triggers before t, most recent first: last searches, then last engaged categories."""
    sl = log.before(user, t)
    cats: list[str] = []
    for i in range(sl.stop - 1, sl.start - 1, -1):
        if log.type[i] in ENGAGED and log.category[i] is not None and log.category[i] not in cats:
            cats.append(log.category[i])
            if len(cats) == n_categories:
                break
    return log.recent_queries(user, t, n_queries) + [CATEGORY_PREFIX + c for c in cats]


class ThinkPolicy(Policy):
    """Think mappings of the user's recent triggers, round-robin; a fallback fills the rest."""

    name = "think"

    def __init__(self, mappings: pd.DataFrame, log: EventLog, fallback: Policy):
        self.by_trigger = {t: list(q) for t, q in zip(mappings["trigger"], mappings["think_queries"])}
        self.log, self.fallback = log, fallback

    def candidates(self, user_id, time) -> list[str]:
        lists = [self.by_trigger.get(t, []) for t in recent_triggers(self.log, user_id, time)]
        return pool(lists, self.log.searched(user_id, time))

    def recommend(self, user_id, time, k=8):
        return fill(self.candidates(user_id, time)[:k], self.fallback.recommend(user_id, time, 2 * k), k)


def load_mappings(path: Path | None = None) -> pd.DataFrame:
    path = path or mappings_path()
    if not path.exists():
        raise AigqError(f"{path}: no Think mappings; run `aigq think`")
    return pd.read_parquet(path)
