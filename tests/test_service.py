"""End to end: a real uvicorn server (``aquifer serve``) over the materialized sample corpus, the real index and
embedding model, the real policy; called over HTTP with the library's client and raw httpx."""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from aquifer import sample
from aquifer.audit.log import read_records
from aquifer.catalog import load_catalog
from aquifer.cli import app
from aquifer.client import AquiferClient, AquiferError, AsyncAquiferClient
from aquifer.lake import Lake
from aquifer.settings import get_settings
from pipelines.runs import materialize
from tests import policy_oracle
from tests.conftest import copy_materialized, use_issuer
from tests.demo_users import ACTING_FOR
from tests.demo_users import user as demo_user
from tests.servers import AquiferServer, chromium, render, service_env
from tests.test_credentials import DEV_TOKENS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
QUESTION = "an employee complained about their manager; what is their phone number?"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path, dev_idp: Any
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("service")
    data = copy_materialized(materialized_sample, root)
    use_issuer(root / "catalog", dev_idp.issuer)
    env = service_env(root, data, AQUIFER_POLICY_RELOAD_INTERVAL_S="0.2")
    mp = pytest.MonkeyPatch()
    for key in (
        "AQUIFER_DATA_DIR",
        "DAGSTER_HOME",
        "AQUIFER_POLICY_DIR",
        "AQUIFER_CATALOG_DIR",
        "AQUIFER_CREDENTIALS_FILE",
    ):
        mp.setenv(key, env[key])
    get_settings.cache_clear()
    instance = dg.DagsterInstance.ephemeral()
    server = AquiferServer(env, root / "server.log")
    yield {
        "root": root,
        "data": data,
        "env": env,
        "server": server,
        "instance": instance,
        "lake": Lake(str(data / "lake")),
        "catalog": load_catalog(root / "catalog"),
        "idp": dev_idp,
    }
    server.stop()
    mp.undo()
    get_settings.cache_clear()


def client(world: dict[str, Any], agent: str) -> AquiferClient:
    """A client for ``agent``; one that acts for users acts for its demo user (tests/demo_users.py)."""
    user = ACTING_FOR.get(agent)
    user_token = world["idp"].make_token(user) if user else None
    return AquiferClient(world["server"].url, token=DEV_TOKENS[agent], user_token=user_token)


def _platinum(world: dict[str, Any]) -> pl.DataFrame:
    lake: Lake = world["lake"]
    return pl.concat(
        [lake.read("platinum", s) for s in world["catalog"].sources if lake.exists("platinum", s)],
        how="vertical_relaxed",
    )


def test_demo_agents_get_different_context_for_the_same_question(world: dict[str, Any]) -> None:
    seen: dict[str, set[str]] = {}
    for agent, purpose, model in [
        ("support_assistant", "customer_support", "local_smollm2"),
        ("hr_case_assistant", "hr_casework", "local_smollm2"),
        ("marketing_assistant", "marketing", "external_gpt"),
        ("finance_analyst", "financial_analysis", "local_smollm2"),
    ]:
        with client(world, agent) as c:
            answer = c.context(QUESTION, purpose=purpose, model=model, top_k=6)
        assert answer.chunks, agent
        seen[agent] = {ch.dataset for ch in answer.chunks}
        assert answer.agent == agent and answer.policy_revision and answer.index_version >= 1
        for ch in answer.chunks:
            assert ch.receipt.decision_id == answer.decision_id
            assert ch.receipt.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert (
        seen["hr_case_assistant"] <= {"hr_case_notes", "hr_handbook"} and "hr_case_notes" in seen["hr_case_assistant"]
    )
    assert seen["marketing_assistant"] == {"product_docs"}
    assert seen["finance_analyst"] == {"finance_reports"}
    assert "hr_case_notes" not in seen["support_assistant"]


