"""The KServe model classes: the CTR and Direct predictors and the HintQ transformer, and the two
changes made to KServe's REST server (loopback bind, hardened routes).

Importing kserve parses sys.argv: only `servers.kserve_server.main` imports this module, after
handing kserve an argv of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import httpx
import kserve
import kserve.protocol.rest.server as rest
import numpy as np
import uvicorn
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from kserve.model_server import app as kserve_app
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.catalogue import QueryCatalogue
from core.config import aigq_home
from models.direct import DirectBatch, newest_direct_model
from serving.admission import Admission, arrived_at
from serving.config import from_env as serving_config
from serving.contract import RequestError, decode_json, parse_request
from serving.hintq import HintQ
from serving.ranking import limit_torch_threads, load_scorer

TRANSFORMER_NAME = "hintq"
CTR_NAME = "ctr"
DIRECT_NAME = "direct"
MAX_ROWS = 512  # CTR rows per request
MAX_INSTANCES = 64  # HintQ requests or Direct contexts per call


def bind_loopback(host: str) -> None:
    """KServe's REST server hard-codes 0.0.0.0; hand it a uvicorn whose Config takes our host."""

    class LoopbackUvicorn:
        def __getattr__(self, name):
            return getattr(uvicorn, name)

        @staticmethod
        def Config(*args, **kwargs):  # noqa: N802 - mirrors uvicorn.Config
            kwargs["host"] = host
            return uvicorn.Config(*args, **kwargs)

    rest.uvicorn = LoopbackUvicorn()


def harden_rest_app() -> None:
    """Four changes to KServe's REST app, made where it adds its exception handlers: (1) the model
    repository routes (`/v2/repository/models/NAME/load|unload`) answer 404: models load at
    start-up here, and an open `unload` would let any client take the serving model down;
    (2) a versioned model URL (`/v2/models/NAME/versions/V/...`) is a 404, not KServe's 501 Not
    Implemented (no version is served here: a client error, not a 5xx); (3) a v2 request without
    the binary-extension header is JSON, whatever its content type; (4) admission control
    (`serving.admission`) on the inference routes."""

    async def version_not_found(_, exc):
        return JSONResponse(
            status_code=404,
            content={"error": f"no such model version: {exc} (address the model without /versions/...)"},
        )

    class NoModelRepository:  # plain ASGI: independent of how FastAPI nests included routers
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and "/repository/" in scope.get("path", ""):
                response = JSONResponse(
                    status_code=404,
                    content={"error": "the model repository API is disabled: models are loaded at start-up"},
                )
                await response(scope, receive, send)
                return
            await self.app(scope, receive, send)

    class JSONInferWithoutBinaryHeader:
        """An Open Inference Protocol request without `inference-header-content-length` is all JSON
        (tritonclient's JSON mode sends it without a content type): read it as JSON, instead of
        KServe's refusal of "byte inputs" a client never sent."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and scope.get("path", "").endswith("/infer"):
                headers = dict(scope["headers"])
                if b"inference-header-content-length" not in headers and b"json" not in headers.get(
                    b"content-type", b""
                ):
                    kept = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                    scope = {**scope, "headers": [*kept, (b"content-type", b"application/json")]}
            await self.app(scope, receive, send)

    add_handlers = rest.RESTServer._add_exception_handlers

    async def invalid_request(_, exc):
        # FastAPI echoes the input in its validation errors; an input holding NaN/Infinity then
        # fails to render (a 500). Name the fields, not the values.
        errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return JSONResponse(status_code=400, content={"error": "invalid request body", "detail": errors})

    async def http_error(_, exc):
        # Starlette's own 4xx (unparseable body, unknown route, wrong method) in the same
        # `{"error": message}` shape as every other error this server answers
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)}, headers=exc.headers)

    def hardened(self, app):
        add_handlers(self, app)
        app.add_exception_handler(StarletteHTTPException, http_error)
        app.add_exception_handler(NotImplementedError, version_not_found)
        app.add_exception_handler(RequestValidationError, invalid_request)
        app.add_middleware(NoModelRepository)
        app.add_middleware(JSONInferWithoutBinaryHeader)
        app.add_middleware(Admission, paths=(":predict", "/infer"))  # outermost: stamps the arrival
        document_errors(app)

    rest.RESTServer._add_exception_handlers = hardened


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "array", "items": {"type": "object"}}},
    "required": ["error"],
}
ERROR_RESPONSES = {
    "400": "a malformed request; `error` says what is wrong",
    "404": "no such model, model version or route",
    "503": "the model is not ready",
}


def document_errors(app) -> None:
    """Publish what the hardened server answers: every operation may answer 400, 404 or 503 with
    `{"error": message}` (FastAPI's generated schema lists 422, which this server never sends,
    and no error body), and `/metrics` is Prometheus text. Clients and schemathesis then check
    the answers against a schema that tells the truth."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for item in schema["paths"].values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for code, description in ERROR_RESPONSES.items():
                    responses.setdefault(code, {"description": description, "content": error})
        metrics = schema["paths"].get("/metrics", {}).get("get")
        if metrics:
            metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def decode_v1(payload: Any, what: str, limit: int) -> list:
    """`instances` of a v1 body (dict, or raw bytes when the client sent no JSON content type)."""
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = decode_json(payload)
        except RequestError as e:
            raise InvalidInput(str(e)) from None
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput(f'expected {{"instances": [{what}, ...]}}')
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidInput(f"instances: a non-empty list of {what}")
    if len(instances) > limit:
        raise InvalidInput(f"instances: at most {limit} per request, got {len(instances)}")
    return instances


