"""BentoML services: a CTR scorer, a Direct generator and the HintQ orchestrator.

    bentoml serve bentos.service:HintQ      (after `aigq serve bento --register-only`, or just
                                             `aigq serve bento`, which registers and serves)

The orchestrator takes both model services with `bentoml.depends` (separate processes under
`bentoml serve`): it runs the serving-agnostic online path (`serving.hintq`) and asks the CTR
service for scores, and the Direct service for a list when a known user has no nearline list yet.
Models are BentoML models (`aigq-ctr`, `aigq-direct`) registered from $AIGQ_HOME/models by
`bentos.models.register`. The orchestrator reads Feast and the catalogue under $AIGQ_HOME.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.ctr import CTRScorer as Scorer
from models.direct import DirectBatch
from serving.config import ServingConfig
from serving.contract import HintQRequest, parse_context
from serving.hintq import HintQ as Core
from serving.ranking import RecordScorer

log = logging.getLogger(__name__)

QueryText = Annotated[str, Field(max_length=100)]


class Context(BaseModel):
    """Optional request-time fields (unknown fields are rejected with a 400)."""

    model_config = ConfigDict(extra="forbid")
    hour: int | None = Field(None, ge=0, le=23, description="the user's local hour")
    session_queries: list[QueryText] = Field(
        default_factory=list, max_length=20, description="searches of the current session not yet in Feast"
    )
    categories: list[QueryText] = Field(
        default_factory=list, max_length=20, description="category ids the page is about (cold-start hint)"
    )


class HintQRequestBody(BaseModel):
    """The HintQ request (the same contract as KServe's `hintq` instances)."""

    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    k: int = Field(8, ge=1, le=20, description="list length")
    context: Context | None = None


class Suggestion(BaseModel):
    query: str
    score: float
    source: Literal["direct", "think", "fallback"]


class HintQAnswer(BaseModel):
    request_id: str
    suggestions: list[Suggestion]
    degraded: bool
    model_versions: dict[str, str]


# the orchestrator's client waits this long (x1.01) for a score: scoring takes milliseconds, so a
# dead or stuck CTR worker costs one request 1 s, then HintQ's ranker circuit serves merge order
@bentoml.service(name="aigq_ctr", traffic={"timeout": 1})
class CTRScorer:
    model = bentoml.models.BentoModel("aigq-ctr:latest")

    def __init__(self) -> None:
        self.scorer = RecordScorer(Scorer(self.model.path))

    @bentoml.api
    def score(self, rows: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=512)]) -> list[float]:
        """Click probabilities of CTR rows (user + query features, `query` required)."""
        from bentoml.exceptions import InvalidArgument

        if not all(isinstance(r.get("query"), str) for r in rows):
            raise InvalidArgument("each row needs a string `query`")
        try:
            return self.scorer(rows)
        except (TypeError, ValueError, KeyError) as e:
            raise InvalidArgument(f"rows do not fit the CTR model: {type(e).__name__}: {e}"[:300]) from None


@bentoml.service(name="aigq_direct", traffic={"timeout": 60})
class DirectGenerator:
    model = bentoml.models.BentoModel("aigq-direct:latest")

    def __init__(self) -> None:
        self.batch = DirectBatch(Path(self.model.path), batch_size=64)

    # adaptive batching: concurrent requests share one generate() call (keep the latency budget
    # in the hundreds of ms: a small one makes the batcher shed load with 503s)
    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=2000)
    def generate(self, contexts: list[dict[str, Any]]) -> list[list[str]]:
        """Direct lists for user contexts (direct_generation_v1 features)."""

        frame = pd.DataFrame([{"user_id": c.get("user_id", ""), **c} for c in contexts])
        return [list(q) for q in self.batch(frame)["queries"]]


@bentoml.service(name="aigq_hintq", traffic={"timeout": 10})
class HintQ:
    ctr = bentoml.depends(CTRScorer)
    direct = bentoml.depends(DirectGenerator)

    def __init__(self) -> None:
        self.core = Core(
            ServingConfig(store=os.environ.get("AIGQ_FEATURE_STORE", "sqlite"), server="bentoml"),
            scorer=self.score_remote,
            direct_fn=self.generate_remote,
            direct_version=str(bentoml.models.get("aigq-direct:latest").tag),
        )
        self.core.versions["ctr"] = str(bentoml.models.get("aigq-ctr:latest").tag)

    def score_remote(self, rows: list[dict]) -> list[float]:
        return _retry_once(lambda: self.ctr.score(rows=rows))

    def generate_remote(self, user: dict) -> list[str]:
        return _retry_once(lambda: self.direct.generate([user]))[0]

    @bentoml.api(route="/recommend", input_spec=HintQRequestBody)
    def recommend(self, user_id: str, k: int = 8, context: Context | None = None) -> HintQAnswer:
        """Up to k pre-search query suggestions for a user, each with its score and source."""

        ctx = parse_context((context or Context()).model_dump(exclude_none=True, exclude_defaults=True))
        return HintQAnswer(**self.core.recommend(HintQRequest(user_id, k, ctx)))

    @bentoml.on_shutdown
    def close(self) -> None:
        self.core.close()


def _retry_once(call):
    """Dependency calls are idempotent: retry once on a dropped keep-alive connection."""
    try:
        return call()
    except (ConnectionError, OSError) as e:
        log.info("retrying a dependency call after %s", e)
        return call()