def test_pii_is_redacted_unless_the_agent_may_read_it(world: dict[str, Any]) -> None:
    platinum = _platinum(world).filter(pl.col("pii_types").list.len() > 0)
    spans = {
        r["chunk_id"]: [r["text"][s["start"] : s["end"]] for s in r["pii_spans"]]
        for r in platinum.iter_rows(named=True)
    }
    with client(world, "support_assistant") as c:
        answer = c.context(
            "invoice rejected, please call me back", purpose="customer_support", model="local_smollm2", top_k=10
        )
    redacted = [ch for ch in answer.chunks if ch.redactions]
    assert redacted, "support tickets carry contact details"
    for ch in redacted:
        for value in spans[ch.chunk_id]:
            assert value not in ch.text
        assert any(f"[{r.type.upper()}]" in ch.text for r in ch.redactions)
    with client(world, "hr_case_assistant") as c:
        hr = c.context(QUESTION, purpose="hr_casework", model="local_smollm2", top_k=5)
    cases = [ch for ch in hr.chunks if ch.dataset == "hr_case_notes"]
    assert cases and all(not ch.redactions for ch in cases), "a pii_reader for hr_casework reads case PII"
    assert any(v in ch.text for ch in cases for v in spans.get(ch.chunk_id, []))


def test_max_tokens_packs_in_a_stable_order(world: dict[str, Any]) -> None:
    with client(world, "support_assistant") as c:
        full = c.context("how do refunds work", purpose="customer_support", model="local_smollm2", top_k=10)
        budget = sum(ch.tokens for ch in full.chunks[:3])
        packed = c.context(
            "how do refunds work", purpose="customer_support", model="local_smollm2", top_k=10, max_tokens=budget
        )
        again = c.context(
            "how do refunds work", purpose="customer_support", model="local_smollm2", top_k=10, max_tokens=budget
        )
    assert packed.tokens <= budget
    assert [ch.chunk_id for ch in packed.chunks][:3] == [ch.chunk_id for ch in full.chunks][:3]
    assert [ch.chunk_id for ch in packed.chunks] == [ch.chunk_id for ch in again.chunks]
    scores = [ch.score for ch in full.chunks]
    assert scores == sorted(scores, reverse=True)


def test_near_duplicates_collapse_into_the_best_copy(world: dict[str, Any]) -> None:
    """The sample has incident reviews generated from one template: asking about one returns near-copies, and only
    the best-scoring copy of each is served; the others count as near_duplicates and are logged as not served."""
    from aquifer.embedding import get_embedder

    with client(world, "support_assistant") as c:
        answer = c.context("How do I export the audit log?", purpose="customer_support", model="local_smollm2", top_k=6)
    assert answer.near_duplicates >= 1 and len(answer.chunks) + answer.near_duplicates == 6
    vectors = get_embedder().encode([ch.text for ch in answer.chunks])
    similarity = vectors @ vectors.T
    assert all(similarity[i, j] < 0.97 for i in range(len(vectors)) for j in range(i)), "no near-copies served"
    record = next(r for r in read_records(world["data"] / "decisions") if r["decision_id"] == answer.decision_id)
    assert sum(not r["served"] and r["allow"] for r in record["resources"]) == answer.near_duplicates


