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
from typing import Annotated, Any

import polars as pl
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from aquifer.audit.prove import load_decisions
from aquifer.index import resource_of, sql_in
from aquifer.lake import Lake
from aquifer.lineage import LineageError, trace
from aquifer.policy import RequestContext
from aquifer.service.gateway import PURPOSE_HEADER, Gateway, openai_error
from aquifer.service.retrieval import (
    STAGES,
    BadRequest,
    Forbidden,
    NotFound,
    RetrievalError,
    Retriever,
    Timings,
    Unauthenticated,
    Unavailable,
)
from aquifer.service.schemas import ChatRequest, ContextRequest, ContextResponse, DecisionRecord, ErrorResponse
from aquifer.settings import Settings, get_settings

log = logging.getLogger("aquifer.service")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid bearer token"},
    403: {"model": ErrorResponse, "description": "Refused by policy, with reason codes"},
    422: {"model": ErrorResponse, "description": "Invalid request, naming the field"},
    503: {"model": ErrorResponse, "description": "Policy engine or index unavailable (fail closed)"},
}

GATEWAY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "No purpose declared (X-Aquifer-Purpose or metadata.purpose), or an invalid request"},
    401: {"description": "Missing or invalid agent token"},
    403: {"description": "Refused by policy: unregistered model, model or purpose not allowed for this agent"},
    502: {"description": "The model endpoint is unreachable or answered with an error"},
    503: {"description": "Policy engine or index unavailable (fail closed)"},
    504: {"description": "The model endpoint did not answer within the model's timeout_s"},
}
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
        yield
        await app.state.gateway.aclose()
        app.state.retriever.engine.close()

    app = FastAPI(
        title="Aquifer",
        summary="Governed, traceable context for AI agents",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.metrics = metrics

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
        if request.url.path in OPENAI_ROUTES:  # OpenAI answers 400 to a malformed request
            return await _domain_error(request, BadRequest(f"{where}: {first.get('msg')}", field=where))
        body = ErrorResponse(error="invalid_request", detail=f"{where}: {first.get('msg')}", field=where)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        body = ErrorResponse(error="internal", detail="internal error; see the service log")
        return JSONResponse(body.model_dump(), status_code=500)

    @app.post("/v1/context", response_model=ContextResponse, responses=ERRORS, tags=["context"])
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

    @app.post("/v1/chat/completions", responses=GATEWAY_ERRORS, tags=["gateway"])
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

    @app.get("/v1/models", responses=GATEWAY_ERRORS, tags=["gateway"])
    def models(agent: AgentDep, retriever: RetrieverDep) -> dict[str, Any]:
        """The registered models this agent may send context to (OpenAI's model list), with their locality."""
        catalog = retriever.engine.catalog
        entries = [catalog.models[m] for m in catalog.agents[agent].models if m in catalog.models]
        return {"object": "list", "data": [
            {"id": m.id, "object": "model", "created": 0, "owned_by": m.owner.team,
             "locality": m.locality.value, "max_classification": m.max_classification.value} for m in entries
        ]}  # fmt: skip

    @app.get("/v1/lineage/{chunk_id}", responses=ERRORS, tags=["lineage"])
    def lineage(
        chunk_id: str,
        agent: AgentDep,
        retriever: RetrieverDep,
        purpose: Annotated[str | None, Query(description="Default: the agent's first purpose")] = None,
        model: Annotated[str | None, Query(description="Default: the agent's default model")] = None,
    ) -> dict[str, Any]:
        """The lineage of a chunk this agent may read (for this purpose and model), back to its landing file."""
        entry = retriever.engine.catalog.agents[agent]
        ctx = RequestContext(agent, purpose or entry.purposes[0], model or entry.default_model)
        row = _indexed(retriever, chunk_id)
        decision = retriever.engine.decide(ctx, [resource_of(row)] if row else [])
        if row is None or not decision.resources[0].allow:
            # the same answer whether the chunk is unknown or withheld: a denial leaves no trace
            raise NotFound(f"no chunk {chunk_id} that agent {agent} may read")
        try:
            nodes = trace(Lake.from_settings(settings), [row["platinum_id"]], sorted(retriever.engine.catalog.sources))
        except LineageError as exc:
            raise NotFound(str(exc)) from None
        return {"chunk_id": row["chunk_id"], "lineage": nodes[0].as_dict()}

    @app.get("/v1/decisions/{decision_id}", response_model=DecisionRecord, responses=ERRORS, tags=["audit"])
    def decision(decision_id: str, agent: AgentDep, retriever: RetrieverDep) -> dict[str, Any]:
        """A decision record from the log (agents with role ``auditor``)."""
        if "auditor" not in retriever.engine.catalog.agents[agent].roles:
            raise Forbidden(f"agent {agent} lacks role auditor", reasons=["role_required"],
                            explanations=["only agents with role auditor may read decision records"])  # fmt: skip
        found = (
            load_decisions(Lake.from_settings(settings), settings.decisions_dir)
            .filter(pl.col("decision_id") == decision_id)
            .collect()
        )
        if found.is_empty():
            raise NotFound(f"no decision {decision_id}")
        return found.row(0, named=True)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "Not ready, with what is missing"}})
    def readyz(retriever: RetrieverDep) -> JSONResponse:
        problems = retriever.readiness()
        body = {"status": "ready" if not problems else "not_ready", "problems": problems,
                "policy_revision": retriever.engine.revision, "index_version": retriever.index.version(),
                "embedding_model": retriever.embedder.name, "embedding_device": retriever.embedder.device}  # fmt: skip
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _route(request: Request) -> str:
    parts = request.url.path.split("/")
    return "/".join(parts[2:4]) if request.url.path.startswith("/v1/chat/") else (
        parts[2] if request.url.path.startswith("/v1/") else "other")  # fmt: skip


def _indexed(retriever: Retriever, chunk_id: str) -> dict[str, Any] | None:
    if not retriever.index.exists():
        raise Unavailable("no index: materialize index/chunks")
    column = "platinum_id" if chunk_id.startswith("plt_") else "chunk_id"
    rows = retriever.index.table().search().where(sql_in(column, [chunk_id])).limit(1).to_list()
    return rows[0] if rows else None
