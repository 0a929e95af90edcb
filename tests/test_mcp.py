"""Aquifer's MCP server, end to end: the real service (uvicorn) with Streamable HTTP at /mcp, ``aquifer mcp`` over
stdio, the official MCP client SDK on both, the development IdP for user tokens. Every tool's answer is checked
against the REST API's for the same inputs (same chunk ids, same redacted texts), and every refusal on both."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from aquifer.audit.log import read_records
from aquifer.catalog import load_catalog
from aquifer.lake import Lake
from aquifer.medallion.layers import Layer
from aquifer.settings import get_settings
from tests.conftest import copy_materialized, use_issuer
from tests.demo_users import ACTING_FOR
from tests.servers import AquiferServer, post_context, service_env
from tests.test_credentials import DEV_TOKENS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TOOLS = {"search_context", "get_lineage", "list_sources", "explain"}
QUESTIONS = {
    "support_assistant": ("how do I reset the device and what did customers report?", "customer_support"),
    "marketing_assistant": ("what are the product's main features?", "marketing"),
    "hr_case_assistant": ("an employee complained about their manager; what is their phone number?", "hr_casework"),
}


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path, dev_idp: Any
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("mcp")
    data = copy_materialized(materialized_sample, root)
    use_issuer(root / "catalog", dev_idp.issuer)
    env = service_env(root, data, AQUIFER_POLICY_RELOAD_INTERVAL_S="0.2")
    server = AquiferServer(env, root / "server.log", ready="/readyz")
    catalog = load_catalog(root / "catalog")
    platinum = pl.concat(
        [
            Lake(str(data / "lake")).read(Layer.PLATINUM, s.id, columns=["platinum_id", "classification"])
            for s in catalog.sources.values()
        ]
    )
    yield {
        "root": root,
        "data": data,
        "env": env,
        "server": server,
        "url": server.url,
        "idp": dev_idp,
        "catalog": catalog,
        "classification_of": dict(zip(platinum["platinum_id"], platinum["classification"], strict=True)),
    }
    server.stop()
    get_settings.cache_clear()


def user_token(world: dict[str, Any], agent: str) -> str | None:
    name = ACTING_FOR.get(agent)
    return world["idp"].make_token(name) if name else None


def headers(world: dict[str, Any], agent: str, *, token: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token or DEV_TOKENS[agent]}"}
    if (user := user_token(world, agent)) is not None:
        out["X-Aquifer-User-Token"] = user
    return out


def http_client(world: dict[str, Any], agent: str, **extra: str) -> Client:
    http = create_mcp_http_client(headers=headers(world, agent) | extra)
    return Client(streamable_http_client(world["url"] + "/mcp", http_client=http))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    async with client as c:
        return await c.call_tool(tool, arguments)


def rest_context(world: dict[str, Any], agent: str, query: str, purpose: str, top_k: int = 8) -> dict[str, Any]:
    model = world["catalog"].agents[agent].default_model
    answer = post_context(
        world["url"],
        DEV_TOKENS[agent],
        query,
        purpose=purpose,
        model=model,
        user_token=user_token(world, agent),
        top_k=top_k,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def records(world: dict[str, Any]) -> list[dict[str, Any]]:
    return list(read_records(world["data"] / "decisions"))


# -- authentication and discovery ----------------------------------------------------------------------------------


def test_strangers_get_401_with_the_metadata_url_and_never_a_tool_list(world: dict[str, Any]) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for auth in ({}, {"Authorization": "Bearer aq_nope_not-a-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        answer = httpx.post(world["url"] + "/mcp", json=init, headers=accept | auth, timeout=10)
        assert answer.status_code == 401, answer.text
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"'), challenge
        assert f'resource_metadata="{world["url"]}/.well-known/oauth-protected-resource/mcp"' in challenge
        assert "search_context" not in answer.text
    metadata = httpx.get(world["url"] + "/.well-known/oauth-protected-resource/mcp", timeout=10).json()
    assert metadata["resource"] == world["url"] + "/mcp"
    assert world["idp"].issuer in metadata["aquifer_user_token_issuers"]
    assert "authorization_servers" not in metadata  # no OAuth server issues agent tokens: a client must not loop
    assert metadata["bearer_methods_supported"] == ["header"]
    assert metadata["aquifer_user_token_header"] == "X-Aquifer-User-Token"
    # the official client, with a bad token, fails to connect (it is never told what the tools are)
    bad = create_mcp_http_client(headers={"Authorization": "Bearer aq_nope_not-a-token"})
    with pytest.raises(BaseException) as refused:
        run(call(Client(streamable_http_client(world["url"] + "/mcp", http_client=bad)), "list_sources", {}))
    assert "401" in repr(refused.value) or "MCPError" in repr(refused.value) or "Unauthorized" in repr(refused.value)


def test_a_session_belongs_to_the_agent_that_opened_it(world: dict[str, Any]) -> None:
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    opened = httpx.post(world["url"] + "/mcp", json=init, headers=accept | headers(world, "support_assistant"))
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    other = accept | headers(world, "marketing_assistant") | {"mcp-session-id": session}
    stolen = httpx.post(world["url"] + "/mcp", json=listing, headers=other, timeout=10)
    assert stolen.status_code == 404, stolen.text


# -- listing -------------------------------------------------------------------------------------------------------


def test_lists_tools_with_schemas_and_the_resources(world: dict[str, Any]) -> None:
    async def listing() -> tuple[Any, Any, Any, str]:
        async with http_client(world, "support_assistant") as c:
            tools = await c.list_tools()
            resources = await c.list_resources()
            templates = await c.list_resource_templates()
            catalog = await c.read_resource("aquifer://catalog")
            return tools, resources, templates, catalog.contents[0].text

    tools, resources, templates, catalog = run(listing())
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == TOOLS
    search = by_name["search_context"]
    assert set(search.input_schema["required"]) == {"query", "purpose"}
    assert search.input_schema["properties"]["top_k"]["maximum"] == 50
    assert "chunks" in search.output_schema["properties"]
    assert all(t.description for t in tools.tools)
    assert [str(r.uri) for r in resources.resources] == ["aquifer://catalog"]
    assert [t.uri_template for t in templates.resource_templates] == ["aquifer://chunk/{chunk_id}{?purpose}"]
    public = json.loads(catalog)
    assert {s["dataset"] for s in public["sources"]} == set(world["catalog"].sources)
    assert "aq_dev" not in catalog and "sha256" not in catalog and "agents" not in public


# -- search_context is /v1/context ---------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", sorted(QUESTIONS))
def test_search_context_equals_v1_context(world: dict[str, Any], agent: str) -> None:
    query, purpose = QUESTIONS[agent]
    result = run(call(http_client(world, agent), "search_context", {"query": query, "purpose": purpose}))
    assert not result.is_error, result.content
    got = result.structured_content
    rest = rest_context(world, agent, query, purpose)
    assert got["chunks"], "the question should find something"
    assert [c["chunk_id"] for c in got["chunks"]] == [c["chunk_id"] for c in rest["chunks"]]
    assert [c["text"] for c in got["chunks"]] == [c["text"] for c in rest["chunks"]]
    assert [c["redactions"] for c in got["chunks"]] == [c["redactions"] for c in rest["chunks"]]
    assert got["withheld"] == rest["withheld"]
    assert [c["n"] for c in got["chunks"]] == list(range(1, len(got["chunks"]) + 1))
    assert got["model"] == world["catalog"].agents[agent].default_model
    assert got["user"] == rest["user"]
    # the text block the model reads cites [n] and carries the redacted text, never the raw
    text = result.content[0].text
    assert "[1]" in text and got["chunks"][0]["text"][:40] in text
    # every receipt names this call's decision, whose record says channel mcp and the tool
    decision = got["decision_id"]
    assert {c["receipt"]["decision_id"] for c in got["chunks"]} == {decision}
    record = next(r for r in records(world) if r.get("decision_id") == decision)
    assert (record["channel"], record["tool"], record["kind"]) == ("mcp", "search_context", "context")
    assert [r["id"] for r in record["resources"] if r["served"]] == [
        c["receipt"]["platinum"]["id"] for c in got["chunks"]
    ]


def test_hr_answers_are_redacted_exactly_as_rest(world: dict[str, Any]) -> None:
    query, purpose = QUESTIONS["support_assistant"]
    result = run(
        call(
            http_client(world, "support_assistant"),
            "search_context",
            {"query": QUESTIONS["hr_case_assistant"][0], "purpose": purpose, "top_k": 20},
        )
    )
    rest = rest_context(world, "support_assistant", QUESTIONS["hr_case_assistant"][0], purpose, top_k=20)
    assert [c["text"] for c in result.structured_content["chunks"]] == [c["text"] for c in rest["chunks"]]
    assert any(c["redactions"] for c in rest["chunks"]), "support tickets carry PII the policy redacts"
    assert query


def test_an_external_model_agent_never_receives_non_public_text(world: dict[str, Any]) -> None:
    questions = [q for q, _ in QUESTIONS.values()] + ["salary bands and budget", "incident response runbook"]

    async def many() -> list[Any]:
        async with http_client(world, "marketing_assistant") as c:
            return [
                await c.call_tool("search_context", {"query": q, "purpose": "marketing", "top_k": 20})
                for q in questions
            ]

    served = 0
    for result in run(many()):
        assert not result.is_error, result.content
        assert result.structured_content["locality"] == "external"
        for chunk in result.structured_content["chunks"]:
            served += 1
            assert world["classification_of"][chunk["receipt"]["platinum"]["id"]] == "public"
    assert served


# -- refusals ------------------------------------------------------------------------------------------------------


def test_a_denied_purpose_is_a_tool_error_with_the_policys_reasons(world: dict[str, Any]) -> None:
    query = "case notes"
    result = run(
        call(http_client(world, "support_assistant"), "search_context", {"query": query, "purpose": "hr_casework"})
    )
    assert result.is_error
    error = result.structured_content
    rest = post_context(world["url"], DEV_TOKENS["support_assistant"], query, purpose="hr_casework")
    assert rest.status_code == 403
    assert error["error"] == "forbidden"
    assert error["reasons"] == rest.json()["reasons"] and error["reasons"]
    assert error["explanations"] == rest.json()["explanations"]
    assert "chunks" not in error
    refusal = [r for r in records(world) if r.get("tool") == "search_context" and r["request_allow"] is False]
    assert refusal and refusal[-1]["purpose"] == "hr_casework" and refusal[-1]["channel"] == "mcp"


def test_an_agent_acting_for_users_needs_a_user_token(world: dict[str, Any]) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {DEV_TOKENS['hr_case_assistant']}"})
    client = Client(streamable_http_client(world["url"] + "/mcp", http_client=http))
    result = run(call(client, "search_context", {"query": "case notes", "purpose": "hr_casework"}))
    assert result.is_error and result.structured_content["error"] == "unauthenticated"
    assert "user_token_required" in result.structured_content["reasons"]
    forged = run(
        call(
            http_client(world, "hr_case_assistant", **{"X-Aquifer-User-Token": "e30.e30.sig"}),
            "search_context",
            {"query": "case notes", "purpose": "hr_casework"},
        )
    )
    assert forged.is_error and forged.structured_content["error"] == "unauthenticated"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"query": "", "purpose": "customer_support"}, "query"),
        ({"query": "x", "purpose": "Not An Id"}, "purpose"),
        ({"query": "x", "purpose": "customer_support", "top_k": 0}, "top_k"),
        ({"query": "x", "purpose": "customer_support", "top_k": "many"}, "top_k"),
        ({"query": "x", "purpose": "customer_support", "as_of": "yesterday"}, "as_of"),
        ({"query": "x"}, "purpose"),
    ],
)
def test_malformed_arguments_are_errors_naming_the_argument(
    world: dict[str, Any], arguments: dict[str, Any], field: str
) -> None:
    result = run(call(http_client(world, "support_assistant"), "search_context", arguments))
    assert result.is_error
    assert field in result.content[0].text


# -- the other tools -----------------------------------------------------------------------------------------------


def test_get_lineage_is_refused_exactly_like_v1_lineage(world: dict[str, Any]) -> None:
    query, purpose = QUESTIONS["support_assistant"]
    mine = rest_context(world, "support_assistant", query, purpose)["chunks"][0]["chunk_id"]
    theirs = rest_context(world, "hr_case_assistant", *QUESTIONS["hr_case_assistant"])["chunks"][0]["chunk_id"]
    walk = run(call(http_client(world, "support_assistant"), "get_lineage", {"chunk_id": mine}))
    assert not walk.is_error, walk.content
    rest = httpx.get(f"{world['url']}/v1/lineage/{mine}", headers=headers(world, "support_assistant"), timeout=30)
    assert walk.structured_content == rest.json()
    refused = run(call(http_client(world, "support_assistant"), "get_lineage", {"chunk_id": theirs}))
    unknown = run(call(http_client(world, "support_assistant"), "get_lineage", {"chunk_id": "gld_" + "0" * 32}))
    assert refused.is_error and unknown.is_error
    assert refused.structured_content["error"] == unknown.structured_content["error"] == "not_found"
    assert refused.content[0].text.replace(theirs, "X") == unknown.content[0].text.replace("gld_" + "0" * 32, "X")


def test_list_sources_says_what_is_readable_and_what_is_withheld(world: dict[str, Any]) -> None:
    result = run(call(http_client(world, "marketing_assistant"), "list_sources", {}))
    assert not result.is_error, result.content
    view = result.structured_content["purposes"]
    assert [v["purpose"] for v in view] == ["marketing"] and view[0]["allowed"]
    assert view[0]["readable"] == ["product_docs"]
    withheld = {w["dataset"]: w for w in view[0]["withheld"]}
    assert "hr_case_notes" in withheld and withheld["hr_case_notes"]["reasons"]
    rest = rest_context(world, "marketing_assistant", *QUESTIONS["marketing_assistant"])
    assert view[0]["withheld"] == rest["withheld"]
    assert result.structured_content["locality"] == "external"
    denied = run(call(http_client(world, "marketing_assistant"), "list_sources", {"purpose": "hr_casework"}))
    assert not denied.structured_content["purposes"][0]["allowed"]
    assert denied.structured_content["purposes"][0]["reasons"]


def test_explain_gives_the_policys_reasons_for_a_dataset_and_an_allowed_chunk(world: dict[str, Any]) -> None:
    result = run(call(http_client(world, "support_assistant"), "explain", {"dataset": "hr_case_notes"}))
    assert not result.is_error, result.content
    decisions = result.structured_content["decisions"]
    assert decisions and not any(d["allow"] for d in decisions)
    assert all(d["reasons"] and d["explanations"] for d in decisions)
    query, purpose = QUESTIONS["hr_case_assistant"]
    served = rest_context(world, "hr_case_assistant", query, purpose)["chunks"]
    mine = run(call(http_client(world, "hr_case_assistant"), "explain", {"chunk_id": served[0]["chunk_id"]}))
    assert not mine.is_error, mine.content
    assert mine.structured_content["decisions"][0]["allow"]
    # a chunk the caller may not read is not confirmed to exist
    theirs = run(call(http_client(world, "support_assistant"), "explain", {"chunk_id": served[0]["chunk_id"]}))
    assert theirs.is_error and theirs.structured_content["error"] == "not_found"
    both = run(
        call(http_client(world, "support_assistant"), "explain", {"chunk_id": served[0]["chunk_id"], "dataset": "x_y"})
    )
    assert both.is_error and "exactly one" in both.content[0].text
    unknown = run(call(http_client(world, "support_assistant"), "explain", {"dataset": "no_such_source"}))
    assert unknown.is_error and unknown.structured_content["field"] == "dataset"


# -- resources: re-decided on every read ---------------------------------------------------------------------------


def test_a_chunk_resource_is_refused_once_the_policy_revokes_it(world: dict[str, Any]) -> None:
    query, purpose = QUESTIONS["support_assistant"]
    chunks = rest_context(world, "support_assistant", query, purpose)["chunks"]
    wiki = chunks[0]
    uri = f"aquifer://chunk/{wiki['chunk_id']}"

    async def read() -> Any:
        async with http_client(world, "support_assistant") as c:
            return await c.read_resource(uri)

    first = json.loads(run(read()).contents[0].text)
    assert [c["text"] for c in first["chunks"]] == [wiki["text"]]
    assert first["tool"] == "read_chunk"
    # the same receipt as the search that served it (user and admitted_by included), under the read's own decision
    same = {k: v for k, v in wiki["receipt"].items() if k != "decision_id"}
    assert {k: v for k, v in first["chunks"][0]["receipt"].items() if k != "decision_id"} == same
    assert first["chunks"][0]["receipt"]["decision_id"] == first["decision_id"] != wiki["receipt"]["decision_id"]
    source = world["root"] / "catalog" / "sources" / f"{wiki['dataset']}.yaml"
    original = source.read_text()
    entry = yaml.safe_load(original)
    entry["allowed_purposes"] = [p for p in entry["allowed_purposes"] if p != purpose] or ["audit"]
    source.write_text(yaml.safe_dump(entry, sort_keys=False))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                run(read())
            except MCPError as exc:
                assert "not_found" in str(exc) or "no chunk" in str(exc)
                break
            except BaseException as exc:  # the SDK may nest it
                assert "no chunk" in repr(exc), repr(exc)
                break
            assert time.monotonic() < deadline, "the revocation never took effect"
            time.sleep(0.3)
    finally:
        source.write_text(original)
        deadline = time.monotonic() + 20
        while True:  # the engine takes the restored catalog again: later tests see the policy as it was
            try:
                run(read())
                break
            except BaseException:
                assert time.monotonic() < deadline, "the restored catalog never took effect"
                time.sleep(0.3)
    logged = [r for r in records(world) if r.get("tool") == "read_chunk"]
    assert logged[0]["resources"][0]["served"]
    refused = [r for r in logged if r["resources"] and not r["resources"][0]["allow"]]
    assert refused and not refused[0]["resources"][0]["served"] and refused[0]["resources"][0]["reasons"]


# -- concurrency, metrics ------------------------------------------------------------------------------------------


def test_concurrent_sessions_do_not_see_each_others_results(world: dict[str, Any]) -> None:
    agents = ["support_assistant", "hr_case_assistant", "marketing_assistant"] * 2

    async def one(agent: str) -> tuple[str, Any]:
        query, purpose = QUESTIONS[agent]
        async with http_client(world, agent) as c:
            results = [await c.call_tool("search_context", {"query": query, "purpose": purpose}) for _ in range(3)]
        return agent, results

    async def together() -> list[tuple[str, Any]]:
        return await asyncio.gather(*(one(a) for a in agents))

    expected = {a: [c["chunk_id"] for c in rest_context(world, a, *QUESTIONS[a])["chunks"]] for a in set(agents)}
    for agent, results in run(together()):
        for result in results:
            assert result.structured_content["agent"] == agent
            got = [c["chunk_id"] for c in result.structured_content["chunks"]]
            assert got == expected[agent], agent


def test_prometheus_counts_tool_calls_by_outcome(world: dict[str, Any]) -> None:
    run(call(http_client(world, "support_assistant"), "search_context", {"query": "x", "purpose": "hr_casework"}))
    text = httpx.get(world["url"] + "/metrics", timeout=10).text
    assert 'aquifer_mcp_calls_total{outcome="ok",tool="search_context"}' in text
    assert 'aquifer_mcp_calls_total{outcome="forbidden",tool="search_context"}' in text


# -- stdio ---------------------------------------------------------------------------------------------------------


def stdio(world: dict[str, Any], agent: str, **env: str) -> Client:
    environ = world["env"] | {"AQUIFER_AGENT_TOKEN": DEV_TOKENS[agent]} | env
    if (user := user_token(world, agent)) is not None and "AQUIFER_USER_TOKEN" not in env:
        environ["AQUIFER_USER_TOKEN"] = user
    return Client(StdioServerParameters(command=sys.executable, args=["-m", "aquifer", "mcp"], env=environ))


def test_stdio_serves_the_same_governed_context(world: dict[str, Any]) -> None:
    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with stdio(world, "hr_case_assistant") as c:
            out["tools"] = {t.name for t in (await c.list_tools()).tools}
            query, purpose = QUESTIONS["hr_case_assistant"]
            out["search"] = await c.call_tool("search_context", {"query": query, "purpose": purpose})
            out["denied"] = await c.call_tool("search_context", {"query": query, "purpose": "marketing"})
        return out

    out = run(session())
    assert out["tools"] == TOOLS
    got = out["search"].structured_content
    rest = rest_context(world, "hr_case_assistant", *QUESTIONS["hr_case_assistant"])
    assert [c["chunk_id"] for c in got["chunks"]] == [c["chunk_id"] for c in rest["chunks"]]
    assert [c["text"] for c in got["chunks"]] == [c["text"] for c in rest["chunks"]]
    assert got["user"] == rest["user"]
    assert out["denied"].is_error and out["denied"].structured_content["reasons"]
    record = next(r for r in records(world) if r.get("decision_id") == got["decision_id"])
    assert record["channel"] == "mcp"


def test_stdio_refuses_to_start_without_a_valid_agent_token(world: dict[str, Any]) -> None:
    import subprocess

    env = {k: v for k, v in world["env"].items() if k != "AQUIFER_AGENT_TOKEN"}
    missing = subprocess.run(
        [sys.executable, "-m", "aquifer", "mcp"], env=env, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode != 0 and "AQUIFER_AGENT_TOKEN" in missing.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "aquifer", "mcp"],
        env=env | {"AQUIFER_AGENT_TOKEN": "aq_nope_x"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "invalid token" in bad.stderr
    assert not bad.stdout  # stdout is the protocol's: nothing else is written there


@pytest.mark.skipif(shutil.which("opa") is None, reason="no `opa` command on PATH (see tests/test_opa.py)")
def test_on_real_opa_the_same_denials_and_an_engine_that_goes_away_is_an_error_with_zero_chunks(
    world: dict[str, Any],
) -> None:
    import subprocess

    from tests.servers import free_port, wait_http

    port = free_port()
    opa = subprocess.Popen(
        ["opa", "run", "--server", "--addr", f"127.0.0.1:{port}", str(world["root"] / "policies")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/health", opa, timeout_s=60)
    engine = {"AQUIFER_POLICY_ENGINE": "opa", "AQUIFER_OPA_URL": f"http://127.0.0.1:{port}"}
    query, purpose = QUESTIONS["support_assistant"]

    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with stdio(world, "support_assistant", **engine) as c:
            out["allowed"] = await c.call_tool("search_context", {"query": query, "purpose": purpose})
            out["denied"] = await c.call_tool("search_context", {"query": query, "purpose": "hr_casework"})
            out["lineage"] = await c.call_tool("explain", {"dataset": "hr_case_notes"})
            opa.terminate()
            opa.wait(10)
            out["down"] = await c.call_tool("search_context", {"query": query, "purpose": "marketing"})
            out["sources"] = await c.call_tool("list_sources", {"purpose": "finance"})
        return out

    try:
        out = run(session())
    finally:
        if opa.poll() is None:
            opa.terminate()
    rest = rest_context(world, "support_assistant", query, purpose)  # the embedded engine
    assert [c["chunk_id"] for c in out["allowed"].structured_content["chunks"]] == [
        c["chunk_id"] for c in rest["chunks"]
    ]
    embedded = run(
        call(http_client(world, "support_assistant"), "search_context", {"query": query, "purpose": "hr_casework"})
    )
    assert (
        out["denied"].is_error and out["denied"].structured_content["reasons"] == embedded.structured_content["reasons"]
    )
    on_embedded = run(call(http_client(world, "support_assistant"), "explain", {"dataset": "hr_case_notes"}))
    assert out["lineage"].structured_content["decisions"] == on_embedded.structured_content["decisions"]
    for result in (out["down"], out["sources"]):
        assert result.is_error, result.content
        assert result.structured_content["error"] == "unavailable"
        assert "chunks" not in result.structured_content


def test_hostile_protocol_input_gets_a_clear_answer_never_a_5xx(world: dict[str, Any]) -> None:
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    auth = accept | headers(world, "support_assistant")
    url = world["url"] + "/mcp"
    bodies: list[bytes] = [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_context"}}',
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "x" * 10_000}).encode(),
        b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ]
    for body in bodies:
        answer = httpx.post(url, content=body, headers=auth, timeout=30)
        assert answer.status_code < 500, (body[:60], answer.status_code, answer.text[:200])
    huge = httpx.post(url, content=b"{" + b" " * (5 * 2**20) + b"}", headers=auth, timeout=30)
    assert huge.status_code in (400, 413), huge.status_code
    # other hosts are refused (DNS rebinding), before any session is opened
    rebound = httpx.post(url, content=b"{}", headers=auth | {"Host": "evil.example"}, timeout=10)
    assert rebound.status_code in (403, 421), rebound.status_code

    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with http_client(world, "support_assistant") as c:
            out["unknown_tool"] = await c.call_tool("drop_tables", {})
            out["long_query"] = await c.call_tool(
                "search_context", {"query": "x" * 5000, "purpose": "customer_support"}
            )
            out["extra"] = await c.call_tool("list_sources", {"purpose": "customer_support", "admin": True})
            for uri in ("aquifer://chunk/../../etc/passwd", "aquifer://chunk/gld_zz", "aquifer://nothing"):
                try:
                    await c.read_resource(uri)
                    out[uri] = "read"
                except MCPError as exc:
                    out[uri] = exc.error.message
        return out

    out = run(session())
    assert out["unknown_tool"].is_error and "drop_tables" in out["unknown_tool"].content[0].text
    assert out["long_query"].is_error and "query" in out["long_query"].content[0].text
    assert not out["extra"].is_error or "admin" in out["extra"].content[0].text
    for uri in ("aquifer://chunk/../../etc/passwd", "aquifer://chunk/gld_zz", "aquifer://nothing"):
        assert out[uri] != "read", uri
