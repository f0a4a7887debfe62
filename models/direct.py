"""AIGQ-Direct as a unit of batch work: the model directory serving and the nearline job use, and
a callable over a pandas batch of user contexts (the shape Ray Data's `map_batches` and Spark's
`mapInPandas` take). Shared by the nearline job and both model servers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from core.catalogue import QueryCatalogue
from core.config import aigq_home
from core.errors import AigqError
from models.generator import DirectGenerator, GenerationConfig, build_prompt

DIRECT_MODELS = ("direct_grpo", "direct_sft")  # serving takes whichever is newest


def newest_direct_model(required: bool = True) -> Path | None:
    """The newest trained Direct model directory (IL-GRPO or IL-SFT); with `required=False`,
    None when there is none yet."""
    found = [aigq_home() / "models" / n for n in DIRECT_MODELS if (aigq_home() / "models" / n / "config.json").exists()]
    if not found and not required:
        return None
    if not found:
        raise AigqError(f"no Direct model under {aigq_home() / 'models'}; run `aigq train sft` (and grpo)")
    return max(found, key=lambda p: (p / "config.json").stat().st_mtime)


class DirectBatch:
    """contexts (one row per user, direct_generation_v1 columns) -> their Direct lists.
    Loads the model once per worker; callable on a pandas batch (Ray/Spark-ready)."""

    def __init__(self, model_dir: Path, batch_size: int, seed: int = 0):
        self.catalogue = QueryCatalogue.load(aigq_home() / "data")
        self.generator = DirectGenerator(
            model_dir,
            GenerationConfig(batch_size=batch_size, seed=seed),
            is_valid=self.catalogue.is_valid,
            vocabulary=sorted(self.catalogue.vocabulary),
            category_of=self.catalogue.category_of,
        )
        self.version = self.generator.version

    def __call__(self, contexts: pd.DataFrame) -> pd.DataFrame:
        queries = self.lists(contexts.to_dict("records"))
        return pd.DataFrame({"user_id": contexts["user_id"].to_numpy(), "queries": queries})

    def lists(self, contexts: Sequence[Mapping]) -> list[list[str]]:
        """The Direct list of each user context (a dict of direct_generation_v1 features): what
        the model servers and the request path call, one prompt per user whatever the batch."""
        prompts = [build_prompt(c, self.catalogue.name, self.catalogue.is_valid) for c in contexts]
        return [g.model_queries for g in self.generator.generate(prompts, scopes=self.generator.scopes_for(contexts))]
