"""The HTTP front door: ``aquifer serve`` (uvicorn) serves :func:`create_app`.

Routes: ``POST /v1/context``, the OpenAI-compatible gateway ``POST /v1/chat/completions`` and ``GET /v1/models``
(:mod:`aquifer.service.gateway`), ``GET /v1/lineage/{chunk_id}``, ``GET /v1/decisions/{decision_id}``, ``GET /healthz``,
``GET /readyz``, ``GET /metrics`` (Prometheus), OpenAPI docs at ``/docs``. Every error is a JSON
:class:`~aquifer.service.schemas.ErrorResponse`, mapped from a domain exception in one place; no stack trace
ever leaves the process.

No ``from __future__ import annotations`` here: FastAPI resolves the dependency aliases defined inside
:func:`create_app` from the annotations at definition time.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

import fastapi_offline
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from aquifer.ids import CHUNK_ID_PATTERN, DECISION_ID_PATTERN, IDENTIFIER_PATTERN, Identifier
from aquifer.service.gateway import PURPOSE_HEADER, Gateway, openai_error
from aquifer.service.retrieval import (
    STAGES,
    BadRequest,
    PrefilterWarmer,
    RetrievalError,
    Retriever,
    Timings,
    Unauthenticated,
)
from aquifer.service.schemas import (
    ChatRequest,
    ContextRequest,
    ContextResponse,
    DecisionRecord,
    ErrorResponse,
    ModelList,
    OpenAIErrorResponse,
)
from aquifer.settings import Settings, get_settings

log = logging.getLogger("aquifer.service")

DOCS_ASSETS = "/docs-assets"

_STATUS = {
    400: "Invalid request, naming the field (OpenAI-compatible routes answer 400 where the others answer 422)",
    401: "Missing or invalid agent token (WWW-Authenticate: Bearer)",
    403: "Refused by policy, with reason codes and their explanations",
    404: "No such record, or one this agent may not read (the same answer for both)",
    422: "Invalid request, naming the field: a value out of range, or an id that is not an identifier",
    502: "The model endpoint is unreachable or answered with an error",
    503: "Policy engine or index unavailable (fail closed, nothing served)",
    504: "The model endpoint did not answer within the model's timeout_s",
}


def _errors(*statuses: int, openai: bool = False) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route for OpenAPI, each with its body model, so a generated client knows them."""
    model = OpenAIErrorResponse if openai else ErrorResponse
    return {status: {"model": model, "description": _STATUS[status]} for status in statuses}