def test_every_receipt_verifies_back_to_its_landing_file(world: dict[str, Any]) -> None:
    ids = set()
    with client(world, "support_assistant") as c:
        for q in ("refund", "password reset", "invoice"):
            for ch in c.context(q, purpose="customer_support", model="local_smollm2", top_k=5).chunks:
                ids.add(ch.receipt.platinum.id)
                lineage = c.lineage(ch.chunk_id)
                hop = lineage["lineage"]
                assert hop["id"] == ch.receipt.platinum.id and hop["delta_version"] == ch.receipt.platinum.delta_version
                while hop["upstream"]:
                    hop = hop["upstream"][0]
                assert hop["id"] == ch.receipt.bronze.id and hop["uri"] == ch.receipt.source_uri
                assert hop["file_sha256"] == ch.receipt.source_sha256
    runner = CliRunner()
    for platinum_id in sorted(ids):
        result = runner.invoke(app, ["lineage", platinum_id, "--verify", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["verified"] is True


def test_error_paths(world: dict[str, Any]) -> None:
    url = world["server"].url
    body = {"query": "refunds", "purpose": "customer_support", "model": "local_smollm2"}
    missing = httpx.post(f"{url}/v1/context", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"] == "unauthenticated"
    for token in ("not-a-token", "aq_devsupport_" + "x" * 40, DEV_TOKENS["support_assistant"] + "x"):
        bad = httpx.post(f"{url}/v1/context", json=body, headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 401 and bad.json()["detail"] == "invalid token"
        assert token not in bad.text
    auth = {"Authorization": f"Bearer {DEV_TOKENS['support_assistant']}"}
    forbidden = httpx.post(f"{url}/v1/context", json={**body, "purpose": "marketing"}, headers=auth)
    assert forbidden.status_code == 403 and forbidden.json()["reasons"] == ["purpose_not_allowed"]
    unregistered = httpx.post(f"{url}/v1/context", json={**body, "model": "gpt_99"}, headers=auth)
    assert unregistered.status_code == 403 and "unknown_model" in unregistered.json()["reasons"]
    malformed = httpx.post(f"{url}/v1/context", json={**body, "model": "gpt-99"}, headers=auth)
    assert malformed.status_code == 422 and malformed.json()["field"] == "model"
    assert malformed.json()["detail"].startswith("model: not an identifier")
    for change, field in (
        ({"top_k": 0}, "top_k"),
        ({"top_k": 51}, "top_k"),
        ({"query": ""}, "query"),
        ({"as_of": "last tuesday"}, "as_of"),
        ({"as_of": "999"}, "as_of"),
        ({"temperature": 1}, "temperature"),
    ):
        invalid = httpx.post(f"{url}/v1/context", json={**body, **change}, headers=auth)
        assert invalid.status_code == 422, (change, invalid.text)
        assert invalid.json()["field"] == field
    no_query = httpx.post(f"{url}/v1/context", json={"purpose": "x", "model": "y"}, headers=auth)
    assert no_query.status_code == 422 and no_query.json()["field"] == "query"
    assert "Traceback" not in no_query.text


def test_a_broken_policy_is_503_and_nothing_leaves(world: dict[str, Any]) -> None:
    policy = world["root"] / "policies/aquifer/context/trust.rego"
    good = policy.read_text()
    auth = {"Authorization": f"Bearer {DEV_TOKENS['support_assistant']}"}
    body = {"query": "refunds", "purpose": "customer_support", "model": "local_smollm2"}
    try:
        policy.write_text(good + "\nresource_deny contains if {\n")
        time.sleep(0.5)
        down = httpx.post(f"{world['server'].url}/v1/context", json=body, headers=auth)
        assert down.status_code == 503, down.text
        assert down.json()["reasons"] == ["policy_engine_unavailable"] and "chunks" not in down.json()
        ready = httpx.get(f"{world['server'].url}/readyz")
        assert ready.status_code == 503 and "policy_engine" in ready.json()["problems"]
    finally:
        policy.write_text(good)
    time.sleep(0.5)
    assert httpx.post(f"{world['server'].url}/v1/context", json=body, headers=auth).status_code == 200


def test_a_missing_index_is_503(world: dict[str, Any]) -> None:
    env = {**world["env"], "AQUIFER_INDEX_URI": str(world["root"] / "no-index")}
    server = AquiferServer(env, world["root"] / "server-noindex.log")
    try:
        auth = {"Authorization": f"Bearer {DEV_TOKENS['support_assistant']}"}
        body = {"query": "refunds", "purpose": "customer_support", "model": "local_smollm2"}
        answer = httpx.post(f"{server.url}/v1/context", json=body, headers=auth, timeout=30)
        assert answer.status_code == 503 and "no index" in answer.json()["detail"]
        assert httpx.get(f"{server.url}/readyz").status_code == 503
    finally:
        server.stop()


def test_decisions_are_logged_and_readable_by_auditors_only(world: dict[str, Any]) -> None:
    with client(world, "hr_case_assistant") as c:
        answer = c.context(QUESTION, purpose="hr_casework", model="local_smollm2", top_k=3)
    with client(world, "audit_reviewer") as auditor:
        record = auditor.decision(answer.decision_id)
    assert record["agent"] == "hr_case_assistant" and record["kind"] == "context" and record["locality"] == "local"
    assert {r["id"] for r in record["resources"] if r["served"]} == {ch.receipt.platinum.id for ch in answer.chunks}
    assert record["revision"] == answer.policy_revision
    with client(world, "support_assistant") as c, pytest.raises(AquiferError) as denied:
        c.decision(answer.decision_id)
    assert denied.value.status == 403 and denied.value.reasons == ["role_required"]
    with client(world, "audit_reviewer") as auditor, pytest.raises(AquiferError) as missing:
        auditor.decision("dec_" + "0" * 32)
    assert missing.value.status == 404
    with client(world, "audit_reviewer") as auditor, pytest.raises(AquiferError) as malformed:
        auditor.decision("dec_nope")
    assert malformed.value.status == 422 and malformed.value.field == "path.decision_id"
    reads = [r for r in read_records(world["data"] / "decisions") if r["kind"] == "read_decisions"]
    assert [(r["agent"], r["request_allow"], r["ref"]) for r in reads[-3:]] == [
        ("audit_reviewer", True, answer.decision_id),
        ("support_assistant", False, answer.decision_id),
        ("audit_reviewer", True, "dec_" + "0" * 32),
    ], "every read of the log, allowed or refused, is a decision in it"


def test_lineage_is_only_for_chunks_the_agent_may_read(world: dict[str, Any]) -> None:
    with client(world, "hr_case_assistant") as c:
        case = next(
            ch
            for ch in c.context(QUESTION, purpose="hr_casework", model="local_smollm2").chunks
            if ch.dataset == "hr_case_notes"
        )
    with client(world, "support_assistant") as c:
        for chunk_id in (case.chunk_id, "gld_" + "0" * 32):
            with pytest.raises(AquiferError) as err:
                c.lineage(chunk_id)
            assert err.value.status == 404 and err.value.detail.startswith("no chunk")
        with pytest.raises(AquiferError) as malformed:
            c.lineage("gld_doesnotexist")
        assert malformed.value.status == 422 and malformed.value.field == "path.chunk_id"
        with pytest.raises(AquiferError) as refused:
            c.lineage(case.chunk_id, purpose="hr_casework")
        assert refused.value.status == 403 and refused.value.reasons == ["purpose_not_allowed"]
    logged = [r for r in read_records(world["data"] / "decisions") if r["kind"] == "lineage"]
    withheld = [r for r in logged if r["ref"] == case.chunk_id and r["agent"] == "support_assistant"]
    assert withheld and not withheld[0]["resources"][0]["allow"], "a refused lineage is a logged decision"


def test_async_client_metrics_and_docs(world: dict[str, Any]) -> None:
    import asyncio

    async def ask() -> list[int]:
        async with AsyncAquiferClient(world["server"].url, token=DEV_TOKENS["marketing_assistant"]) as c:
            answers = await asyncio.gather(
                *(
                    c.context(q, purpose="marketing", model="external_gpt")
                    for q in ("pricing", "release notes", "single sign-on")
                )
            )
        return [len(a.chunks) for a in answers]

    assert all(n > 0 for n in asyncio.run(ask()))
    metrics = httpx.get(f"{world['server'].url}/metrics").text
    for stage in ("auth", "policy", "embedding", "search", "assembly", "log"):
        assert f'aquifer_stage_seconds_count{{stage="{stage}"}}' in metrics
    assert 'aquifer_requests_total{route="context",status="200"}' in metrics
    assert 'aquifer_requests_total{route="context",status="401"}' in metrics
    docs = httpx.get(f"{world['server'].url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{world['server'].url}/openapi.json").json()
    assert "/v1/context" in spec["paths"] and "HTTPBearer" in json.dumps(spec["components"])


def test_leak_500_random_requests_against_an_independent_oracle(world: dict[str, Any]) -> None:
    catalog = world["catalog"]
    data = catalog.policy_data()
    platinum = _platinum(world)
    rows = {r["chunk_id"]: r for r in platinum.iter_rows(named=True)}
    rng = random.Random(11)
    purposes = sorted({p for d in data["datasets"].values() for p in d["purposes"]} | {"espionage"})
    models = [*sorted(data["models"]), "shadow_llm"]
    words = [
        "refund",
        "salary",
        "password",
        "incident",
        "quarterly revenue",
        "complaint",
        "phone",
        "invoice",
        "pricing",
        "runbook",
        "handbook",
        "leave policy",
        "SSO",
        "forecast",
        "card number",
    ]
    served = violations = refused = 0
    with httpx.Client(base_url=world["server"].url, timeout=30) as http:
        for i in range(500):
            agent = rng.choice(sorted(DEV_TOKENS))
            purpose = rng.choice(purposes) if rng.random() < 0.4 else rng.choice(data["agents"][agent]["purposes"])
            model = rng.choice(models) if rng.random() < 0.4 else rng.choice(data["agents"][agent]["models"])
            body = {
                "query": " ".join(rng.sample(words, 2)),
                "purpose": purpose,
                "model": model,
                "top_k": rng.randint(1, 12),
            }
            headers = {"Authorization": f"Bearer {DEV_TOKENS[agent]}"}
            who = ACTING_FOR.get(agent) if rng.random() < 0.9 else None  # now and then without the user's token
            if who:
                headers["X-Aquifer-User-Token"] = world["idp"].make_token(who)
            user = demo_user(who).as_input() if who else None
            response = http.post("/v1/context", json=body, headers=headers)
            expected_refusal = policy_oracle.request_reasons(data, agent, purpose, model, user=user)
            if expected_refusal:
                status = 401 if "user_token_required" in expected_refusal else 403
                assert response.status_code == status, (i, body, response.text)
                assert set(response.json()["reasons"]) == expected_refusal
                refused += 1
                continue
            assert response.status_code == 200, (i, body, response.text)
            for ch in response.json()["chunks"]:
                served += 1
                row = rows[ch["chunk_id"]]
                resource = {
                    "dataset": row["dataset"],
                    "layer": "platinum",
                    "classification": row["classification"],
                    "pii_types": list(row["pii_types"]),
                    "untrusted": False,
                    "acl": {"listed": False} if row["acl"] is None else {"listed": True, "principals": row["acl"]},
                }
                verdict = policy_oracle.decide(data, agent, purpose, model, resource, user=user)
                leaked = [
                    row["text"][s["start"] : s["end"]] for s in row["pii_spans"] if s["type"] in verdict["redact"]
                ]
                if not verdict["allow"] or any(value in ch["text"] for value in leaked):
                    violations += 1
    assert violations == 0
    assert served > 500 and refused > 50, (served, refused)


def test_as_of_replays_an_answer_after_a_pipeline_run_changed_the_data(world: dict[str, Any]) -> None:
    with client(world, "support_assistant") as c:
        before = c.context("invoice rejected", purpose="customer_support", model="local_smollm2", top_k=8)
        sample.generate_increment(world["data"] / "landing", fraction=0.5, seed=21, label="inc-asof")
        assert materialize(instance=world["instance"]).success
        # the server re-opens its index handle at most every 0.25 s (and its prefilter warmer reads it too)
        deadline = time.monotonic() + 10
        while httpx.get(f"{world['server'].url}/readyz").json()["index_version"] == before.index_version:
            assert time.monotonic() < deadline, "the server never saw the new index version"
            time.sleep(0.1)
        after = c.context("invoice rejected", purpose="customer_support", model="local_smollm2", top_k=8)
        assert after.index_version > before.index_version
        assert [ch.chunk_id for ch in after.chunks] != [ch.chunk_id for ch in before.chunks]
        replay = c.context(
            "invoice rejected", purpose="customer_support", model="local_smollm2", top_k=8, as_of=before.index_version
        )
    assert replay.index_version == before.index_version
    assert [(ch.chunk_id, ch.text) for ch in replay.chunks] == [(ch.chunk_id, ch.text) for ch in before.chunks]


def test_the_example_agent_prints_context_with_citations_or_the_refusal(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from agents import show_context

    url = world["server"].url
    assert show_context.main(["How do refunds work?", "--url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("support_assistant (customer_support, local_smollm2, local)")
    assert "[1] " in out and "source " in out
    refused = show_context.main(
        ["pricing", "--agent", "marketing_assistant", "--purpose", "customer_support", "--url", url]
    )
    assert refused == 1
    err = capsys.readouterr().err
    assert "refused (403 forbidden)" in err and "purpose_not_allowed" in err
    # two users of one agent, the same question: each sees the case notes of their own HR region
    question = "employee complaint case notes"
    both = ["--agent", "hr_case_assistant", "--as", "amira.haddad", "--as", "ben.okafor", "--top-k", "6"]
    assert show_context.main([question, *both, "--url", url]) == 0
    out = capsys.readouterr().out
    amira, ben = out.split("hr_case_assistant for tidewater_dev_idp:ben.okafor")
    assert "hr_case_assistant for tidewater_dev_idp:amira.haddad" in amira
    assert "admitted by group:hr-partners-north" in amira and "group:hr-partners-south" not in amira
    assert "admitted by group:hr-partners-south" in ben and "group:hr-partners-north" not in ben


def test_hostile_values_in_every_field_of_every_route_are_4xx_never_5xx(world: dict[str, Any]) -> None:
    """The nastiest strings (quotes, control characters, JSON and SQL fragments, 5,000 characters, unicode) in every
    field, parameter and header of every route, plus malformed bodies: each answer is a documented 4xx naming the
    field where there is one - never a 5xx, never a stack trace, never the input echoed in an error."""
    from tests.policy_inputs import NASTY

    url = world["server"].url
    spec = httpx.get(f"{url}/openapi.json").json()
    auth = {"Authorization": f"Bearer {DEV_TOKENS['support_assistant']}"}
    auditor = {"Authorization": f"Bearer {DEV_TOKENS['audit_reviewer']}"}
    context = {"query": "refunds", "purpose": "customer_support", "model": "local_smollm2"}
    chat = {
        "model": "local_smollm2",
        "messages": [{"role": "user", "content": "refunds?"}],
        "metadata": {"purpose": "customer_support"},
    }
    deep = "[" * 5000 + '"x"' + "]" * 5000  # JSON 5,000 levels deep (json.dumps cannot even write it)
    seen: list[tuple[str, str, int]] = []

    def check(route: str, method: str, response: httpx.Response, nasty: Any = None) -> None:
        seen.append((route, method, response.status_code))
        assert 400 <= response.status_code < 500, (route, nasty, response.status_code, response.text[:300])
        assert "Traceback" not in response.text
        if isinstance(nasty, str) and len(nasty) > 3 and nasty not in ("x" * 5000,):
            assert nasty not in response.text, f"{route} echoed the input in its error"

    with httpx.Client(base_url=url, timeout=30) as http:
        for nasty in [*NASTY, -7, 10**30, 1.5, None, ["a"], {"a": 1}]:
            for field in ("query", "purpose", "model", "top_k", "max_tokens", "as_of"):
                body = {**context, field: nasty}
                if field == "query" and isinstance(nasty, str) and 0 < len(nasty) <= 4000 and nasty.strip():
                    continue  # any text is a fine question
                if nasty is None and field in ("max_tokens", "as_of"):
                    continue  # optional
                check("/v1/context", "post", http.post("/v1/context", json=body, headers=auth), nasty)
            for path in ("model", "metadata.purpose", "messages"):
                body = json.loads(json.dumps(chat))
                if path == "metadata.purpose":
                    body["metadata"]["purpose"] = nasty
                elif path == "messages":
                    body["messages"] = [{"role": nasty, "content": "hi"}]
                else:
                    body[path] = nasty
                check("/v1/chat/completions", "post", http.post("/v1/chat/completions", json=body, headers=auth), nasty)
            if isinstance(nasty, str) and nasty:
                quoted = urllib.parse.quote(nasty[:200], safe="")
                check("/v1/lineage/{chunk_id}", "get", http.get(f"/v1/lineage/{quoted}", headers=auth), nasty)
                for param in ("purpose", "model"):
                    got = http.get(f"/v1/lineage/gld_{'0' * 32}", params={param: nasty}, headers=auth)
                    check("/v1/lineage/{chunk_id}", "get", got, nasty)
                got = http.get(f"/v1/decisions/{quoted}", headers=auditor)
                check("/v1/decisions/{decision_id}", "get", got, nasty)
                for header, value in (
                    ("Authorization", f"Bearer {nasty}"),
                    ("Authorization", nasty),
                    ("X-Aquifer-Purpose", nasty),
                ):
                    headers = {**auth, header: value}
                    try:
                        got = http.post("/v1/chat/completions", json=chat, headers=headers)
                    except (httpx.LocalProtocolError, UnicodeEncodeError):
                        continue  # not a header any client can send
                    check("/v1/chat/completions", "post", got, nasty)
                    try:
                        got = http.post("/v1/context", json=context, headers=headers)
                    except (httpx.LocalProtocolError, UnicodeEncodeError):
                        continue
                    if header != "X-Aquifer-Purpose":
                        check("/v1/context", "post", got, nasty)
        nested = [json.dumps({**context, field: "DEEP"}).replace('"DEEP"', deep).encode() for field in context]
        for raw in (
            b"{",
            b"[]",
            b'{"query": "x"' + b"]" * 10,
            b"\xff\xfe",
            b"null",
            b"x" * 2_000_000,
            deep.encode(),
            *nested,
        ):
            for route in ("/v1/context", "/v1/chat/completions"):
                got = http.post(route, content=raw, headers={**auth, "Content-Type": "application/json"})
                check(route, "post", got)
    for route, method, status in set(seen):
        documented = spec["paths"][route][method]["responses"]
        assert str(status) in documented, f"{method.upper()} {route} answered {status}, not in its OpenAPI responses"
    assert {s for _, _, s in seen} >= {400, 401, 404, 422}, "each refused where it entered, before any policy call"


@pytest.mark.skipif(
    chromium() is None, reason="no headless Chromium (Debian package chromium; `make test` installs it)"
)
def test_api_docs_render_offline_in_a_browser(world: dict[str, Any]) -> None:
    """/docs and /redoc with every host but loopback unresolvable: the pages render the operations from assets the
    service serves itself (FastAPI's defaults load them from a CDN and render blank here)."""
    url = world["server"].url
    shot = world["root"] / "docs.png"
    dom = render(f"{url}/docs", screenshot=shot)
    assert "swagger-ui" in dom and 'class="opblock' in dom, dom[:500]
    for path in ("/v1/context", "/v1/chat/completions", "/v1/models", "/v1/lineage/{chunk_id}", "/v1/decisions"):
        assert path in dom, f"{path} not rendered"
    assert shot.stat().st_size > 20_000, "a blank page is a few KB"
    redoc = render(f"{url}/redoc")
    assert "Governed context for a query" in redoc, redoc[:500]
    html = httpx.get(f"{url}/docs").text
    assert "cdn." not in html and "https://" not in html.split("<body>")[0]


def test_1000_generated_requests_never_get_a_5xx_from_a_healthy_engine(world: dict[str, Any]) -> None:
    """Purposes and models drawn like the parity test's (registered, unknown, hostile strings, wrong types), from
    every demo agent: each answer is 200, 403 or 422, never a 5xx (the red team once saw 224 of 10,000 answer 503)."""
    from tests.policy_inputs import Inputs

    url = world["server"].url
    inputs = Inputs(world["catalog"].policy_data(), seed=1000)
    agents = sorted(DEV_TOKENS)
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(1000):
            ctx = inputs.context()
            body = {"query": "refunds and billing", "top_k": 3, **{k: ctx[k] for k in ("purpose", "model") if k in ctx}}
            name = agents[i % len(agents)]
            headers = {"Authorization": f"Bearer {DEV_TOKENS[name]}"}
            if name in ACTING_FOR:  # agents that act only for users, for their demo user
                headers["X-Aquifer-User-Token"] = world["idp"].make_token(ACTING_FOR[name])
            got = http.post("/v1/context", json=body, headers=headers)
            statuses[got.status_code] = statuses.get(got.status_code, 0) + 1
            assert got.status_code in (200, 403, 422), (body, got.status_code, got.text[:300])
    assert statuses.get(200, 0) > 10 and statuses.get(403, 0) > 100 and statuses.get(422, 0) > 100, statuses
