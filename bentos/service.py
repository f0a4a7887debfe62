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
from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
from anyio import from_thread
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from models.ctr import CTRScorer as Scorer
from models.direct import DirectBatch
from serving.admission import Admission, arrived_at
from serving.config import from_env as serving_config
from serving.contract import Context, HintQRequest, HintQRequestBody, RequestError, decode_json, parse_request
from serving.hintq import HintQ as Core
from serving.ranking import RecordScorer, limit_torch_threads, load_scorer

log = logging.getLogger(__name__)


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
# dead or stuck CTR worker costs the probing request 0.25 s while the ranker circuit serves merge order
@bentoml.service(name="aigq_ctr", traffic={"timeout": 0.25})
class CTRScorer:
    model = bentoml.models.BentoModel("aigq-ctr:latest")

    def __init__(self) -> None:
        limit_torch_threads(serving_config("bentoml").torch_threads)
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

        return self.batch.lists(contexts)


@bentoml.service(name="aigq_hintq", traffic={"timeout": 10})
class HintQ:
    ctr = bentoml.depends(CTRScorer)
    direct = bentoml.depends(DirectGenerator)

    def __init__(self) -> None:
        cfg = serving_config("bentoml")
        # scored in this process by default (one hop less per request); the aigq_ctr service
        # for the deployments that score apart (`--set ctr_remote=true`)
        ctr_model = bentoml.models.get("aigq-ctr:latest")
        scorer = self.score_remote if cfg.ctr_remote else load_scorer(ctr_model.path)
        if not cfg.ctr_remote:  # the version of the model it was registered from, not of its copy
            scorer.version = aigq_version(ctr_model)
        direct_model = bentoml.models.get("aigq-direct:latest")
        self.core = Core(cfg, scorer=scorer, direct_fn=self.generate_remote, direct_version=aigq_version(direct_model))
        # the versions the models have under $AIGQ_HOME/models, the same on every server
        self.core.versions["ctr"] = aigq_version(ctr_model)
        self._loop_token = None  # see _reach_the_event_loop

    def score_remote(self, rows: list[dict]) -> list[float]:
        self._reach_the_event_loop()
        return _retry_once(lambda: self.ctr.score(rows=rows))

    def generate_remote(self, user: dict) -> list[str]:
        self._reach_the_event_loop()
        return _retry_once(lambda: self.direct.generate([user]))[0]

    def _reach_the_event_loop(self) -> None:
        """BentoML's dependency clients go back to this worker's event loop through AnyIO, which
        finds the loop from the calling thread: a request's worker thread has it, the thread in
        which a circuit probes a dead dependency (serving.circuit) does not. That thread borrows
        the token a request's thread carries."""
        if getattr(from_thread.threadlocals, "current_token", None) is not None:
            self._loop_token = from_thread.threadlocals.current_token
        elif self._loop_token is not None:
            from_thread.threadlocals.current_token = self._loop_token

    @bentoml.api(route="/recommend", input_spec=HintQRequestBody)
    def recommend(
        self, user_id: str, k: int = 8, context: Context | None = None, ctx: bentoml.Context = None
    ) -> HintQAnswer:
        """Up to k pre-search query suggestions for a user, each with its score and source."""

        body = context.model_dump(exclude_none=True, exclude_defaults=True) if context else {}
        arrived = arrived_at(ctx.request.headers) if ctx is not None else None
        return HintQAnswer(**self.core.recommend(HintQRequest(user_id, k, body), arrived=arrived))

    @bentoml.on_shutdown
    def close(self) -> None:
        self.core.close()


def aigq_version(model) -> str:
    """The version the model has under $AIGQ_HOME/models (what KServe and `aigq recommend`
    report), recorded at registration; the BentoML tag for models registered before that."""
    return model.info.metadata.get("aigq_version") or str(model.tag)


class ContractFirst:
    """ASGI middleware in front of `/recommend`: the shared contract decodes and validates the body
    before BentoML does, so a bad request gets the contract's 400 (`{"error": message}`, the
    schema BentoML publishes for its 400s; BentoML's own would name its internal IODescriptor
    class and carry a list where its schema says string), and a JSON body sent with another
    content type (plain `curl -d` says form-encoded) is read as the JSON it is."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/recommend":
            await self.app(scope, receive, send)
            return
        raw = await _body(receive)
        try:
            parse_request(decode_json(raw))
        except RequestError as e:
            await JSONResponse({"error": str(e)}, status_code=400)(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        await self.app({**scope, "headers": headers}, _replay(raw, receive), send)


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(raw: bytes, receive):
    """The body read once, handed on; after it, the client's own channel (its disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


HintQ.add_asgi_middleware(ContractFirst)
# outermost: admission stamps the arrival before the contract reads the body
HintQ.add_asgi_middleware(Admission, paths=("/recommend",))


def _retry_once(call):
    """Dependency calls are idempotent: retry once on a dropped keep-alive connection."""
    try:
        return call()
    except (ConnectionError, OSError) as e:
        log.info("retrying a dependency call after %s", e)
        return call()