OPENAI_ROUTES = ("/v1/chat/completions", "/v1/models")
"""Routes whose errors take OpenAI's shape (``{"error": {"message": ...}}``), so OpenAI clients show them."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage = Histogram(
            "aquifer_stage_seconds", "Time per request stage", ["stage"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )  # fmt: skip
        self.requests = Counter("aquifer_requests_total", "Requests by route and status", ["route", "status"],
                                registry=self.registry)  # fmt: skip
        self.chunks = Counter("aquifer_chunk_decisions_total", "Per-chunk decisions by outcome and reason",
                              ["outcome", "reason"], registry=self.registry)  # fmt: skip
        self.upstream = Histogram(
            "aquifer_upstream_seconds", "Gateway calls to model endpoints, by model and outcome", ["model", "outcome"],
            registry=self.registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )  # fmt: skip
        self.alerts = Counter("aquifer_prefilter_alerts_total", "Chunks the prefilter let through but the policy "
                              "denied (dropped)", registry=self.registry)  # fmt: skip

    def observe_stages(self, timings: Timings) -> None:
        for stage in STAGES[1:]:  # auth is observed by the authentication dependency
            if stage in timings.seconds:
                self.stage.labels(stage).observe(timings.seconds[stage])


def create_app(settings: Settings | None = None, *, retriever: Retriever | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()
    bearer = HTTPBearer(auto_error=False, description="An agent token (aquifer agents issue-token)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.retriever = retriever or Retriever(settings)

        def observe(model: str, outcome: str, seconds: float) -> None:
            metrics.upstream.labels(model, outcome).observe(seconds)

        app.state.gateway = Gateway(app.state.retriever, settings, observe=observe)
        warmer = None
        if settings.prefilter_warm:
            interval = max(settings.policy_reload_interval_s, 0.5)
            warmer = PrefilterWarmer(app.state.retriever, interval_s=interval).start()
        app.state.warmer = warmer
        yield
        if warmer is not None:
            warmer.stop()
        await app.state.gateway.aclose()
        app.state.retriever.engine.close()

    # The API docs are served with their assets from this process (fastapi-offline ships Swagger UI and ReDoc):
    # FastAPI's default pages load them from a CDN, and render blank on the air-gapped machines Aquifer is for.
    app = FastAPI(
        title="Aquifer",
        summary="Governed, traceable context for AI agents",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.metrics = metrics
    assets = FilePath(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI documents a 422 for every route with a body; the OpenAI-compatible routes answer 400 instead.
        schema = generate()
        for path in OPENAI_ROUTES:
            for operation in schema["paths"].get(path, {}).values():
                operation["responses"].pop("422", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title="Aquifer API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=str(app.openapi_url),
            title="Aquifer API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    def get_retriever(request: Request) -> Retriever:
        return request.app.state.retriever  # type: ignore[no-any-return]

    RetrieverDep = Annotated[Retriever, Depends(get_retriever)]

    def current_agent(
        request: Request,
        retriever: RetrieverDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        timings = Timings()
        with timings.stage("auth"):
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise Unauthenticated("missing bearer token (Authorization: Bearer <agent token>)")
            agent = retriever.authenticate(credentials.credentials)
        metrics.stage.labels("auth").observe(timings.seconds["auth"])
        request.state.timings = timings
        return agent

    AgentDep = Annotated[str, Depends(current_agent)]

    @app.exception_handler(RetrievalError)
    async def _domain_error(request: Request, exc: RetrievalError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        metrics.requests.labels(_route(request), str(exc.status)).inc()
        if request.url.path in OPENAI_ROUTES:
            return JSONResponse(openai_error(exc), status_code=exc.status, headers=headers)
        body = ErrorResponse(error=exc.error, detail=exc.detail, reasons=exc.reasons, explanations=exc.explanations,
                             field=exc.field)  # fmt: skip
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        why = first.get("msg")
        pattern = (first.get("ctx") or {}).get("pattern")
        if first.get("type") == "string_pattern_mismatch" and pattern == IDENTIFIER_PATTERN:
            why = "not an identifier (a lower-case letter, then lower-case letters, digits or _; 2-63 characters)"
        if request.url.path in OPENAI_ROUTES:  # OpenAI answers 400 to a malformed request
            return await _domain_error(request, BadRequest(f"{where}: {why}", field=where))
        body = ErrorResponse(error="invalid_request", detail=f"{where}: {why}", field=where)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # No such route (404), or a method it does not take (405): the same error shape as every other answer.
        if exc.status_code == 400:  # FastAPI could not parse the body (bytes that are not UTF-8, JSON nested too deep)
            why = "not a JSON document Aquifer can read (invalid UTF-8, or nested too deeply)"
            invalid = RequestValidationError([{"loc": ("body",), "msg": why, "type": "json_invalid"}])
            return await _validation_error(request, invalid)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = "no such route (the operations are listed at /docs)" if exc.status_code == 404 else str(exc.detail)
        body = ErrorResponse(error=kind, detail=detail)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        body = ErrorResponse(error="internal", detail="internal error; see the service log")
        return JSONResponse(body.model_dump(), status_code=500)

    @app.post("/v1/context", response_model=ContextResponse, responses=_errors(401, 403, 422, 503), tags=["context"])
    def context(
        body: ContextRequest, agent: AgentDep, retriever: RetrieverDep, request: Request, http: Response
    ) -> ContextResponse:
        """Governed context for a query: only chunks this agent may see for this purpose through this model,
        redacted as the policy requires, each with its provenance receipt. The ``Server-Timing`` header gives the
        time of each stage in milliseconds."""
        timings: Timings = request.state.timings
        response = retriever.context(agent, body, timings)
        http.headers["Server-Timing"] = ", ".join(
            f"{stage};dur={timings.seconds[stage] * 1000:.3f}" for stage in STAGES if stage in timings.seconds
        )
        metrics.observe_stages(timings)
        metrics.requests.labels("context", "200").inc()
        metrics.chunks.labels("allow", "").inc(len(response.chunks))
        new_alerts = len(retriever.alerts)
        if new_alerts:
            metrics.alerts.inc(new_alerts)
            retriever.alerts.clear()
        return response

    @app.post("/v1/chat/completions", responses=_errors(400, 401, 403, 502, 503, 504, openai=True), tags=["gateway"])
    async def chat_completions(
        body: ChatRequest,
        agent: AgentDep,
        request: Request,
        purpose: Annotated[str | None, Header(alias=PURPOSE_HEADER, description="The purpose of this call")] = None,
    ) -> Response:
        """OpenAI-compatible chat completion, grounded in governed context (streaming or not): the official
        ``openai`` client with ``base_url=<aquifer>/v1`` and an agent token as api key works unchanged. The answer
        carries an ``aquifer`` member (the first chunk's, when streaming): citations ``[n]`` with their provenance
        receipts, the decision id, and what the policy withheld and why."""
        gateway: Gateway = request.app.state.gateway
        timings: Timings = request.state.timings
        prepared = await run_in_threadpool(gateway.prepare, agent, body, purpose, timings)
        metrics.observe_stages(timings)
        headers = {"X-Aquifer-Decision-Id": prepared.retrieval.decision_id}
        if body.stream:
            events = await gateway.open_stream(prepared)
            metrics.requests.labels("chat", "200").inc()
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        answer = await gateway.complete(prepared)
        metrics.requests.labels("chat", "200").inc()
        return JSONResponse(answer, headers=headers)

    @app.get("/v1/models", response_model=ModelList, responses=_errors(401, 503, openai=True), tags=["gateway"])
    def models(agent: AgentDep, retriever: RetrieverDep) -> ModelList:
        """The registered models the policy lets this agent send context to (OpenAI's model list), with their
        locality; the agent's default model first."""
        return ModelList.of(retriever.models(agent))

    @app.get("/v1/lineage/{chunk_id}", responses=_errors(401, 403, 404, 422, 503), tags=["lineage"])
    def lineage(
        chunk_id: Annotated[str, Path(pattern=CHUNK_ID_PATTERN, description="A chunk id (gld_...) or platinum id")],
        agent: AgentDep,
        retriever: RetrieverDep,
        purpose: Annotated[Identifier | None, Query(description="Default: the agent's first purpose")] = None,
        model: Annotated[Identifier | None, Query(description="Default: the agent's default model")] = None,
    ) -> dict[str, Any]:
        """The lineage of a chunk this agent may read (for this purpose and model), back to its landing file."""
        return retriever.lineage(agent, chunk_id, purpose=purpose, model=model)

    @app.get(
        "/v1/decisions/{decision_id}",
        response_model=DecisionRecord,
        responses=_errors(401, 403, 404, 422, 503),
        tags=["audit"],
    )
    def decision(
        decision_id: Annotated[str, Path(pattern=DECISION_ID_PATTERN, description="dec_ and 32 hex digits")],
        agent: AgentDep,
        retriever: RetrieverDep,
    ) -> dict[str, Any]:
        """A decision record from the log, for agents the policy lets read them (role ``auditor``)."""
        return retriever.decision(agent, decision_id)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "Not ready, with what is missing"}})
    def readyz(retriever: RetrieverDep, request: Request) -> JSONResponse:
        problems = retriever.readiness()
        warmer: PrefilterWarmer | None = request.app.state.warmer
        prefilter = {"warm": warmer is not None and warmer.warmed is not None,
                     "warm_up_seconds": warmer.last_seconds if warmer else None}  # fmt: skip
        body = {"status": "ready" if not problems else "not_ready", "problems": problems,
                "policy_revision": retriever.engine.revision, "index_version": retriever.index.version(),
                "embedding_model": retriever.embedder.name, "embedding_device": retriever.embedder.device,
                "prefilter": prefilter}  # fmt: skip
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _route(request: Request) -> str:
    parts = request.url.path.split("/")
    return "/".join(parts[2:4]) if request.url.path.startswith("/v1/chat/") else (
        parts[2] if request.url.path.startswith("/v1/") else "other")  # fmt: skip
