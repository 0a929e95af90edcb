"""Request traces: OpenTelemetry spans of each request's stages, exported over OTLP/HTTP when configured.

Off unless configured the standard way (:func:`configured`): an OTLP endpoint in ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_TRACES_EXPORTER`` unset or naming ``otlp``, ``OTEL_SDK_DISABLED`` not
``true``. Then :func:`instrument` (called by :func:`aquifer.service.app.create_app`) installs the ASGI middleware of
``opentelemetry-instrumentation-asgi``: one server span per request, named by route, child of the caller's span when
the request carries a W3C ``traceparent``; every :meth:`aquifer.service.metrics.Timings.stage` is a child span
``aquifer.<stage>`` of it, the gateway's call to the model server a span ``aquifer.upstream`` (:func:`upstream`),
and the request's span gets the decision's attributes (:func:`decision_attributes`). Unconfigured, nothing is
installed and a stage costs one test of :data:`TRACER`.

The provider is this module's own (:func:`configure`, once per process; :func:`reset` forgets it, for tests): the
global OpenTelemetry tracer provider is never set, so nothing else in the process starts exporting. Spans go through
a ``BatchSpanProcessor`` (its ``OTEL_BSP_*`` settings): a slow, failing or dead collector costs requests nothing, and
what it cannot take is dropped (the decision log, not the traces, is the record). :func:`flush` and the shutdown at
exit are bounded (:data:`FLUSH_TIMEOUT_S`, :data:`SHUTDOWN_TIMEOUT_S`).

Never recorded: chunk texts, queries, prompts, answers, tokens. Request and response headers are recorded only when
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_*`` asks, and those naming credentials are then
``[REDACTED]`` (:data:`SECRET_HEADERS`).

>>> configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
True
>>> configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"})
False
>>> configured({})
False
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("aquifer.tracing")

SERVICE_NAME = "aquifer-api"
"""``service.name`` of the spans unless ``OTEL_SERVICE_NAME`` (or ``OTEL_RESOURCE_ATTRIBUTES``) names another."""
EXPORT_TIMEOUT_S = 5.0
"""One export's time limit, retries included, unless ``OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`` sets one (seconds)."""
FLUSH_TIMEOUT_S = 5.0
"""The longest the service's shutdown waits for the spans still queued to be exported."""
SHUTDOWN_TIMEOUT_S = 3.0
"""The longest the process's exit waits for the span processor to stop."""
UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")
"""Probes and scrapes: no spans (``OTEL_PYTHON_ASGI_EXCLUDED_URLS`` / ``OTEL_PYTHON_EXCLUDED_URLS`` add to them)."""
SECRET_HEADERS = ("authorization", "token", "cookie", "api-key", "apikey", "secret")
"""Header names containing one of these (any case: ``Authorization``, ``X-Aquifer-User-Token``, ``Cookie``) are
``[REDACTED]`` when headers are captured."""
REQUEST_CONTEXT_KEY = "aquifer.trace_context"
"""Where the server span's context is kept in the ASGI scope, for work the request hands to another task (MCP)."""
UNSUPPORTED_PROTOCOLS = ("grpc", "http/json")

TRACER: Tracer | None = None
"""The tracer of the stage spans, once :func:`configure` found tracing configured; None: tracing is off."""
_provider: TracerProvider | None = None
_lock = threading.Lock()


