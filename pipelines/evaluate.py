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
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from core import metrics as M
from core.config import aigq_home
from core.history import to_us
from pipelines.baselines import Policy
from pipelines.eval_context import SLICES, EvalContext, EvaluateConfig, load_context
from pipelines.eval_policies import make_policies
from world.shop import Texts

# metrics of each list, averaged per slice; then those of a slice as a whole
PER_LIST_METRICS = (
    "hit_rate@8",
    "hit_rate_organic@8",
    "ndcg@8",
    "mrr@8",
    "ild_category",
    "ild_embedding",
    "distinct_categories",
    "interest_coverage",
    "novelty",
    "serendipity",
    "validity",
    "repeat_rate",
    "sim_ctr",
)
METRICS = PER_LIST_METRICS + ("catalog_coverage", "sim_ctr_ci95", "sim_ctr_lift", "oracle_share", "n_lists")
RELEVANT_AFFINITY = 0.1  # ground-truth interest weight above which a category is relevant


# ---- policies that read the ground truth (evaluation only) ------------------------------------


# ---- scoring -------------------------------------------------------------------------------------


def per_list_metrics(lists: list[list[str]], ctx: EvalContext, k: int) -> pd.DataFrame:
    rows = []
    for i, ranked in enumerate(lists):
        ranked = [q for q in ranked][:k]
        searched, seen_cats, weights = ctx.user_history(i)
        distinct = M.dedupe(ranked)
        cats = [ctx.category(q) for q in distinct]
        rows.append(
            {
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
            }
        )
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
        ok = [
            (a >= RELEVANT_AFFINITY and c is not None and c not in seen_cats and q not in ctx.popular)
            for a, c, q in zip(aff, cats, distinct)
        ]
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

    if not lists:
        return []
    width = max((len(x[:k]) for x in lists), default=0)
    out = []
    for lo in range(0, len(lists), 256):
        chunk = [list(x[:k]) for x in lists[lo : lo + 256]]
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
        users = world.user_index([u for u, _ in requests[lo : lo + 256]])
        t = world.days_since_start(np.array([to_us(t) for _, t in requests[lo : lo + 256]]))
        p = world.list_click_probabilities(users, t, rows, shown & (grid >= 0))
        out.extend(p[r, : len(x)] for r, x in enumerate(chunk))
    return out


def summarize(per_list: pd.DataFrame, lists: list[list[str]], ctx: EvalContext, k: int) -> dict:
    out = {}
    for name in SLICES:
        mask = np.ones(len(per_list), bool) if name == "all" else (per_list["slice"] == name).to_numpy()
        sub = per_list[mask]
        n = int(mask.sum())
        row = {m: _mean(sub[m]) for m in PER_LIST_METRICS}
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
            lists.extend(policy.recommend_batch(ctx.requests[start : start + 64], k))
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
    doc = {
        "policies": report,
        "cutoff": str(ctx.cutoff),
        "n_requests": len(ctx.requests),
        "world": ctx.world.describe() if ctx.world is not None else None,
        "config": asdict(cfg),
        "has_ground_truth": ctx.world is not None,
        "generation": {p.name: p.generation_stats() for p in policies if hasattr(p, "generation_stats")},
    }
    (out / "eval.json").write_text(json.dumps(doc, indent=1, default=_json_default))
    (out / "eval.md").write_text(markdown(report, ctx))
    examples = {name: ls[:5] for name, ls in lists.items()}
    (out / "eval_examples.json").write_text(
        json.dumps({"requests": [[u, str(t)] for u, t in ctx.requests[:5]], "lists": examples}, indent=1)
    )
    if cfg.plots:
        plot(report, out / "plots")
    return doc


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


# the report's column order: ranking and clicks first, then every other metric as METRICS lists it
TABLE_HEAD = ("hit_rate@8", "hit_rate_organic@8", "ndcg@8", "mrr@8", "sim_ctr", "sim_ctr_lift", "oracle_share")
TABLE_METRICS = TABLE_HEAD + tuple(m for m in METRICS if m not in TABLE_HEAD and m != "sim_ctr_ci95")


def measured(report: dict, metrics) -> list[str]:
    """The metrics some policy has a value for: on a real log (no world) the simulated A/B and
    serendipity are not measured, and a column of NaN says nothing."""
    return [
        m
        for m in metrics
        if any(
            not (isinstance(v := row.get(m, math.nan), float) and math.isnan(v))
            for slices in report.values()
            for row in slices.values()
        )
    ]


def markdown(report: dict, ctx: EvalContext) -> str:
    metrics = measured(report, TABLE_METRICS)
    simulated = "sim_ctr" in metrics
    lines = [
        f"# Evaluation\n\nHeld-out session starts after {ctx.cutoff} ({len(ctx.requests)} requests). "
        + (
            "Simulated A/B: expected clicks per impression under the world's click model; lift is "
            "relative to `legacy`.\n"
            if simulated
            else "Next-query metrics against what each user searched in the session (no simulated world: "
            "no simulated A/B, no serendipity).\n"
        )
    ]
    for name in SLICES:
        lines.append(f"\n## Slice `{name}`\n")
        lines.append("| policy | " + " | ".join(metrics) + " |")
        lines.append("|---" * (len(metrics) + 1) + "|")
        for policy, slices in report.items():
            row = slices[name]
            cells = []
            for m in metrics:
                v = row.get(m, math.nan)
                cells.append(
                    str(v)
                    if m == "n_lists"
                    else (
                        f"{v:.4f} ± {row['sim_ctr_ci95']:.4f}"
                        if m == "sim_ctr" and not math.isnan(v)
                        else f"{v:+.1%}"
                        if m == "sim_ctr_lift" and not math.isnan(v)
                        else f"{v:.4f}"
                    )
                )
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
