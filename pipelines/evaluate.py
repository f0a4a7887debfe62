"""`aigq evaluate`: every policy on held-out session starts, offline and under the world's
click model (a simulated A/B test).

Requests are (user, session start) for sessions starting after the cut-off; ground truth is what
the user searched in that session (clicked suggestions included). Policies see logs before the
cut-off and the user's own events before the request. Evaluation (and only evaluation) reads the
world's ground truth: relevance for serendipity and click probabilities for the simulated A/B.

Writes $AIGQ_HOME/reports/eval.json ({"policies": {POLICY: {SLICE: {METRIC: value}}}}),
eval.md and plots/*.png.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipelines import metrics as M
from pipelines.baselines import BASELINES, Catalogue, Policy, build_baselines
from pipelines.catalog import longest_named
from pipelines.config import aigq_home, option
from pipelines.errors import AigqError
from pipelines.history import EventLog, to_us
from pipelines.window import holdout_start

SLICES = ("all", "cold", "regular", "heavy")
METRICS = ("hit_rate@8", "hit_rate_organic@8", "ndcg@8", "mrr@8", "ild_category", "ild_embedding",
           "distinct_categories", "interest_coverage", "catalog_coverage", "novelty", "serendipity", "validity", "repeat_rate",
           "sim_ctr", "sim_ctr_ci95", "sim_ctr_lift", "oracle_share", "n_lists")
RELEVANT_AFFINITY = 0.1  # ground-truth interest weight above which a category is relevant
# generator policies: evaluated when their model directory exists
GENERATORS = ("direct_sft", "direct_grpo", "direct_grpo_rel", "direct_grpo_rel_list")
# the served policies: evaluated when `aigq think` (and a Direct and CTR model) have run
SERVED = ("think", "hybrid")


@dataclass
class EvaluateConfig:
    eval_days: float = option(5.0, "sessions starting in the last N days are held out")
    max_requests: int = option(2000, "sample at most this many held-out session starts (0: all)")
    k: int = option(8, "list length K")
    policies: list[str] = option(list(BASELINES + GENERATORS[:2] + SERVED) + ["oracle"],
                                 f"policies to evaluate (baselines: {', '.join(BASELINES)}; generators, when "
                                 f"trained: {', '.join(GENERATORS)}; served, when built: {', '.join(SERVED)}; "
                                 "oracle (the best list under the world's click model; skipped for real logs); "
                                 "random)")
    store: str = option("sqlite", "feature store config for generator contexts (sqlite | redis_postgres)")
    cold_events: int = option(5, "a request whose user has fewer events before it is cold-start")
    heavy_quantile: float = option(0.9, "requests above this quantile of prior events are heavy users")
    seed: int = option(0, "request sampling seed")
    plots: bool = option(True, "write PNG plots")
    output_dir: str = option("", "report folder (default $AIGQ_HOME/reports)")


@dataclass
class EvalContext:
    log: EventLog
    cutoff: pd.Timestamp
    requests: list[tuple[str, pd.Timestamp]]
    truth: list[set[str]]
    truth_organic: list[set[str]]  # what the user typed unprompted (no clicked suggestion)
    slices: np.ndarray
    query_category: dict[str, str]
    ptype_category: dict[str, str]
    search_counts: dict[str, int]
    total_searches: int
    vocabulary: list[str]
    popular: set[str]
    impressions: pd.DataFrame
    catalogue: Catalogue = field(default_factory=Catalogue)
    world: object | None = None
    history_cache: dict = field(default_factory=dict)

    def category(self, query: str) -> str | None:
        return self.query_category.get(query) or longest_named(query, self.ptype_category)

    def user_history(self, i: int) -> tuple[set[str], set[str], dict[str, float]]:
        """(searched queries, categories seen, 30-day category weights) before request i."""
        if i not in self.history_cache:
            u, t = self.requests[i]
            self.history_cache[i] = (self.log.searched(u, t), self.log.categories(u, t),
                                     self.log.category_weights(u, t))
        return self.history_cache[i]


def load_context(cfg: EvaluateConfig, data_dir: Path | None = None) -> EvalContext:
    data = data_dir or aigq_home() / "data"
    if not (data / "events.parquet").exists():
        raise AigqError(f"{data}: no logs; run `aigq simulate` or `aigq ingest DIR` first")
    events = pd.read_parquet(data / "events.parquet")
    sessions = pd.read_parquet(data / "sessions.parquet")
    queries = pd.read_parquet(data / "queries.parquet")
    impressions = pd.read_parquet(data / "hintq_impressions.parquet")
    cutoff = holdout_start(sessions["session_start"], cfg.eval_days)
    held = sessions[sessions["session_start"] >= cutoff]
    if cfg.max_requests and len(held) > cfg.max_requests:
        held = held.sample(cfg.max_requests, random_state=cfg.seed)
    held = held.sort_values(["session_start", "session_id"])
    searches = events[events["event_type"] == "search"]
    truth_by_session = searches.groupby("session_id")["query"].agg(set)
    typed = searches[searches["search_source"] == "organic"].groupby("session_id")["query"].agg(set)
    requests = list(zip(held["user_id"], held["session_start"]))
    log = EventLog(events)
    prior = np.array([log.n_events_before(u, t) for u, t in requests])
    warm = prior[prior >= cfg.cold_events]
    heavy_at = np.quantile(warm, cfg.heavy_quantile) if len(warm) else np.inf
    slices = np.where(prior < cfg.cold_events, "cold", np.where(prior >= heavy_at, "heavy", "regular"))
    before = searches[searches["event_ts"] < cutoff]
    counts = before["query"].value_counts()
    return EvalContext(
        log=log, cutoff=cutoff, requests=requests,
        truth=[truth_by_session.get(s, set()) for s in held["session_id"]],
        truth_organic=[typed.get(s, set()) for s in held["session_id"]], slices=slices,
        query_category=dict(zip(queries["query"], queries["category_id"])),
        ptype_category=dict(zip(queries["ptype"], queries["category_id"])),
        search_counts=counts.to_dict(), total_searches=int(counts.sum()),
        vocabulary=list(queries["query"]), popular=set(counts.index[:cfg.k]), impressions=impressions,
        catalogue=Catalogue.load(data), world=load_world(data.parent),
    )


def load_world(home: Path):
    """The simulator's ground truth, if these logs came from it (real logs have none)."""
    if not (home / "world" / "world.json").exists():
        return None
    from pipelines.world import World

    return World.load(home / "world", pd.read_parquet(home / "data" / "users.parquet"))