def _env(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or "").strip()


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether traces are to be exported: an OTLP endpoint is set, ``OTEL_TRACES_EXPORTER`` is unset or names
    ``otlp`` (``none``: off), ``OTEL_SDK_DISABLED`` is not ``true``, and the protocol is ``http/protobuf`` (the only
    one installed: ``grpc`` and ``http/json`` leave tracing off, with a warning from :func:`configure`)."""
    env = os.environ if environ is None else environ
    if _env(env, "OTEL_SDK_DISABLED").lower() == "true":
        return False
    exporters = {e.strip().lower() for e in (_env(env, "OTEL_TRACES_EXPORTER") or "otlp").split(",") if e.strip()}
    if "none" in exporters or "otlp" not in exporters:
        return False
    if _protocol(env) in UNSUPPORTED_PROTOCOLS:
        return False
    return bool(_env(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _env(env, "OTEL_EXPORTER_OTLP_ENDPOINT"))


def _protocol(env: Mapping[str, str]) -> str:
    return (_env(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env(env, "OTEL_EXPORTER_OTLP_PROTOCOL")).lower()


def configure() -> Tracer | None:
    """The stage spans' tracer when tracing is configured (the provider made once per process: the OTLP/HTTP
    exporter reads its endpoint, headers, certificates and compression from the ``OTEL_EXPORTER_OTLP_*``
    environment, the sampler comes from ``OTEL_TRACES_SAMPLER``, default parent-based always-on); None otherwise."""
    global TRACER, _provider
    with _lock:
        if TRACER is not None:
            return TRACER
        if not configured():
            protocol = _protocol(os.environ)
            if protocol in UNSUPPORTED_PROTOCOLS:
                log.warning("OTLP protocol %s is not supported (http/protobuf only): no traces exported", protocol)
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
        if str(resource.attributes.get("service.name", "unknown_service")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        if "service.version" not in resource.attributes:
            resource = resource.merge(Resource({"service.version": _version()}))
        timeouts = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
        timeout = None if any(_env(os.environ, t) for t in timeouts) else EXPORT_TIMEOUT_S
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # sampler: OTEL_TRACES_SAMPLER
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=timeout)))
        atexit.register(_shutdown_at_exit, provider)
        _provider, TRACER = provider, provider.get_tracer("aquifer", _version())
        return TRACER


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aquifer")
    except PackageNotFoundError:
        return "unknown"


def _bounded(work: Callable[[], object], timeout_s: float, name: str) -> bool:
    """``work()`` in a daemon thread, waited for at most ``timeout_s``: a collector that hangs holds up nothing."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    return done.wait(timeout_s)


def flush(timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
    """Export the spans still queued (the service's lifespan calls it on stop); waits at most ``timeout_s``."""
    provider = _provider
    if provider is None:
        return True
    return _bounded(provider.force_flush, timeout_s, "aquifer-trace-flush")


def _shutdown_at_exit(provider: TracerProvider) -> None:
    _bounded(provider.shutdown, SHUTDOWN_TIMEOUT_S, "aquifer-trace-shutdown")


def reset() -> None:
    """Forget the provider (tests): shut down (bounded), tracing off until :func:`configure` runs again."""
    global TRACER, _provider
    with _lock:
        provider, _provider, TRACER = _provider, None, None
    if provider is not None:
        atexit.unregister(_shutdown_at_exit)
        _shutdown_at_exit(provider)


# -- server spans ----------------------------------------------------------------------------------------------------


def instrument(app: FastAPI) -> bool:
    """Install the OpenTelemetry ASGI middleware on ``app`` when tracing is configured (else nothing); True if so."""
    if configure() is None:
        return False
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.util.http import get_custom_headers

    excluded = [r"^[a-z]+://[^/]*(" + "|".join(UNTRACED_PATHS) + r")/?$"]
    more = _env(os.environ, "OTEL_PYTHON_ASGI_EXCLUDED_URLS") or _env(os.environ, "OTEL_PYTHON_EXCLUDED_URLS")
    excluded += [p.strip() for p in more.split(",") if p.strip()]
    sanitized = get_custom_headers("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS")
    app.add_middleware(
        _RouteNames, routes=app.router.routes
    )  # added first: runs inside the OpenTelemetry middleware, in its span
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=",".join(excluded),
        default_span_details=_method,
        tracer_provider=_provider,
        meter_provider=NoOpMeterProvider(),  # the service's metrics are its Prometheus ones (/metrics)
        http_capture_headers_sanitize_fields=[*SECRET_HEADERS, *sanitized],
        exclude_spans=["receive", "send"],
    )
    return True


