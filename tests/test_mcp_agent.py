"""``agents/mcp_agent.py`` end to end, as a user runs it: a subprocess against the real service (uvicorn, ``/mcp``)
or ``aquifer mcp`` over stdio, the development IdP for ``--as``, and the real llama.cpp server with the local
model. Its printed sources must be exactly the chunks ``/v1/context`` serves for the same question, purpose, model
and user; a refusal must exit non-zero with the policy's reason code."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aquifer.audit.log import read_records
from aquifer.settings import PROJECT_ROOT, get_settings
from tests.conftest import copy_materialized, use_issuer
from tests.servers import AquiferServer, free_port, llama_server, service_env
from tests.test_credentials import DEV_TOKENS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SOURCE = re.compile(r"^  \[(\d+)\][* ] (\w+): (\S+) \(.*\)\n {7}(gld_[0-9a-f]{32}) · receipt (dec_[0-9a-f]{32})$", re.M)
CREDENTIAL_ENV = ("AQUIFER_AGENT_TOKEN", "AQUIFER_TOKEN", "AQUIFER_USER_TOKEN", "AQUIFER_USER_TOKEN_FILE")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path, dev_idp: Any
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("mcp_agent")
    data = copy_materialized(materialized_sample, root)
    use_issuer(root / "catalog", dev_idp.issuer)
    env = {k: v for k, v in service_env(root, data).items() if k not in CREDENTIAL_ENV}
    server = AquiferServer(env, root / "server.log", ready="/readyz")
    model_url, model = llama_server(root / "llama.log")
    yield {"data": data, "env": env, "url": server.url, "model_url": model_url, "idp": dev_idp}
    model.stop()
    server.stop()
    get_settings.cache_clear()


def agent(world: dict[str, Any], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "agents/mcp_agent.py", "--url", world["url"], "--model-url", world["model_url"], *args]
    return subprocess.run(argv, cwd=PROJECT_ROOT, env=world["env"], capture_output=True, text=True, timeout=timeout)


def module(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "agents.mcp_agent", *args]
    return subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)


def rest_context(
    world: dict[str, Any], agent_id: str, query: str, purpose: str, *, user: str | None = None, top_k: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {DEV_TOKENS[agent_id]}"}
    if user:
        headers["X-Aquifer-User-Token"] = world["idp"].make_token(user)
    body = {"query": query, "purpose": purpose, "model": "local_smollm2", "top_k": top_k, "max_tokens": 1024}
    answer = httpx.post(f"{world['url']}/v1/context", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize(
    ("transport", "agent_id", "user", "query", "purpose"),
    [
        ("http", "support_assistant", None, "How do refunds work?", "customer_support"),
        ("stdio", "hr_case_assistant", "amira.haddad", "employee complaint about a manager", "hr_casework"),
    ],
)
def test_the_agent_answers_on_the_local_model_citing_the_chunks_search_context_served(
    world: dict[str, Any], transport: str, agent_id: str, user: str | None, query: str, purpose: str
) -> None:
    args = ["--agent", agent_id, "--top-k", "4", "--max-tokens", "40"]
    args += ["--stdio"] if transport == "stdio" else []
    args += ["--as", user] if user else []
    done = agent(world, *args, query)
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    header, answer = out.splitlines()[:2]
    assert header.startswith(f"{agent_id} · ") and f"purpose {purpose} · model local_smollm2 (local)" in header
    assert ("for user tidewater_dev_idp:" + user in header) if user else ("for user" not in header)
    assert answer.strip(), "the local model answered nothing"
    sources = SOURCE.findall(out)
    rest = rest_context(world, agent_id, query, purpose, user=user, top_k=4)
    assert rest["chunks"], "the question should find something"
    assert [int(n) for n, *_ in sources] == list(range(1, len(rest["chunks"]) + 1))
    assert [chunk_id for *_, chunk_id, _ in sources] == [c["chunk_id"] for c in rest["chunks"]]
    assert [(d, uri) for _, d, uri, *_ in sources] == [
        (c["dataset"], c["receipt"]["source_uri"]) for c in rest["chunks"]
    ]
    decision = re.search(r"^decision (dec_[0-9a-f]{32}) · ", out, re.M)
    assert decision and {receipt for *_, receipt in sources} == {decision.group(1)}
    for w in rest["withheld"]:
        assert f"  {w['dataset']} ({', '.join(w['classifications'])}): {', '.join(w['reasons'])}" in out
    record = next(r for r in read_records(world["data"] / "decisions") if r.get("decision_id") == decision.group(1))
    assert (record["channel"], record["tool"], record["agent"]) == ("mcp", "search_context", agent_id)


def test_a_refusal_or_an_unreachable_service_exits_non_zero_saying_why(world: dict[str, Any]) -> None:
    denied = agent(world, "--purpose", "hr_casework", "case notes")
    assert denied.returncode == 1 and not denied.stdout
    assert "search_context refused (forbidden)" in denied.stderr
    assert re.search(r"^  purpose_not_allowed: ", denied.stderr, re.M), denied.stderr
    no_user = agent(world, "--agent", "hr_case_assistant", "case notes")
    assert no_user.returncode == 1 and "user_token_required" in no_user.stderr
    # the other invocation, `python -m agents.mcp_agent`, with the token from the environment
    bad_token = module(world["env"] | {"AQUIFER_AGENT_TOKEN": "aq_nope_not-a-token"}, "--url", world["url"], "x")
    assert bad_token.returncode == 1 and "refused the agent token (401): invalid token" in bad_token.stderr
    nowhere = f"http://127.0.0.1:{free_port()}"
    gone = module(world["env"], "--url", nowhere, "x")
    assert gone.returncode == 1 and f"cannot reach Aquifer at {nowhere}" in gone.stderr