# ---- policies that read the ground truth (evaluation only) ------------------------------------

class OraclePolicy(Policy):
    """The ceiling: the list that the world's click model expects the most clicks from, built
    greedily position by position (list-aware: a second query for the same need adds little)."""

    name = "oracle"

    def __init__(self, world):
        self.world = world

    def recommend(self, user_id, time, k=8):
        return self.world.best_list(user_id, to_us(time), k)


class RandomPolicy(Policy):
    name = "random"

    def __init__(self, vocabulary: Sequence[str], seed: int = 0):
        self.vocabulary, self.seed = list(vocabulary), seed

    def recommend(self, user_id, time, k=8):
        rng = np.random.default_rng([self.seed, to_us(time) % (2**32), sum(map(ord, user_id))])
        return [self.vocabulary[i] for i in rng.choice(len(self.vocabulary), k, replace=False)]


def make_policies(cfg: EvaluateConfig, ctx: EvalContext) -> list[Policy]:
    known = list(BASELINES + GENERATORS + SERVED) + ["oracle", "random"]
    unknown = [n for n in cfg.policies if n not in known]
    if unknown:
        raise AigqError(f"unknown policies {unknown}; known here: {known}")
    names = list(cfg.policies)
    if ctx.impressions.empty and "legacy" in names:
        names.remove("legacy")  # nothing was shown, so there is nothing to replay
    policies = build_baselines(ctx.log, ctx.impressions, ctx.cutoff, names, ctx.catalogue)
    policies += generator_policies(cfg, ctx)
    policies += served_policies(cfg, ctx)
    if "oracle" in names and ctx.world is not None:  # real logs have no click model to optimise
        policies.append(OraclePolicy(ctx.world))
    if "random" in cfg.policies:
        policies.append(RandomPolicy(ctx.vocabulary, cfg.seed))
    return policies


