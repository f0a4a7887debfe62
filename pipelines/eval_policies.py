"""The policies an evaluation compares: the baselines, the generators and the served policies
whose models exist, and the two references that read the world (the oracle, random)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.catalogue import QueryCatalogue
from core.config import aigq_home
from core.errors import AigqError
from core.feature_store import HINTQ_SERVICE, open_store
from core.history import to_us
from models.ctr import CTRScorer
from models.direct import newest_direct_model
from models.generator import DirectGenerator
from pipelines import think
from pipelines.baselines import BASELINES, Policy, PopularityPolicy, build_baselines
from pipelines.eval_context import GENERATORS, SERVED, EvalContext, EvaluateConfig
from pipelines.feature_tables import query_stats_at
from pipelines.generator_policy import GeneratorPolicy, feast_contexts
from pipelines.hybrid_policy import HybridPolicy


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

    data = aigq_home() / "data"
    categories = pd.read_parquet(data / "categories.parquet")
    catalogue = QueryCatalogue(pd.read_parquet(data / "queries.parquet"), categories)
    contexts = feast_contexts(open_store(cfg.store))
    fallback = PopularityPolicy(ctx.log, ctx.cutoff, in_categories=True)
    return [
        GeneratorPolicy(
            n,
            DirectGenerator(
                aigq_home() / "models" / n,
                is_valid=catalogue.is_valid,
                vocabulary=list(catalogue.category_of),
                category_of=catalogue.category_of,
            ),
            contexts,
            categories,
            fallback,
        )
        for n in wanted
    ]


def served_policies(cfg: EvaluateConfig, ctx: EvalContext) -> list[Policy]:
    """Think (its mappings) and the hybrid online policy, when their artifacts exist."""

    home = aigq_home()
    wanted = [n for n in SERVED if n in cfg.policies]
    if not wanted or not think.mappings_path().exists():
        return []
    fallback = PopularityPolicy(ctx.log, ctx.cutoff, in_categories=True)
    think_policy = think.ThinkPolicy(think.load_mappings(), ctx.log, fallback)
    out: list[Policy] = [think_policy] if "think" in wanted else []
    if "hybrid" in wanted and (home / "models" / "ctr" / "model.pt").exists():
        catalogue = QueryCatalogue.load(home / "data")
        direct_dir = newest_direct_model()
        direct = GeneratorPolicy(
            f"{direct_dir.name}@hybrid",
            DirectGenerator(
                direct_dir,
                is_valid=catalogue.is_valid,
                vocabulary=sorted(catalogue.vocabulary),
                category_of=catalogue.category_of,
            ),
            feast_contexts(open_store(cfg.store), HINTQ_SERVICE),
            pd.read_parquet(home / "data" / "categories.parquet"),
            fallback,
        )
        out.append(
            HybridPolicy(
                direct,
                think_policy,
                fallback,
                CTRScorer(home / "models" / "ctr"),
                query_stats_at(home / "features" / "query_stats.parquet", ctx.cutoff),
                catalogue,
                ctx.log,
            )
        )
    return out
