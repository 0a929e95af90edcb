"""Request traces without a server: when tracing counts as configured (the standard ``OTEL_*`` environment), that
nothing is installed or recorded otherwise, and what the stage, upstream and MCP helpers record (spans kept in
memory next to the real OTLP exporter, which points at a closed port)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from aquifer.export import tracing
from aquifer.service.metrics import Timings
from aquifer.settings import Settings
from tests.servers import free_port

ENDPOINT = "http://127.0.0.1:4318"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* setting from the caller's environment; no provider before or after."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    tracing.reset()
    yield
    tracing.reset()


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Tracing configured (towards a closed port), every span also kept in memory."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.2")  # the closed port: give up at once
    assert tracing.configure() is not None
    memory = InMemorySpanExporter()
    assert tracing._provider is not None
    tracing._provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT + "/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": ENDPOINT + "/v1/logs"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "NONE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "console,otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "console"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": ""}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, False),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            True,
        ),
    ],
)
def test_when_tracing_is_configured(env: dict[str, str], expected: bool) -> None:
    assert tracing.configured(env) is expected


def test_configure_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.configure() is None and tracing.TRACER is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    tracer = tracing.configure()
    assert tracer is not None and tracing.TRACER is tracer
    assert tracing.configure() is tracer  # once per process
    assert tracing._provider is not None
    assert tracing._provider.resource.attributes["service.name"] == "aquifer-api"
    assert tracing._provider.resource.attributes["service.version"] == tracing._version()


def test_service_name_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "aquifer-eu-1")
    tracing.configure()
    assert tracing._provider is not None
    assert tracing._provider.resource.attributes["service.name"] == "aquifer-eu-1"


def test_sampler_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    tracing.configure()
    assert tracing._provider is not None
    assert tracing._provider.sampler.get_description().startswith("ParentBased{root:AlwaysOnSampler")
    tracing.reset()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    tracing.configure()
    assert tracing._provider is not None
    assert tracing._provider.sampler.get_description() == "AlwaysOffSampler"


def test_unconfigured_installs_nothing_and_records_nothing() -> None:
    from aquifer.service.app import create_app

    app = create_app(Settings())
    assert not [m for m in app.user_middleware if "OpenTelemetry" in getattr(m.cls, "__name__", "")]
    assert tracing.TRACER is None and tracing._provider is None
    timings = Timings()
    with timings.stage("policy"):
        pass
    timings.annotate(agent="a")
    assert timings.span is None and "policy" in timings.seconds
    assert tracing.flush() is True


def test_configured_installs_the_asgi_middleware(spans: InMemorySpanExporter) -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    from aquifer.service.app import create_app

    app = create_app(Settings())
    [middleware] = [m for m in app.user_middleware if m.cls is OpenTelemetryMiddleware]
    assert middleware.kwargs["tracer_provider"] is tracing._provider
    excluded = middleware.kwargs["excluded_urls"]
    from opentelemetry.util.http import parse_excluded_urls

    rule = parse_excluded_urls(excluded)
    for path in ("/healthz", "/readyz", "/metrics", "/metrics/"):
        assert rule.url_disabled(f"http://127.0.0.1:8000{path}"), path
    for path in ("/v1/context", "/mcp", "/v1/lineage/healthz", "/metricsx", "/docs"):
        assert not rule.url_disabled(f"http://127.0.0.1:8000{path}"), path
    sanitize = middleware.kwargs["http_capture_headers_sanitize_fields"]
    from opentelemetry.util.http import SanitizeValue

    for header in ("Authorization", "X-Aquifer-User-Token", "cookie", "Proxy-Authorization", "X-Api-Key"):
        assert SanitizeValue(sanitize).sanitize_header_value(header, "s3cret") == "[REDACTED]", header
    assert SanitizeValue(sanitize).sanitize_header_value("X-Aquifer-Purpose", "marketing") == "marketing"


def test_server_spans_named_by_route_honouring_traceparent(spans: InMemorySpanExporter) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from starlette.routing import Route

    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, str]:
        with Timings().stage("search"):
            return {"id": item_id}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    class Plain:  # an ASGI app on a Starlette route, as /mcp is
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    app.router.routes.append(Route("/plain", endpoint=Plain()))
    assert tracing.instrument(app)
    parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    with TestClient(app) as client:
        assert client.get("/items/gld_123", headers={"traceparent": parent}).json() == {"id": "gld_123"}
        assert client.post("/plain").status_code == 204
        assert client.get("/healthz").status_code == 200
        assert client.get("/nowhere").status_code == 404
    finished = spans.get_finished_spans()
    assert sorted(s.name for s in finished) == ["GET", "GET /items/{item_id}", "POST /plain", "aquifer.search"]
    server = next(s for s in finished if s.name == "GET /items/{item_id}")
    assert (server.attributes or {})["http.route"] == "/items/{item_id}"
    assert format(server.context.trace_id, "032x") == "ab" * 16
    assert server.parent is not None and format(server.parent.span_id, "016x") == "cd" * 8
    search = next(s for s in finished if s.name == "aquifer.search")
    assert search.parent is not None and search.parent.span_id == server.context.span_id  # sync route: threadpool
    missing = next(s for s in finished if s.name == "GET")
    assert missing.parent is None and missing.context.trace_id != server.context.trace_id


def test_stage_spans_are_children_of_the_current_span(spans: InMemorySpanExporter) -> None:
    assert tracing.TRACER is not None
    with tracing.TRACER.start_as_current_span("POST /v1/context") as request:
        timings = Timings()
        with timings.stage("auth"):
            pass
        with timings.stage("policy"):
            time.sleep(0.002)
        timings.annotate(agent="support_assistant")
        timings.logged(
            SimpleNamespace(decision_id="dec_1"),  # type: ignore[arg-type]
            {
                "kind": "context",
                "agent": "support_assistant",
                "purpose": "customer_support",
                "model": "local_smollm2",
                "channel": "rest",
                "revision": "r1",
                "index_version": 3,
                "user": "someone",
                "resources": [{"served": True}, {"served": False}, {"served": True}],
            },
        )
        assert timings.span is request
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert set(finished) == {"aquifer.auth", "aquifer.policy", "POST /v1/context"}
    root = finished["POST /v1/context"]
    for name in ("aquifer.auth", "aquifer.policy"):
        child = finished[name]
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time  # type: ignore[operator]
    policy = finished["aquifer.policy"]
    assert policy.end_time - policy.start_time >= 2_000_000  # type: ignore[operator]
    assert dict(root.attributes or {}) == {
        "aquifer.agent": "support_assistant",
        "aquifer.decision_id": "dec_1",
        "aquifer.kind": "context",
        "aquifer.purpose": "customer_support",
        "aquifer.model": "local_smollm2",
        "aquifer.channel": "rest",
        "aquifer.policy_revision": "r1",
        "aquifer.index_version": 3,
        "aquifer.chunks.served": 2,
        "aquifer.chunks.withheld": 1,
    }


def test_a_failed_stage_is_an_error_span_without_its_message(spans: InMemorySpanExporter) -> None:
    timings = Timings()
    with pytest.raises(PermissionError), timings.stage("policy"):
        raise PermissionError("the query text would be here")
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "PermissionError"
    assert not span.events and "query" not in str(span.status.description)
    assert "policy" in timings.seconds


@pytest.mark.parametrize(
    ("outcome", "status", "error"),
    [
        ("ok", 200, False),
        ("upstream_error", 500, True),
        ("upstream_timeout", None, True),
        ("client_disconnected", 200, False),
    ],
)
def test_upstream_span(spans: InMemorySpanExporter, outcome: str, status: int | None, error: bool) -> None:
    assert tracing.TRACER is not None
    with tracing.TRACER.start_as_current_span("POST /v1/chat/completions") as request:
        tracing.upstream(
            "local_smollm2",
            "http://user:pw@127.0.0.1:8080/v1",
            outcome,
            status,
            0.25,
            decision_id="dec_2",
            usage={"prompt_tokens": 11, "completion_tokens": 3},
        )
    upstream = next(s for s in spans.get_finished_spans() if s.name == "aquifer.upstream")
    assert upstream.parent is not None and upstream.parent.span_id == request.get_span_context().span_id
    assert abs((upstream.end_time - upstream.start_time) / 1e9 - 0.25) < 1e-3  # type: ignore[operator]
    attributes = dict(upstream.attributes or {})
    assert attributes["aquifer.upstream.outcome"] == outcome
    assert attributes["aquifer.decision_id"] == "dec_2"
    assert attributes["server.address"] == "127.0.0.1" and attributes["server.port"] == 8080
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert ("http.response.status_code" in attributes) is (status is not None)
    assert "pw" not in str(attributes)
    assert (upstream.status.status_code is StatusCode.ERROR) is error


def test_within_makes_the_kept_request_context_current(spans: InMemorySpanExporter) -> None:
    from opentelemetry.trace import get_current_span, set_span_in_context

    assert tracing.TRACER is not None
    scope: dict[str, Any] = {}
    with tracing.TRACER.start_as_current_span("POST /mcp") as server:
        scope[tracing.REQUEST_CONTEXT_KEY] = set_span_in_context(server)
    ctx = SimpleNamespace(request_context=SimpleNamespace(request=SimpleNamespace(scope=scope)))
    with tracing.TRACER.start_as_current_span("another request"):
        with tracing.within(ctx):
            assert get_current_span() is server
            timings = Timings()
            with timings.stage("search"):
                pass
            assert timings.span is server
        assert get_current_span() is not server

    class Stdio:
        @property
        def request_context(self) -> Any:
            raise ValueError("Context is not available outside of a request")

    with tracing.within(Stdio()), tracing.within(None):
        pass


def test_within_is_nothing_while_tracing_is_off() -> None:
    with tracing.within(object()):
        pass


def test_flush_and_shutdown_are_bounded_when_the_collector_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        tracing.configure()  # the exporter's own limit: EXPORT_TIMEOUT_S (5 s)
        timings = Timings()
        for _ in range(10):
            with timings.stage("policy"):
                pass
        start = time.monotonic()
        assert tracing.flush(timeout_s=0.5) is False  # still waiting for the collector, given up on
        assert time.monotonic() - start < 1.5
        start = time.monotonic()
        tracing.reset()
        assert time.monotonic() - start < tracing.SHUTDOWN_TIMEOUT_S + 1
    finally:
        listener.close()


def test_a_stage_costs_almost_nothing_while_tracing_is_off() -> None:
    timings = Timings()
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        with timings.stage("policy"):
            pass
    per_stage_us = (time.perf_counter() - start) / n * 1e6
    assert timings.span is None
    assert per_stage_us < 20, per_stage_us  # ~1 us on a 2-core VM: a context manager and a dict update
