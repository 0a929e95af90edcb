"""The governed gateway end to end: a real uvicorn server (``aquifer serve``) over the materialized sample, the real
llama.cpp server with SmolLM2 as the local model, the official ``openai`` client as the agent. Where a model
cannot exist here (an external provider, a failing or slow one), :class:`tests.servers.RecordingModel` stands in
and records every request it receives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import polars as pl
import pytest
import yaml

from aquifer.audit.log import read_records
from aquifer.catalog import load_catalog
from aquifer.lake import Lake
from aquifer.settings import PROJECT_ROOT
from tests.conftest import copy_materialized, use_issuer
from tests.demo_users import ACTING_FOR
from tests.servers import AquiferServer, RecordingModel, free_port, llama_server
from tests.test_credentials import DEV_TOKENS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

EXTERNAL_KEY = "provider-key-for-the-external-model"
CONFIDENTIAL_QUESTIONS = [
    "What happened in the HR case about the overtime dispute, and who was involved?",
    "What was the operating margin in the latest quarterly finance report?",
    "Which customer phone number and email were on the billing dispute ticket?",
    "How do we rotate credentials in the security incident runbook?",
    "Summarise the engineering wiki incident review of the SSO login loop.",
]


def _model(path: Path, model_id: str, endpoint: str, locality: str, ceiling: str, **extra: Any) -> None:
    entry = {
        "id": model_id,
        "description": f"test model {model_id}",
        "endpoint": endpoint,
        "owner": {"team": "Test", "contact": "test@tidewater.example"},
        "served_name": f"served-{model_id}",
        "locality": locality,
        "max_classification": ceiling,
        **extra,
    }
    (path / "models" / f"{model_id}.yaml").write_text(yaml.safe_dump(entry))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path, dev_idp: Any) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("gateway")
    data = copy_materialized(materialized_sample, root)
    catalog = root / "catalog"
    use_issuer(catalog, dev_idp.issuer)
    llama_url, llama = llama_server(root / "llama.log")
    external, slow, failing = RecordingModel(), RecordingModel(), RecordingModel()
    slow.delay_s, failing.status = 3.0, 500
    local = yaml.safe_load((catalog / "models" / "local_smollm2.yaml").read_text())
    (catalog / "models" / "local_smollm2.yaml").write_text(yaml.safe_dump({**local, "endpoint": llama_url}))
    _model(catalog, "external_gpt", external.url, "external", "public", api_key_env="TEST_EXTERNAL_KEY")
    _model(catalog, "slow_local", slow.url, "local", "restricted", timeout_s=1)
    _model(catalog, "failing_local", failing.url, "local", "restricted")
    _model(catalog, "down_local", f"http://127.0.0.1:{free_port()}/v1", "local", "restricted")
    support = yaml.safe_load((catalog / "agents" / "support_assistant.yaml").read_text())
    support["models"] += ["slow_local", "failing_local", "down_local"]
    (catalog / "agents" / "support_assistant.yaml").write_text(yaml.safe_dump(support))
    env = {
        **os.environ,
        "AQUIFER_DATA_DIR": str(data),
        "AQUIFER_POLICY_DIR": str(root / "policies"),
        "AQUIFER_CATALOG_DIR": str(catalog),
        "AQUIFER_CREDENTIALS_FILE": str(catalog / "credentials.yaml"),
        "TEST_EXTERNAL_KEY": EXTERNAL_KEY,
        "HF_HUB_OFFLINE": "1",
    }
    api = AquiferServer(env, root / "api.log", ready="/readyz")
    yield {
        "url": f"{api.url}/v1",
        "data": data,
        "env": env,
        "external": external,
        "slow": slow,
        "failing": failing,
        "lake": Lake(str(data / "lake")),
        "catalog": load_catalog(catalog),
        "idp": dev_idp,
    }
    api.stop()
    llama.stop()
    for server in (external, slow, failing):
        server.close()


def agent(gw: dict[str, Any], name: str) -> openai.OpenAI:
    """The official client as agent ``name``; one that acts for users sends its demo user's token too."""
    user = ACTING_FOR.get(name)
    headers = {"X-Aquifer-User-Token": gw["idp"].make_token(user)} if user else None
    return openai.OpenAI(
        base_url=gw["url"], api_key=DEV_TOKENS[name], default_headers=headers, max_retries=0, timeout=120
    )


def records(gw: dict[str, Any]) -> list[dict[str, Any]]:
    return list(read_records(gw["data"] / "decisions"))


def record(gw: dict[str, Any], decision_id: str) -> dict[str, Any]:
    return next(r for r in records(gw) if r["decision_id"] == decision_id)