def generator_policies(cfg: EvaluateConfig, ctx: EvalContext) -> list[Policy]:
    wanted = [n for n in GENERATORS if n in cfg.policies and (aigq_home() / "models" / n / "config.json").exists()]
    if not wanted:
        return []
    from models.generator import DirectGenerator
    from pipelines.baselines import PopularityPolicy
    from pipelines.features import open_store
    from pipelines.generator_policy import GeneratorPolicy, catalogue_validator, feast_contexts

    data = aigq_home() / "data"
    queries = pd.read_parquet(data / "queries.parquet")
    categories = pd.read_parquet(data / "categories.parquet")
    contexts = feast_contexts(open_store(cfg.store))
    fallback = PopularityPolicy(ctx.log, ctx.cutoff, in_categories=True)
    return [GeneratorPolicy(n, DirectGenerator(aigq_home() / "models" / n, is_valid=catalogue_validator(queries)),
                            contexts, categories, fallback) for n in wanted]


def served_policies(cfg: EvaluateConfig, ctx: EvalContext) -> list[Policy]:
    """Think (its mappings) and the hybrid online policy, when their artifacts exist."""
    from pipelines import think
    from pipelines.baselines import PopularityPolicy

    home = aigq_home()
    wanted = [n for n in SERVED if n in cfg.policies]
    if not wanted or not think.mappings_path().exists():
        return []
    fallback = PopularityPolicy(ctx.log, ctx.cutoff, in_categories=True)
    think_policy = think.ThinkPolicy(think.load_mappings(), ctx.log, fallback)
    out: list[Policy] = [think_policy] if "think" in wanted else []
    if "hybrid" in wanted and (home / "models" / "ctr" / "model.pt").exists():
        from models.ctr import CTRScorer
        from models.generator import DirectGenerator
        from pipelines.catalog import QueryCatalogue
        from pipelines.features import open_store
        from pipelines.generator_policy import GeneratorPolicy, feast_contexts
        from pipelines.hybrid_policy import HybridPolicy, query_stats_at
        from pipelines.nearline import newest_direct_model

        catalogue = QueryCatalogue.load(home / "data")
        direct_dir = newest_direct_model()
        direct = GeneratorPolicy(f"{direct_dir.name}@hybrid", DirectGenerator(direct_dir, is_valid=catalogue.is_valid),
                                 feast_contexts(open_store(cfg.store), "hintq_online_v2"),
                                 pd.read_parquet(home / "data" / "categories.parquet"), fallback)
        out.append(HybridPolicy(direct, think_policy, fallback, CTRScorer(home / "models" / "ctr"),
                                query_stats_at(home / "features" / "query_stats.parquet", ctx.cutoff), catalogue,
                                ctx.log))
    return out


# ---- scoring -------------------------------------------------------------------------------------

def per_list_metrics(lists: list[list[str]], ctx: EvalContext, k: int) -> pd.DataFrame:
    rows = []
    for i, ranked in enumerate(lists):
        ranked = [q for q in ranked][:k]
        searched, seen_cats, weights = ctx.user_history(i)
        distinct = M.dedupe(ranked)
        cats = [ctx.category(q) for q in distinct]
        rows.append({
            "slice": ctx.slices[i],
            "hit_rate@8": M.hit_rate(ranked, ctx.truth[i], k),
            "hit_rate_organic@8": M.hit_rate(ranked, ctx.truth_organic[i], k) if ctx.truth_organic[i] else np.nan,
            "ndcg@8": M.ndcg(ranked, ctx.truth[i], k),
            "mrr@8": M.mrr(ranked, ctx.truth[i], k),
            "ild_category": M.ild_category(cats),
            "ild_embedding": M.ild_embedding(ranked),
            "distinct_categories": M.distinct_categories(cats),
            "interest_coverage": M.interest_coverage(cats, list(weights)[:3]),
            "novelty": M.novelty(ranked, ctx.search_counts, ctx.total_searches, len(ctx.vocabulary)),
            "validity": M.share([c is not None for c in cats]),
            "repeat_rate": M.repeat_rate(ranked, searched),
            "n_items": len(distinct),
        })
    df = pd.DataFrame(rows)
    df["serendipity"] = serendipity(lists, ctx, k)
    df["sim_ctr"] = simulated_clicks(lists, ctx, k)
    return df


