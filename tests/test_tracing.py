"""Request traces end to end: a real ``aquifer serve`` (uvicorn) over the materialized sample, exporting OTLP/HTTP to
the real local receiver (:class:`tests.otlp_receiver.OtlpReceiver`, protobuf decoded), a :class:`RecordingModel` as
the gateway's model server, the official MCP client on ``/mcp``. Checked: the incoming ``traceparent`` is honoured,
each stage is a child span inside its request's, the decision id on the span is the logged one, nothing secret or
textual is recorded, refusals are traced too, and a collector that hangs or fails costs requests nothing."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from aquifer.audit.log import read_records
from aquifer.settings import get_settings
from tests.conftest import copy_materialized, use_issuer
from tests.otlp_receiver import OtlpReceiver, Span
from tests.servers import AquiferServer, RecordingModel, post_context, service_env
from tests.test_credentials import DEV_TOKENS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STAGES = ["aquifer.auth", "aquifer.policy", "aquifer.embedding", "aquifer.search", "aquifer.assembly", "aquifer.log"]
QUERY = "how do I reset the device and what did customers report about tracing-canary-7f3a?"
SUPPORT = DEV_TOKENS["support_assistant"]


def traced_env(root: Path, data: Path, receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    settings = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        # every request header captured: the ones carrying credentials must still arrive [REDACTED]
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": ".*",
        "AQUIFER_PREFILTER_WARM": "false",
    }
    return service_env(root, data, **(settings | extra))


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path, dev_idp: Any
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("tracing")
    data = copy_materialized(materialized_sample, root)
    use_issuer(root / "catalog", dev_idp.issuer)
    model = RecordingModel()
    path = root / "catalog" / "models" / "local_smollm2.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) | {"endpoint": model.url}))
    receiver = OtlpReceiver()
    server = AquiferServer(traced_env(root, data, receiver), root / "server.log", ready="/readyz")
    yield {"root": root, "data": data, "url": server.url, "receiver": receiver, "model": model, "idp": dev_idp}
    server.stop()
    receiver.close()
    model.close()
    get_settings.cache_clear()


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def trace_of(rx: OtlpReceiver, trace_id: str) -> list[Span]:
    return [s for s in rx.spans if s.trace_id == trace_id]


def wait_trace(rx: OtlpReceiver, trace_id: str, names: list[str]) -> list[Span]:
    """The spans of ``trace_id`` once every name in ``names`` arrived."""
    rx.wait_for(lambda r: all(any(s.name == n for s in trace_of(r, trace_id)) for n in names))
    return trace_of(rx, trace_id)


def server_span(rx: OtlpReceiver, name: str, after: int) -> Span:
    """The first server span named ``name`` received after the first ``after`` spans."""
    rx.wait_for(lambda r: any(s.name == name for s in r.spans[after:]))
    return next(s for s in rx.spans[after:] if s.name == name)


def status_of(span: Span) -> int:
    return int(span.attributes.get("http.status_code", span.attributes.get("http.response.status_code", 0)))


def assert_within(child: Span, parent: Span) -> None:
    assert child.parent_span_id == parent.span_id, (child.name, parent.name)
    assert child.trace_id == parent.trace_id
    assert parent.start_unix_nano <= child.start_unix_nano <= child.end_unix_nano <= parent.end_unix_nano, child.name


def assert_nothing_secret(spans: list[Span], *secrets_: str) -> None:
    for span in spans:
        text = repr(span.attributes) + span.name + repr(span.resource)
        for secret in secrets_:
            assert secret not in text, (span.name, secret)


def test_a_context_request_continues_the_callers_trace(world: dict[str, Any]) -> None:
    rx: OtlpReceiver = world["receiver"]
    parent, trace_id, span_id = traceparent()
    user = world["idp"].make_token("amira.haddad")
    hr_token = DEV_TOKENS["hr_case_assistant"]
    headers = {"Authorization": f"Bearer {hr_token}", "X-Aquifer-User-Token": user, "traceparent": parent}
    body = {"query": QUERY, "purpose": "hr_casework", "model": "local_smollm2", "top_k": 8}
    answer = httpx.post(f"{world['url']}/v1/context", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    decision_id = answer.json()["decision_id"]

    spans = wait_trace(rx, trace_id, ["POST /v1/context", *STAGES])
    [server] = [s for s in spans if s.name == "POST /v1/context"]
    assert server.parent_span_id == span_id  # the caller's span
    assert server.resource["service.name"] == "aquifer-api"
    stages = [s for s in spans if s.name.startswith("aquifer.")]
    assert {s.name for s in stages} == set(STAGES)
    assert [s.name for s in spans if s.name == "aquifer.policy"] == ["aquifer.policy"] * 2  # decide, then re-check
    for stage in stages:
        assert_within(stage, server)
    ordered = sorted(stages, key=lambda s: s.start_unix_nano)
    assert ordered[0].name == "aquifer.auth" and ordered[-1].name == "aquifer.log"
    for earlier, later in itertools.pairwise(ordered):
        assert earlier.end_unix_nano <= later.start_unix_nano  # one stage after another
    attributes = server.attributes
    assert attributes["http.route"] == "/v1/context" and status_of(server) == 200
    assert attributes["aquifer.agent"] == "hr_case_assistant"
    assert attributes["aquifer.purpose"] == "hr_casework"
    assert attributes["aquifer.model"] == "local_smollm2"
    assert attributes["aquifer.channel"] == "rest"
    assert attributes["aquifer.decision_id"] == decision_id
    [logged] = [r for r in read_records(world["data"] / "decisions") if r["decision_id"] == decision_id]
    assert (
        attributes["aquifer.chunks.served"]
        == len(answer.json()["chunks"])
        == sum(r["served"] for r in logged["resources"])
    )
    assert attributes["aquifer.chunks.withheld"] == len(logged["resources"]) - attributes["aquifer.chunks.served"]
    assert attributes["aquifer.policy_revision"] == logged["revision"]
    # headers were captured (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST=.*), credentials redacted
    assert attributes["http.request.header.authorization"] == ["[REDACTED]"]
    assert attributes["http.request.header.x_aquifer_user_token"] == ["[REDACTED]"]
    texts = [c["text"][:40] for c in answer.json()["chunks"]]
    assert_nothing_secret(spans, QUERY, "tracing-canary-7f3a", hr_token, user, user.split(".")[-1], *texts)


def test_a_request_without_traceparent_starts_a_trace(world: dict[str, Any]) -> None:
    rx: OtlpReceiver = world["receiver"]
    seen = len(rx.spans)
    answer = post_context(world["url"], SUPPORT, QUERY, purpose="customer_support")
    assert answer.status_code == 200
    server = server_span(rx, "POST /v1/context", seen)
    assert server.parent_span_id == "" and server.attributes["aquifer.decision_id"] == answer.json()["decision_id"]
    assert not any(s.trace_id == server.trace_id for s in rx.spans[:seen])
    spans = wait_trace(rx, server.trace_id, STAGES)
    for stage in (s for s in spans if s.name.startswith("aquifer.")):
        assert_within(stage, server)


@pytest.mark.parametrize("stream", [False, True])
def test_a_gateway_chat_has_an_upstream_span(world: dict[str, Any], stream: bool) -> None:
    rx: OtlpReceiver = world["receiver"]
    parent, trace_id, _ = traceparent()
    headers = {"Authorization": f"Bearer {SUPPORT}", "X-Aquifer-Purpose": "customer_support", "traceparent": parent}
    body = {"model": "local_smollm2", "messages": [{"role": "user", "content": QUERY}], "stream": stream}
    answer = httpx.post(f"{world['url']}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    if stream:
        assert answer.text.rstrip().endswith("data: [DONE]")
    decision_id = answer.headers["x-aquifer-decision-id"]
    spans = wait_trace(rx, trace_id, ["POST /v1/chat/completions", "aquifer.upstream", "aquifer.log"])
    [server] = [s for s in spans if s.name == "POST /v1/chat/completions"]
    [upstream] = [s for s in spans if s.name == "aquifer.upstream"]
    assert_within(upstream, server)
    for stage in (s for s in spans if s.name.startswith("aquifer.")):
        assert_within(stage, server)
    [log] = [s for s in spans if s.name == "aquifer.log"]
    assert log.end_unix_nano <= upstream.start_unix_nano  # logged before the request left
    assert upstream.attributes["aquifer.upstream.outcome"] == "ok"
    assert upstream.attributes["http.response.status_code"] == 200
    assert upstream.attributes["aquifer.model"] == "local_smollm2"
    assert upstream.attributes["aquifer.decision_id"] == decision_id == server.attributes["aquifer.decision_id"]
    assert server.attributes["aquifer.channel"] == "gateway" and server.attributes["aquifer.kind"] == "chat"
    assert_nothing_secret(spans, QUERY, SUPPORT, "Recorded answer")


def test_a_failing_model_server_is_an_upstream_error(world: dict[str, Any]) -> None:
    rx: OtlpReceiver = world["receiver"]
    model: RecordingModel = world["model"]
    parent, trace_id, _ = traceparent()
    headers = {"Authorization": f"Bearer {SUPPORT}", "X-Aquifer-Purpose": "customer_support", "traceparent": parent}
    body = {"model": "local_smollm2", "messages": [{"role": "user", "content": QUERY}]}
    model.status = 500
    try:
        answer = httpx.post(f"{world['url']}/v1/chat/completions", json=body, headers=headers, timeout=60)
    finally:
        model.status = 200
    assert answer.status_code == 502
    spans = wait_trace(rx, trace_id, ["POST /v1/chat/completions", "aquifer.upstream"])
    [server] = [s for s in spans if s.name == "POST /v1/chat/completions"]
    [upstream] = [s for s in spans if s.name == "aquifer.upstream"]
    assert_within(upstream, server)
    assert status_of(server) == 502
    assert upstream.attributes["aquifer.upstream.outcome"] == "upstream_error"
    assert upstream.attributes["error.type"] == "upstream_error"
    assert upstream.attributes["http.response.status_code"] == 500


def test_refusals_are_traced_without_secrets(world: dict[str, Any]) -> None:
    rx: OtlpReceiver = world["receiver"]
    wrong = "aq_devsupport_not-a-token-" + secrets.token_hex(8)
    parent, unauthenticated, _ = traceparent()
    answer = httpx.post(
        f"{world['url']}/v1/context",
        json={"query": QUERY, "purpose": "customer_support", "model": "local_smollm2"},
        headers={"Authorization": f"Bearer {wrong}", "traceparent": parent},
        timeout=60,
    )
    assert answer.status_code == 401
    parent, forbidden, _ = traceparent()
    answer = httpx.post(
        f"{world['url']}/v1/context",
        json={"query": QUERY, "purpose": "hr_casework", "model": "local_smollm2"},
        headers={"Authorization": f"Bearer {SUPPORT}", "traceparent": parent},
        timeout=60,
    )
    assert answer.status_code == 403
    refusal = wait_trace(rx, unauthenticated, ["POST /v1/context", "aquifer.auth"])
    [refused] = [s for s in refusal if s.name == "POST /v1/context"]
    assert status_of(refused) == 401 and "aquifer.agent" not in refused.attributes
    [auth] = [s for s in refusal if s.name == "aquifer.auth"]
    assert_within(auth, refused)
    assert auth.attributes["error.type"] == "Unauthenticated"
    spans = wait_trace(rx, forbidden, ["POST /v1/context", "aquifer.policy"])
    [denied] = [s for s in spans if s.name == "POST /v1/context"]
    assert status_of(denied) == 403 and denied.attributes["aquifer.agent"] == "support_assistant"
    [policy] = [s for s in spans if s.name == "aquifer.policy"]
    assert_within(policy, denied)
    assert policy.attributes["error.type"] == "Forbidden"
    assert_nothing_secret(refusal + spans, wrong, wrong[-16:], SUPPORT, QUERY)


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # legacy: a session whose task outlives its first request
def test_mcp_tool_calls_have_stage_spans_under_their_own_mcp_span(world: dict[str, Any], mode: str) -> None:
    rx: OtlpReceiver = world["receiver"]
    seen = len(rx.spans)
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {SUPPORT}"})
    client = Client(streamable_http_client(world["url"] + "/mcp", http_client=http), mode=mode)  # type: ignore[arg-type]

    async def calls() -> list[Any]:
        async with client as c:
            arguments = [{"query": f"{QUERY} ({mode} {n})", "purpose": "customer_support"} for n in range(2)]
            return [await c.call_tool("search_context", a) for a in arguments]

    results = asyncio.run(calls())
    assert not any(r.is_error for r in results)
    ids = [r.structured_content["decision_id"] for r in results]
    rx.wait_for(lambda r: sum(s.name == "aquifer.log" for s in r.spans[seen:]) >= 2)
    time.sleep(0.5)  # the rest of the batch
    spans = rx.spans[seen:]
    by_id = {s.span_id: s for s in spans}
    servers = {s.attributes.get("aquifer.decision_id"): s for s in spans if s.name == "POST /mcp"}
    assert set(ids) <= set(servers), sorted(s.name for s in spans)
    for decision_id in ids:
        server = servers[decision_id]
        assert server.attributes["aquifer.channel"] == "mcp" and server.attributes["aquifer.tool"] == "search_context"
        children = [s for s in spans if s.parent_span_id == server.span_id]
        assert {s.name for s in children} == set(STAGES) - {"aquifer.auth"}  # /mcp authenticates before the SDK
        for child in children:
            assert_within(child, server)
    for stage in (s for s in spans if s.name in STAGES):  # none elsewhere (e.g. under the session's first request)
        parent = by_id.get(stage.parent_span_id)
        assert parent is not None and parent.name == "POST /mcp"
        assert parent.attributes.get("aquifer.decision_id") in ids
    assert_nothing_secret(spans, QUERY, SUPPORT)


def test_probes_and_scrapes_are_not_traced(world: dict[str, Any]) -> None:
    rx: OtlpReceiver = world["receiver"]
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(world["url"] + path, timeout=30).status_code == 200
    parent, trace_id, _ = traceparent()
    assert httpx.get(world["url"] + "/nowhere", headers={"traceparent": parent}, timeout=30).status_code == 404
    [missing] = wait_trace(rx, trace_id, ["GET"])
    assert status_of(missing) == 404 and "http.route" not in missing.attributes
    routes = {s.attributes.get("http.route") for s in rx.spans} | {s.name for s in rx.spans}
    assert not routes & {"/healthz", "/readyz", "/metrics", "GET /healthz", "GET /readyz", "GET /metrics"}


def test_a_hanging_or_failing_collector_costs_requests_nothing(tmp_path: Path, materialized_sample: Path) -> None:
    data = copy_materialized(materialized_sample, tmp_path)
    receiver = OtlpReceiver()
    server = AquiferServer(traced_env(tmp_path, data, receiver), tmp_path / "server.log", ready="/readyz")
    stopped = False
    try:
        questions = [f"what is the refund policy for order {n}?" for n in range(60)]

        def timed(qs: list[str]) -> list[float]:
            out = []
            for q in qs:
                start = time.perf_counter()
                answer = post_context(server.url, SUPPORT, q, purpose="customer_support")
                out.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text
            return out

        healthy = timed(questions[:20])
        receiver.wait_for(lambda r: any(s.name == "POST /v1/context" for s in r.spans))
        receiver.mode = "hang"
        hung = timed(questions[20:40])
        assert max(hung) < 5
        receiver.mode = "error"
        failing = timed(questions[40:])
        assert max(failing) < 5
        assert statistics.median(hung) < statistics.median(healthy) * 1.5 + 0.05
        assert statistics.median(failing) < statistics.median(healthy) * 1.5 + 0.05
        assert any(r["status"] == 500 for r in receiver.requests)
        receiver.mode = "hang"
        for q in questions[:10]:  # spans queued for a collector that never answers
            post_context(server.url, SUPPORT, q + " again", purpose="customer_support")
        start = time.monotonic()
        server.stop()
        stopped = True
        took = time.monotonic() - start
        assert took < 12, f"stopping took {took:.1f} s with the collector hanging"
        assert server.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
    finally:
        if not stopped:
            server.stop()
        receiver.close()


def test_spans_still_queued_are_flushed_on_stop(tmp_path: Path, materialized_sample: Path) -> None:
    data = copy_materialized(materialized_sample, tmp_path)
    receiver = OtlpReceiver()
    env = traced_env(tmp_path, data, receiver, OTEL_BSP_SCHEDULE_DELAY="600000")  # no export but the final one
    server = AquiferServer(env, tmp_path / "server.log", ready="/readyz")
    try:
        answer = post_context(server.url, SUPPORT, QUERY, purpose="customer_support")
        assert answer.status_code == 200
        time.sleep(0.5)
        assert receiver.spans == []
    finally:
        server.stop()
        receiver.close()
    ids = {s.attributes.get("aquifer.decision_id") for s in receiver.spans if s.name == "POST /v1/context"}
    assert ids == {answer.json()["decision_id"]}
    assert {s.name for s in receiver.spans} >= set(STAGES)


def test_nothing_is_sent_when_tracing_is_switched_off(tmp_path: Path, materialized_sample: Path) -> None:
    data = copy_materialized(materialized_sample, tmp_path)
    receiver = OtlpReceiver()
    env = traced_env(tmp_path, data, receiver, OTEL_SDK_DISABLED="true")
    server = AquiferServer(env, tmp_path / "server.log", ready="/readyz")
    try:
        parent, _, _ = traceparent()
        headers = {"Authorization": f"Bearer {SUPPORT}", "traceparent": parent}
        body = {"query": QUERY, "purpose": "customer_support", "model": "local_smollm2"}
        for _ in range(5):
            answer = httpx.post(f"{server.url}/v1/context", json=body, headers=headers, timeout=60)
            assert answer.status_code == 200
        time.sleep(1.0)  # 10 schedule delays
    finally:
        server.stop()
        receiver.close()
    assert receiver.requests == [] and receiver.spans == []