def outcome(gw: dict[str, Any], decision_id: str) -> dict[str, Any]:
    return next(r for r in records(gw) if r["kind"] == "upstream" and r.get("ref") == decision_id)


def test_governed_answer_on_the_local_model_with_citations(gw: dict[str, Any]) -> None:
    completion = agent(gw, "support_assistant").chat.completions.create(
        model="local_smollm2",
        messages=[{"role": "user", "content": "How do refunds work?"}],
        metadata={"purpose": "customer_support"},
        max_tokens=24,
        temperature=0,
    )
    assert completion.choices[0].message.content, "SmolLM2 answered"
    assert completion.model == "local_smollm2" and completion.usage and completion.usage.prompt_tokens > 200
    ext = completion.model_extra["aquifer"]
    assert ext["locality"] == "local" and ext["purpose"] == "customer_support"
    citations = ext["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1)) and citations
    assert {c["dataset"] for c in citations} <= {"product_docs", "support_tickets", "engineering_wiki"}
    chat = record(gw, ext["decision_id"])
    served = [r["id"] for r in chat["resources"] if r["served"]]
    assert sorted(served) == sorted(c["receipt"]["platinum"]["id"] for c in citations)
    assert chat["kind"] == "chat" and chat["upstream"]["endpoint"].startswith("http://127.0.0.1:")
    done = outcome(gw, ext["decision_id"])
    assert done["upstream"]["outcome"] == "ok" and done["upstream"]["prompt_tokens"] == completion.usage.prompt_tokens
    for c in citations:  # every receipt points at the real platinum row of the chunk it cites
        row = gw["lake"].read("platinum", c["dataset"]).filter(pl.col("platinum_id") == c["receipt"]["platinum"]["id"])
        assert (
            row.height == 1
            and row["chunk_id"][0] == c["chunk_id"]
            and row["run_id"][0] == c["receipt"]["dagster_run_id"]
        )


def test_streaming_through_the_openai_client(gw: dict[str, Any]) -> None:
    stream = agent(gw, "hr_case_assistant").chat.completions.create(
        model="local_smollm2",
        messages=[{"role": "user", "content": "What happened in the overtime dispute case?"}],
        extra_headers={"X-Aquifer-Purpose": "hr_casework"},
        max_tokens=24,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    ext = chunks[0].model_extra["aquifer"]
    assert all("aquifer" not in (c.model_extra or {}) for c in chunks[1:]), "the extension comes once, first"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert ext["citations"] and {c["dataset"] for c in ext["citations"]} <= {"hr_case_notes", "hr_handbook"}
    assert outcome(gw, ext["decision_id"])["upstream"]["outcome"] == "ok"


def _lines(texts: list[str]) -> set[str]:
    return {line.strip() for text in texts for line in text.splitlines() if len(line.strip()) >= 25}


def test_nothing_above_public_reaches_the_external_model(gw: dict[str, Any]) -> None:
    external: RecordingModel = gw["external"]
    external.requests.clear()
    marketing = agent(gw, "marketing_assistant")
    decisions = []
    for question in CONFIDENTIAL_QUESTIONS:
        for stream in (False, True):
            answer = marketing.chat.completions.create(
                model="external_gpt",
                messages=[{"role": "user", "content": question}],
                metadata={"purpose": "marketing"},
                stream=stream,
            )
            first = next(iter(answer)) if stream else answer
            decisions.append(first.model_extra["aquifer"])
    # agents that may read confidential data may not send it to the external model at all
    for name, purpose in (("hr_case_assistant", "hr_casework"), ("support_assistant", "customer_support")):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            agent(gw, name).chat.completions.create(
                model="external_gpt",
                messages=[{"role": "user", "content": CONFIDENTIAL_QUESTIONS[0]}],
                metadata={"purpose": purpose},
            )
        assert refused.value.body["reasons"] == ["model_not_allowed"]
    assert len(external.requests) == 2 * len(CONFIDENTIAL_QUESTIONS), "only the marketing agent's calls left"

    platinum = pl.concat([gw["lake"].read("platinum", s) for s in gw["catalog"].sources], how="vertical_relaxed")
    secret = _lines(platinum.filter(pl.col("classification") != "public")["text"].to_list())
    secret -= _lines(platinum.filter(pl.col("classification") == "public")["text"].to_list())
    assert len(secret) > 1000, "the corpus has confidential text to leak"
    sent = external.prompts()
    assert "Context:" in sent and any(d["citations"] for d in decisions), "public context was sent"
    leaked = [line for line in secret if line in sent]
    assert leaked == [], f"{len(leaked)} non-public lines reached the external model, e.g. {leaked[:2]}"
    assert {r["headers"]["Authorization"] for r in external.requests} == {f"Bearer {EXTERNAL_KEY}"}, (
        "the provider's key, never the agent's token"
    )

    for d in decisions:  # the decision log says why
        logged = record(gw, d["decision_id"])
        assert logged["locality"] == "external" and logged["model"] == "external_gpt"
        assert {r["classification"] for r in logged["resources"] if r["served"]} <= {"public"}
        withheld = {w["dataset"]: w["reasons"] for w in d["withheld"]}
        for dataset in ("hr_case_notes", "finance_reports", "support_tickets", "security_runbooks"):
            assert {"model_locality", "above_model_ceiling"} <= set(withheld[dataset])
        assert (
            "hr_case_notes:above_model_ceiling,clearance_below_classification,model_locality,"
            "purpose_not_allowed_for_dataset" in logged["withheld"]
        )


def test_the_same_chunks_render_to_the_same_bytes(gw: dict[str, Any]) -> None:
    external: RecordingModel = gw["external"]
    external.requests.clear()
    marketing = agent(gw, "marketing_assistant")
    sent = []
    for question in ("How do refunds work?", "how do refunds work"):
        answer = marketing.chat.completions.create(
            model="external_gpt", metadata={"purpose": "marketing"}, messages=[{"role": "user", "content": question}]
        )
        sent.append((answer.model_extra["aquifer"]["citations"], external.requests[-1]["body"]["messages"][0]))
    (first_cited, first_system), (second_cited, second_system) = sent
    assert [c["chunk_id"] for c in first_cited] == [c["chunk_id"] for c in second_cited]
    assert first_system == second_system and first_system["role"] == "system"
    assert first_system["content"].count("[1] ") == 1


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_map_to_502_and_504_and_are_logged(gw: dict[str, Any], stream: bool) -> None:
    support = agent(gw, "support_assistant")
    ask = {
        "messages": [{"role": "user", "content": "How do refunds work?"}],
        "metadata": {"purpose": "customer_support"},
        "stream": stream,
    }

    def expect(error: type[Exception], model: str, status: int, outcome_: str) -> None:
        with pytest.raises(error) as failed:
            support.chat.completions.create(model=model, **ask)
        assert failed.value.status_code == status  # type: ignore[attr-defined]
        decision_id = failed.value.response.headers.get("X-Aquifer-Decision-Id")  # type: ignore[attr-defined]
        last = [r for r in records(gw) if r["kind"] == "upstream" and r["model"] == model][-1]
        assert last["upstream"]["outcome"] == outcome_ and last["request_reasons"] == [outcome_]
        assert decision_id is None or last["ref"] == decision_id

    expect(openai.InternalServerError, "down_local", 502, "upstream_unreachable")
    expect(openai.InternalServerError, "failing_local", 502, "upstream_error")
    if not stream:
        expect(openai.APIStatusError, "slow_local", 504, "upstream_timeout")


def test_a_stream_that_stalls_ends_in_an_error_event(gw: dict[str, Any]) -> None:
    slow: RecordingModel = gw["slow"]
    slow.stall_after_first = True
    try:
        stream = agent(gw, "support_assistant").chat.completions.create(
            model="slow_local",
            messages=[{"role": "user", "content": "How do refunds work?"}],
            metadata={"purpose": "customer_support"},
            stream=True,
        )
        with pytest.raises(openai.APIError, match="did not answer within 1 s"):
            list(stream)
    finally:
        slow.stall_after_first = False
    last = [r for r in records(gw) if r["kind"] == "upstream" and r["model"] == "slow_local"][-1]
    assert last["upstream"]["outcome"] == "upstream_timeout"


def test_refusals_before_anything_is_sent(gw: dict[str, Any]) -> None:
    support = agent(gw, "support_assistant")
    question = [{"role": "user", "content": "How do refunds work?"}]
    upstreams = [gw[name] for name in ("external", "slow", "failing")]
    sent_before = [len(u.requests) for u in upstreams]
    with pytest.raises(openai.BadRequestError) as no_purpose:
        support.chat.completions.create(model="local_smollm2", messages=question)  # type: ignore[call-overload]
    assert no_purpose.value.body["code"] == "purpose_missing" and no_purpose.value.body["param"] == "metadata.purpose"
    assert "X-Aquifer-Purpose" in no_purpose.value.body["message"]
    with pytest.raises(openai.PermissionDeniedError) as unknown:
        support.chat.completions.create(
            model="unregistered_model", messages=question, metadata={"purpose": "customer_support"}
        )
    assert "unknown_model" in unknown.value.body["reasons"]
    assert "not registered" in unknown.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        stranger = openai.OpenAI(base_url=gw["url"], api_key="aq_nobody_not-a-real-token-at-all", max_retries=0)
        stranger.chat.completions.create(
            model="local_smollm2", messages=question, metadata={"purpose": "customer_support"}
        )
    with pytest.raises(openai.BadRequestError) as malformed:
        support.chat.completions.create(
            model="local_smollm2",
            messages=[{"role": "robot", "content": "hi"}],  # type: ignore[list-item]
            metadata={"purpose": "customer_support"},
        )
    assert malformed.value.body["param"].startswith("messages.0")
    logged = records(gw)
    assert any(r["kind"] == "chat" and r["request_reasons"] == ["purpose_missing"] for r in logged)
    assert any(r["kind"] == "chat" and "unknown_model" in r["request_reasons"] for r in logged)
    assert [len(u.requests) for u in upstreams] == sent_before, "nothing was sent anywhere"


def test_models_lists_what_the_agent_may_use(gw: dict[str, Any]) -> None:
    models = {m.id: m.model_extra for m in agent(gw, "marketing_assistant").models.list()}
    assert models == {"external_gpt": {"locality": "external", "max_classification": "public"}}
    listed = [r for r in records(gw) if r["kind"] == "list_models" and r["agent"] == "marketing_assistant"][-1]
    assert "model:local_smollm2:model_not_allowed" in listed["withheld"], "the policy decided, and it is logged"
    support = [m.id for m in agent(gw, "support_assistant").models.list()]
    assert support[:2] == ["local_smollm2", "sovereign_eu"], "the agent's default model first"


@pytest.mark.parametrize(
    ("command", "expects"),
    [
        (
            [
                "-m",
                "aquifer",
                "ask",
                "--agent",
                "hr_case_assistant",
                "--as",
                "amira.haddad",
                "--max-tokens",
                "16",
                "--no-stream",
                "What happened in the overtime dispute case?",
            ],
            ["hr_case_assistant", "for user tidewater_dev_idp:amira.haddad", "Sources", "[1] hr_"],
        ),
        (
            ["-m", "agents.marketing_assistant", "--max-tokens", "16", "How do refunds work?"],
            ["external_gpt (external)", "[1] product_docs", "Withheld by policy", "hr_case_notes"],
        ),
    ],
)
def test_agents_answer_from_the_command_line(gw: dict[str, Any], command: list[str], expects: list[str]) -> None:
    url = ["--url", gw["url"]]
    argv = [sys.executable, *command[:-1], *url, command[-1]]
    done = subprocess.run(
        argv, env={**gw["env"], "COLUMNS": "200"}, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT
    )
    assert done.returncode == 0, done.stderr
    for expected in expects:
        assert expected in done.stdout, done.stdout


def test_ask_without_a_server_says_what_to_do(gw: dict[str, Any]) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aquifer",
            "ask",
            "--agent",
            "support_assistant",
            "--url",
            f"http://127.0.0.1:{free_port()}/v1",
            "hello",
        ],
        env=gw["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "is `make up`" in done.stderr, done.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "aquifer", "ask", "--agent", "nobody", "hello"],
        env=gw["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 1 and "agent nobody is not registered" in unknown.stderr


def test_ask_as_json(gw: dict[str, Any]) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aquifer",
            "ask",
            "--agent",
            "marketing_assistant",
            "--max-tokens",
            "8",
            "--json",
            "--url",
            gw["url"],
            "How do refunds work?",
        ],
        env=gw["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["agent"] == "marketing_assistant" and answer["model"] == "external_gpt" and answer["text"]
    assert answer["aquifer"]["citations"] and answer["aquifer"]["locality"] == "external"


def test_upstream_outcomes_are_metrics(gw: dict[str, Any]) -> None:
    import httpx

    text = httpx.get(gw["url"].removesuffix("/v1") + "/metrics").text
    assert 'aquifer_upstream_seconds_count{model="local_smollm2",outcome="ok"}' in text
    assert 'aquifer_upstream_seconds_count{model="down_local",outcome="upstream_unreachable"}' in text


def test_the_log_is_compactable_with_the_gateway_records(gw: dict[str, Any]) -> None:
    from aquifer.audit.records import to_frame

    frame = to_frame(records(gw))
    upstream = frame.filter(pl.col("kind") == "upstream")
    assert upstream.height and set(upstream["upstream"].struct.field("outcome").to_list()) >= {"ok"}
    assert json.dumps(frame.row(0, named=True), default=str)