def _method(scope: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The server span's name when it starts: the method alone (:class:`_RouteNames` adds the route)."""
    return str(scope.get("method") or "HTTP"), {}


class _RouteNames:
    """ASGI, just inside the OpenTelemetry middleware: keeps the server span's context in the scope (for
    :func:`within`) and, once the app starts its answer, names the span by its route (``GET /v1/lineage/{chunk_id}``,
    with ``http.route``): never by its path, which may carry an id. No route (404): the method alone."""

    def __init__(self, app: Any, routes: list[Any]) -> None:
        self.app, self.routes = app, routes  # the app's routes (for those FastAPI does not name in the scope)

    def route(self, scope: dict[str, Any]) -> str | None:
        """The route's path template: FastAPI names its own routes in ``scope["route"]``; a plain Starlette route
        or mount (``/mcp``, ``/docs-assets``) is looked up."""
        named = getattr(scope.get("route"), "path", None)
        if named:
            return str(named)
        from starlette.routing import Match, Mount, Route

        for route in self.routes:
            if isinstance(route, Route | Mount) and route.matches(scope)[0] == Match.FULL:
                return route.path
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import context
        from opentelemetry.trace import get_current_span

        span = get_current_span()
        scope[REQUEST_CONTEXT_KEY] = context.get_current()
        if not span.is_recording():  # not traced (/healthz) or not sampled
            await self.app(scope, receive, send)
            return

        async def named(message: dict[str, Any]) -> None:
            # the middleware ends the span with the last body message: name it when the answer starts
            route = self.route(scope) if message["type"] == "http.response.start" else None
            if route:
                span.update_name(f"{scope.get('method') or 'HTTP'} {route}")
                span.set_attribute("http.route", route)
            await send(message)

        await self.app(scope, receive, named)


@contextmanager
def within(mcp_context: Any) -> Iterator[None]:
    """Make the server span of the HTTP request carrying an MCP call current (the MCP SDK runs calls in its
    session's task, whose context is another request's): its stage spans are then children of their ``/mcp`` span.
    Nothing when tracing is off or the call came over stdio."""
    if TRACER is None:
        yield
        return
    from opentelemetry import context

    try:
        request = mcp_context.request_context.request
    except (AttributeError, ValueError):  # no request context: not an HTTP call
        request = None
    kept = getattr(request, "scope", {}).get(REQUEST_CONTEXT_KEY)
    token = context.attach(kept) if kept is not None else None
    try:
        yield
    finally:
        if token is not None:
            context.detach(token)


# -- stage spans and attributes --------------------------------------------------------------------------------------


def current_span() -> Span:
    """The span current here (the request's, before any stage opens)."""
    from opentelemetry.trace import get_current_span

    return get_current_span()


@contextmanager
def stage_span(name: str) -> Iterator[Span]:
    """A child span ``aquifer.<name>`` of the current one; an exception ends it with status ERROR and ``error.type``
    (its class name: an exception's message is not recorded, it may quote what the request sent)."""
    from opentelemetry.trace import Status, StatusCode

    assert TRACER is not None
    with TRACER.start_as_current_span(f"aquifer.{name}", record_exception=False, set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def decision_attributes(decision_id: str, record: Mapping[str, Any]) -> dict[str, str | int]:
    """What a span says of a logged decision: ids and counts, never a text (``aquifer.chunks.withheld``: found by
    the search but not served: denied, collapsed as a near-duplicate or over the token budget)."""
    resources = record.get("resources") or []
    served = sum(1 for r in resources if r.get("served"))
    values: dict[str, Any] = {
        "aquifer.decision_id": decision_id,
        "aquifer.kind": record.get("kind"),
        "aquifer.agent": record.get("agent"),
        "aquifer.purpose": record.get("purpose"),
        "aquifer.model": record.get("model"),
        "aquifer.channel": record.get("channel"),
        "aquifer.tool": record.get("tool"),
        "aquifer.policy_revision": record.get("revision"),
        "aquifer.index_version": record.get("index_version"),
        "aquifer.chunks.served": served,
        "aquifer.chunks.withheld": len(resources) - served,
    }
    return {k: v for k, v in values.items() if isinstance(v, str | int) and not isinstance(v, bool)}


def upstream(
    model: str,
    endpoint: str,
    outcome: str,
    status: int | None,
    seconds: float,
    *,
    decision_id: str,
    usage: Mapping[str, Any],
) -> None:
    """The span ``aquifer.upstream`` of a call to a model server that just ended (``seconds`` long), child of the
    current span: its outcome (``ok``, ``upstream_error``, ``upstream_timeout``, ``upstream_unreachable``,
    ``client_disconnected``), status ERROR when the model server failed."""
    tracer = TRACER
    if tracer is None:
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    end = time.time_ns()
    where = urlsplit(endpoint)
    attributes: dict[str, Any] = {
        "aquifer.model": model,
        "aquifer.decision_id": decision_id,
        "aquifer.upstream.outcome": outcome,
        "server.address": where.hostname,
        "server.port": where.port,
        "http.response.status_code": status,
        "gen_ai.usage.input_tokens": usage.get("prompt_tokens"),
        "gen_ai.usage.output_tokens": usage.get("completion_tokens"),
    }
    span = tracer.start_span(
        "aquifer.upstream",
        kind=SpanKind.CLIENT,
        start_time=end - int(seconds * 1e9),
        attributes={k: v for k, v in attributes.items() if v is not None},
    )
    if outcome not in ("ok", "client_disconnected"):
        span.set_attribute("error.type", outcome)
        span.set_status(Status(StatusCode.ERROR, outcome))
    span.end(end_time=end)