class CTRPredictor(kserve.Model):
    def __init__(self, name: str = CTR_NAME):
        super().__init__(name)

    def load(self) -> bool:
        limit_torch_threads(serving_config("kserve").torch_threads)
        self.scorer = load_scorer()  # a missing/corrupt model fails here, at start-up
        self.ready = True
        return True

    def _rows(self, rows) -> list[float]:
        if not all(isinstance(r, dict) and isinstance(r.get("query"), str) for r in rows):
            raise InvalidInput("each CTR row is an object with a string `query` (plus user/query features)")
        try:
            return self.scorer(rows)
        except (TypeError, ValueError, KeyError) as e:
            raise InvalidInput(f"rows do not fit the CTR model: {type(e).__name__}: {e}"[:300]) from None

    async def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, InferRequest):
            return await asyncio.to_thread(self._predict_v2, payload)
        rows = decode_v1(payload, "CTR rows", MAX_ROWS)
        return {"predictions": await asyncio.to_thread(self._rows, rows), "model_version": self.scorer.version}

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        probs = self._rows(v2_rows(request))
        out = InferOutput("probability", shape=[len(probs)], datatype="FP32", data=[float(p) for p in probs])
        return InferResponse(response_id=request.id or str(uuid.uuid4()), model_name=self.name, infer_outputs=[out])

    # the Open Inference Protocol's model metadata: a client (tritonclient, ...) discovers the
    # tensors here instead of reading the README
    def get_input_types(self) -> list[dict]:
        return [{"name": "rows", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [{"name": "probability", "datatype": "FP32", "shape": [-1]}]


def v2_rows(request: InferRequest) -> list:
    """The CTR rows of a v2 request: a BYTES tensor `rows` of JSON-encoded objects. Every
    malformed tensor (wrong name or type, a shape that does not match its data, an element that
    is not a string) is an InvalidInput (400), never a 500."""
    tensors = {i.name: i for i in request.inputs}
    if "rows" not in tensors or tensors["rows"].datatype != "BYTES":
        raise InvalidInput("v2: expected a BYTES input tensor `rows` of JSON-encoded CTR rows")
    tensor = tensors["rows"]
    data = tensor.data if tensor.data is not None else []
    if not isinstance(data, (list, tuple)) and not hasattr(data, "shape"):
        raise InvalidInput("rows: data must be a list of JSON-encoded CTR rows")
    size = int(np.prod(tensor.shape)) if tensor.shape else 0
    try:
        raw = tensor.as_numpy().reshape(-1)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"rows: shape {tensor.shape} does not match its data ({e})"[:300]) from None
    if size != len(raw):
        raise InvalidInput(f"rows: shape {tensor.shape} declares {size} elements, the data holds {len(raw)}")
    if len(raw) > MAX_ROWS:
        raise InvalidInput(f"rows: at most {MAX_ROWS}, got {len(raw)}")
    rows = []
    for i, element in enumerate(raw):
        if not isinstance(element, (bytes, bytearray, str)):
            raise InvalidInput(f"rows[{i}]: a string (one JSON-encoded CTR row), got {type(element).__name__}")
        try:
            rows.append(json.loads(element))
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInput(f"rows[{i}]: not a JSON object ({e})"[:200]) from None
    return rows


class DirectPredictor(kserve.Model):
    def __init__(self, name: str = DIRECT_NAME):
        super().__init__(name)

    def load(self) -> bool:
        self.batch = DirectBatch(newest_direct_model(), batch_size=MAX_INSTANCES)
        self.catalogue = QueryCatalogue.load(aigq_home() / "data")
        self.ready = True
        return True

    async def predict(self, payload, headers=None, response_headers=None):
        contexts = decode_v1(payload, "user contexts (direct_generation_v1 features)", MAX_INSTANCES)
        if not all(isinstance(c, dict) for c in contexts):
            raise InvalidInput("each instance is an object of direct_generation_v1 features")
        lists = await asyncio.to_thread(self.batch.lists, contexts)
        return {"predictions": lists, "model_version": self.batch.version}


class HintQTransformer(kserve.Model):
    """The HintQ path (`serving.hintq`) behind KServe's v1 protocol. The CTR model scores in this
    process by default; with `ctr_remote` (and for Direct lists of users the nearline job has
    not reached) it calls the predictor (`--predictor_host`), as BentoML calls its services."""

    def __init__(self, name: str = TRANSFORMER_NAME, store: str = "sqlite"):
        super().__init__(name)
        self.store = store
        self.predictor_host = ""

    def load(self) -> bool:
        cfg = serving_config("kserve")
        cfg.store = self.store or cfg.store
        # kept on the model: a worker process (below) does not see the server's published config
        if not self.predictor_host and self.predictor_config:
            self.predictor_host = self.predictor_config.predictor_host
        host = self.predictor_host
        self.client = httpx.Client() if host else None
        remote = (lambda name, timeout: RemoteModel(self.client, host, name, timeout)) if host else None
        self.core = HintQ(
            cfg,
            scorer=remote(CTR_NAME, cfg.ctr_timeout_seconds) if remote and cfg.ctr_remote else None,
            direct_fn=remote(DIRECT_NAME, cfg.direct_timeout_seconds) if remote else None,
        )
        self.ready = True
        return True

    async def predict(self, payload, headers=None, response_headers=None):
        instances = decode_v1(payload, "HintQ requests", MAX_INSTANCES)
        try:
            requests = [parse_request(i) for i in instances]
        except RequestError as e:
            raise InvalidInput(str(e)) from None
        arrived = arrived_at(headers)
        return {"predictions": await asyncio.to_thread(self._answers, requests, arrived)}

    def _answers(self, requests, arrived) -> list[dict]:
        return [self.core.recommend(r, arrived=arrived) for r in requests]

    def stop(self):
        self.core.close()
        if self.client is not None:
            self.client.close()

    # KServe's server with --workers N starts each worker by pickling the loaded models (a spawned
    # process): a worker gets this transformer without its path and loads its own, with its own
    # store client and log writer. A spawned process inherits none of the parent's patches of
    # KServe's REST app, so the worker applies them again before its app is built.
    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("core", "client")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        harden_rest_app()
        load_and_stop_with_the_app(self)


def load_and_stop_with_the_app(model: HintQTransformer) -> None:
    """In a worker process: load the model when its KServe app starts (before it takes requests)
    and stop it when the app shuts down. Not while the worker is unpickled: its supervisor pings
    it from then on and kills a worker that has not answered within 5 s, which a load on two busy
    cores can take. KServe stops the models of its parent process only: a worker closes its own
    path here, so the answers still queued for its log writer are written (not at exit: uvicorn
    ends a worker by re-raising SIGTERM, which skips atexit). Starlette 1.x has no startup or
    shutdown handlers: the app's lifespan is wrapped instead."""
    inner = kserve_app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(model.load)
        async with inner(app) as state:
            yield state
        model.stop()

    kserve_app.router.lifespan_context = lifespan


class RemoteModel:
    """One of the predictor's models (`ctr`: rows -> probabilities; `direct`: user features ->
    a Direct list) as the plain callable the HintQ path takes: blocking HTTP on a kept-alive
    connection (the path runs in a worker thread), its version from the predictor's answers."""

    def __init__(self, client, host: str, name: str, timeout: float):
        self.client, self.url, self.timeout = client, f"http://{host}/v1/models/{name}:predict", timeout
        self.name, self.version = name, ""

    def __call__(self, value):
        instances = value if self.name == CTR_NAME else [value]
        r = self.client.post(
            self.url,
            content=json.dumps({"instances": instances}, default=str),
            headers={"content-type": "application/json"},
            timeout=self.timeout,
        )
        r.raise_for_status()
        out = r.json()
        self.version = out.get("model_version", self.version)
        return out["predictions"] if self.name == CTR_NAME else out["predictions"][0]
