"""The OPA-server backend against a real `opa` binary: same decisions as the embedded engine, same revision, and
the Rego suite passes under `opa test`. Skipped, saying so, where no `opa` binary is on PATH."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from aquifer.policy import (
    POLICY_ENGINE_UNAVAILABLE,
    EmbeddedBackend,
    OpaBackend,
    PolicyEngine,
    RequestContext,
    Resource,
)
from aquifer.settings import PROJECT_ROOT
from tests.servers import free_port, wait_http

OPA = shutil.which("opa")
pytestmark = pytest.mark.skipif(
    OPA is None,
    reason="no `opa` binary on PATH: the OPA-server backend tests need one "
    "(https://www.openpolicyagent.org/docs#running-opa). The embedded engine and the fail-closed path for an "
    "unreachable OPA are tested without it.",
)
POLICIES, CATALOG = PROJECT_ROOT / "policies", PROJECT_ROOT / "catalog"


@pytest.fixture(scope="module")
def opa_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    assert OPA is not None
    port = free_port()
    proc = subprocess.Popen([OPA, "run", "--server", "--addr", f"127.0.0.1:{port}", "policies/"], cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, timeout_s=20)
    yield url, proc
    proc.terminate()
    proc.wait(10)


def test_opa_test_passes_the_whole_policy_suite() -> None:
    assert OPA is not None
    result = subprocess.run([OPA, "test", "policies/", "-v"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_opa_server_gives_the_embedded_engine_decisions(opa_server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = opa_server
    opa = PolicyEngine(OpaBackend(url), POLICIES, CATALOG)
    embedded = PolicyEngine(EmbeddedBackend(), POLICIES, CATALOG)
    assert opa.error is None, opa.error
    assert opa.revision == embedded.revision
    data = embedded.catalog.policy_data()
    resources = [
        Resource(ds, level, layer=layer, pii_types=pii, untrusted=untrusted)
        for ds in [*sorted(data["datasets"]), "shadow"]
        for level in ("public", "internal", "confidential", "restricted", "secret")
        for layer in ("platinum", "gold", "silver")
        for pii in ((), ("email", "phone"))
        for untrusted in (False, True)
    ]
    for agent in [*data["agents"], "intruder"]:
        for model in [*data["models"], "shadow_llm"]:
            for purpose in ("customer_support", "hr_casework", "financial_analysis", "marketing", "espionage"):
                ctx = RequestContext(agent, purpose, model)
                a, b = opa.decide(ctx, resources), embedded.decide(ctx, resources)
                assert a.request == b.request, ctx
                assert a.resources == b.resources, ctx


def test_opa_server_going_away_denies(opa_server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = opa_server
    engine = PolicyEngine(OpaBackend(url), POLICIES, CATALOG)
    ctx = RequestContext("support_assistant", "customer_support", "local_smollm2")
    assert engine.decide(ctx, [Resource("product_docs", "public")]).resources[0].allow
    proc.terminate()
    proc.wait(10)
    fresh = engine.decide(ctx, [Resource("support_tickets", "internal")])
    assert fresh.resources[0].reasons == [POLICY_ENGINE_UNAVAILABLE]