def serendipity(lists, ctx: EvalContext, k: int) -> np.ndarray:
    """Share of a list's queries that are relevant under the ground truth, in a category the
    user never touched before, and not in the popularity list. NaN without a world."""
    if ctx.world is None:
        return np.full(len(lists), np.nan)
    w = ctx.world
    cat_index = {c: i for i, c in enumerate(w.catalog.categories["category_id"])}
    out = np.zeros(len(lists))
    for i, ranked in enumerate(lists):
        u, t = ctx.requests[i]
        distinct = M.dedupe(ranked[:k])
        if not distinct:
            continue
        _, seen_cats, _ = ctx.user_history(i)
        cats = [ctx.category(q) for q in distinct]
        idx = np.array([cat_index.get(c, -1) if c else -1 for c in cats])
        aff = w.affinity(np.full(len(idx), w.user_index([u])[0]), idx, np.full(len(idx), w.days_since_start(to_us(t))))
        ok = [(a >= RELEVANT_AFFINITY and c is not None and c not in seen_cats and q not in ctx.popular)
              for a, c, q in zip(aff, cats, distinct)]
        out[i] = np.mean(ok)
    return out


def simulated_clicks(lists, ctx: EvalContext, k: int) -> np.ndarray:
    """Expected clicks per impression under the world's click model (NaN without a world)."""
    if ctx.world is None:
        return np.full(len(lists), np.nan)
    return np.array([p.sum() for p in click_probabilities(ctx.world, ctx.requests, lists, k)])


def click_probabilities(world, requests, lists, k: int) -> list[np.ndarray]:
    """Per list, the world's probability that each shown position is clicked, averaged over the
    visit's possible needs (ground truth: evaluation and simulated feedback only). A repeated
    query is one suggestion: only its first occurrence can be clicked."""
    from pipelines.world import Texts

    if not lists:
        return []
    width = max((len(x[:k]) for x in lists), default=0)
    out = []
    for lo in range(0, len(lists), 256):
        chunk = [list(x[:k]) for x in lists[lo:lo + 256]]
        flat = [q for x in chunk for q in x]
        texts = world.texts(flat)
        grid = np.full((len(chunk), max(width, 1)), -1)
        shown = np.zeros(grid.shape, bool)
        j = 0
        for r, x in enumerate(chunk):
            seen = set()
            for c, q in enumerate(x):
                grid[r, c] = j
                shown[r, c] = q not in seen
                seen.add(q)
                j += 1
        g = np.maximum(grid, 0)
        rows = Texts(texts.query[g], texts.category[g], texts.tokens[g], texts.novelty[g])
        users = world.user_index([u for u, _ in requests[lo:lo + 256]])
        t = world.days_since_start(np.array([to_us(t) for _, t in requests[lo:lo + 256]]))
        p = world.list_click_probabilities(users, t, rows, shown & (grid >= 0))
        out.extend(p[r, :len(x)] for r, x in enumerate(chunk))
    return out


def summarize(per_list: pd.DataFrame, lists: list[list[str]], ctx: EvalContext, k: int) -> dict:
    out = {}
    for name in SLICES:
        mask = np.ones(len(per_list), bool) if name == "all" else (per_list["slice"] == name).to_numpy()
        sub = per_list[mask]
        n = int(mask.sum())
        row = {m: _mean(sub[m]) for m in ("hit_rate@8", "hit_rate_organic@8", "ndcg@8", "mrr@8", "ild_category", "ild_embedding",
                                          "distinct_categories", "interest_coverage", "novelty", "serendipity",
                                          "validity", "repeat_rate", "sim_ctr")}
        recommended = {q for i in np.flatnonzero(mask) for q in lists[i][:k]}
        row["catalog_coverage"] = len(recommended & set(ctx.vocabulary)) / len(ctx.vocabulary)
        sims = sub["sim_ctr"].dropna()
        row["sim_ctr_ci95"] = float(1.96 * sims.std(ddof=1) / math.sqrt(len(sims))) if len(sims) > 1 else math.nan
        row["n_lists"] = n
        out[name] = row
    return out


def _mean(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.mean()) if len(s) else math.nan


def add_lift(report: dict) -> None:
    """sim_ctr relative to legacy's (lift) and to the oracle's (the share of the ceiling)."""
    legacy, oracle = report.get("legacy"), report.get("oracle")
    for policy in report.values():
        for name, row in policy.items():
            base = legacy[name]["sim_ctr"] if legacy else math.nan
            row["sim_ctr_lift"] = row["sim_ctr"] / base - 1 if base and not math.isnan(base) else math.nan
            top = oracle[name]["sim_ctr"] if oracle else math.nan
            row["oracle_share"] = row["sim_ctr"] / top if top and not math.isnan(top) else math.nan


