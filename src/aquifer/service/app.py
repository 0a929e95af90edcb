"""The HTTP front door: ``aquifer serve`` (uvicorn) serves :func:`create_app`.

The app is its lifespan (the shared resources: retriever, gateway, prefilter warmer, metrics), its routers
(:mod:`aquifer.service.routes`: context, chat, audit, ops; the MCP server at ``/mcp``,
:mod:`aquifer.service.mcp_http`) and the one mapping from errors to HTTP answers: a
domain error (:mod:`aquifer.service.errors`) becomes its status and body, in OpenAI's shape on the OpenAI-compatible
routes; a request FastAPI cannot validate or parse is 422 naming the field (400 on those routes); no stack trace
ever leaves the process.
"""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aquifer.export import tracing
from aquifer.export.decisions import LagCollector
from aquifer.ids import IDENTIFIER_PATTERN
from aquifer.service import mcp_http
from aquifer.service.errors import InvalidRequest, ServiceError, error_body, openai_body, status_of
from aquifer.service.gateway import Gateway
from aquifer.service.metrics import Metrics
from aquifer.service.retrieval import Retriever
from aquifer.service.routes import audit, chat, context, ops
from aquifer.service.routes.chat import OPENAI_ROUTES
from aquifer.service.schemas import ErrorResponse
from aquifer.service.warm import PrefilterWarmer
from aquifer.settings import Settings, get_settings

log = logging.getLogger("aquifer.service")


def create_app(settings: Settings | None = None, *, retriever: Retriever | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()
    # the decision-export lag, read on each scrape from the shipper's cursor and the log's tail (none when unshipped)
    metrics.registry.register(LagCollector(settings))
    mcp_running: Any = None  # set below, once the app exists: the MCP session manager of each lifespan

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.retriever = retriever or Retriever(settings)
        app.state.gateway = Gateway(app.state.retriever, settings, observe=metrics.observe_upstream)
        warmer = None
        if settings.prefilter_warm:
            interval = max(settings.policy_reload_interval_s, 0.5)
            warmer = PrefilterWarmer(app.state.retriever, interval_s=interval).start()
        app.state.warmer = warmer
        # torch and the embedding model make a full collection take ~270 ms, stalling every request in flight;
        # what start-up allocated lives as long as the process, so the collector stops scanning it
        gc.collect()
        gc.freeze()
        async with mcp_running():
            yield
        if warmer is not None:
            warmer.stop()
        await app.state.gateway.aclose()
        app.state.retriever.engine.close()
        tracing.flush()  # the spans still queued, when traces are exported (bounded: a hung collector never holds up)

    app = FastAPI(
        title="Aquifer",
        summary="Governed, traceable context for AI agents",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by routes/ops.py with local assets
        redoc_url=None,
    )
    app.state.metrics = metrics
    for router in (context.router, chat.router, audit.router, ops.router):
        app.include_router(router)
    mcp_running = mcp_http.install(app, settings, metrics)
    app.mount(ops.DOCS_ASSETS, ops.docs_assets, name="docs-assets")
    _document_openai_errors(app)
    tracing.instrument(app)  # server spans, only when OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set (docs/tracing.md)

    @app.exception_handler(ServiceError)
    async def _domain_error(request: Request, exc: ServiceError) -> JSONResponse:
        openai = request.url.path in OPENAI_ROUTES
        status = status_of(exc, openai=openai)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        metrics.requests.labels(_route(request), str(status)).inc()
        body = openai_body(exc) if openai else error_body(exc)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        why = first.get("msg")
        pattern = (first.get("ctx") or {}).get("pattern")
        if first.get("type") == "string_pattern_mismatch" and pattern == IDENTIFIER_PATTERN:
            why = "not an identifier (a lower-case letter, then lower-case letters, digits or _; 2-63 characters)"
        return await _domain_error(request, InvalidRequest(f"{where}: {why}", field=where))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not parse the body (bytes that are not UTF-8, JSON nested too deep)
            why = "not a JSON document Aquifer can read (invalid UTF-8, or nested too deeply)"
            return await _domain_error(request, InvalidRequest(f"body: {why}", field="body"))
        # No such route (404), or a method it does not take (405): the same error shape as every other answer.
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = "no such route (the operations are listed at /docs)" if exc.status_code == 404 else str(exc.detail)
        body = ErrorResponse(error=kind, detail=detail)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        body = ErrorResponse(error="internal", detail="internal error; see the service log")
        return JSONResponse(body.model_dump(), status_code=500)

    return app


def _document_openai_errors(app: FastAPI) -> None:
    """FastAPI documents a 422 for every route with a body; the OpenAI-compatible routes answer 400 instead."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for path in OPENAI_ROUTES:
            for operation in schema["paths"].get(path, {}).values():
                operation["responses"].pop("422", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _route(request: Request) -> str:
    parts = request.url.path.split("/")
    if request.url.path.startswith("/v1/chat/"):
        return "/".join(parts[2:4])
    return parts[2] if request.url.path.startswith("/v1/") else "other"