def run(policies: Sequence[Policy], ctx: EvalContext, k: int) -> tuple[dict, dict]:
    report, lists_by_policy = {}, {}
    for policy in policies:
        policy.prepare(ctx.requests)
        lists = []
        for start in tqdm(range(0, len(ctx.requests), 64), desc=f"evaluate {policy.name}", unit="batch"):
            lists.extend(policy.recommend_batch(ctx.requests[start:start + 64], k))
        per_list = per_list_metrics(lists, ctx, k)
        report[policy.name] = summarize(per_list, lists, ctx, k)
        lists_by_policy[policy.name] = lists
    add_lift(report)
    return report, lists_by_policy


def main(cfg: EvaluateConfig, extra_policies: Sequence[Policy] = ()) -> dict:
    ctx = load_context(cfg)
    policies = make_policies(cfg, ctx) + list(extra_policies)
    report, lists = run(policies, ctx, cfg.k)
    out = Path(cfg.output_dir) if cfg.output_dir else aigq_home() / "reports"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"policies": report, "cutoff": str(ctx.cutoff), "n_requests": len(ctx.requests),
           "world": ctx.world.describe() if ctx.world is not None else None,
           "config": asdict(cfg), "has_ground_truth": ctx.world is not None,
           "generation": {p.name: p.generation_stats() for p in policies if hasattr(p, "generation_stats")}}
    (out / "eval.json").write_text(json.dumps(doc, indent=1, default=_json_default))
    (out / "eval.md").write_text(markdown(report, ctx))
    examples = {name: ls[:5] for name, ls in lists.items()}
    (out / "eval_examples.json").write_text(json.dumps(
        {"requests": [[u, str(t)] for u, t in ctx.requests[:5]], "lists": examples}, indent=1))
    if cfg.plots:
        plot(report, out / "plots")
    return doc


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


TABLE_METRICS = ("hit_rate@8", "hit_rate_organic@8", "ndcg@8", "mrr@8", "sim_ctr", "sim_ctr_lift", "oracle_share",
                 "ild_category", "ild_embedding",
                 "distinct_categories", "interest_coverage", "novelty", "serendipity", "validity",
                 "repeat_rate", "catalog_coverage", "n_lists")


def markdown(report: dict, ctx: EvalContext) -> str:
    lines = [f"# Evaluation\n\nHeld-out session starts after {ctx.cutoff} ({len(ctx.requests)} requests). "
             "Simulated A/B: expected clicks per impression under the world's click model; lift is "
             "relative to `legacy`.\n"]
    for name in SLICES:
        lines.append(f"\n## Slice `{name}`\n")
        lines.append("| policy | " + " | ".join(TABLE_METRICS) + " |")
        lines.append("|---" * (len(TABLE_METRICS) + 1) + "|")
        for policy, slices in report.items():
            row = slices[name]
            cells = []
            for m in TABLE_METRICS:
                v = row.get(m, math.nan)
                cells.append(str(v) if m == "n_lists" else
                             (f"{v:.4f} ± {row['sim_ctr_ci95']:.4f}" if m == "sim_ctr" and not math.isnan(v) else
                              f"{v:+.1%}" if m == "sim_ctr_lift" and not math.isnan(v) else f"{v:.4f}"))
            lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    policies = list(report)
    for metric in ("hit_rate@8", "ndcg@8", "sim_ctr", "ild_category", "novelty", "serendipity"):
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / max(len(policies), 1)
        for j, p in enumerate(policies):
            vals = [report[p][s].get(metric, math.nan) for s in SLICES]
            ax.bar(np.arange(len(SLICES)) + j * width, vals, width, label=p)
        ax.set_xticks(np.arange(len(SLICES)) + width * (len(policies) - 1) / 2, SLICES)
        ax.set_title(f"{metric} by policy and slice")
        ax.legend(fontsize=7, ncol=3)
        fig.tight_layout()
        fig.savefig(out / f"{metric.replace('@', '_at_')}.png", dpi=90)
        plt.close(fig)
