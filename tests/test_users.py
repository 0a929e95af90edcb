"""Users behind agents, end to end: the real service (uvicorn) over the materialized sample, the development IdP over
real HTTP (discovery, JWKS, token endpoint), user tokens in X-Aquifer-User-Token, document ACLs from the corpus,
the decision log naming the user. The leak test checks every served chunk against an oracle built from the corpus
manifest (the ACLs the generator wrote), the catalog and the users file - not from the index."""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import yaml

from aquifer.catalog import load_catalog
from aquifer.identity.devidp import USERS_FILE, DevIdP
from aquifer.identity.user import User
from aquifer.lake import Lake
from aquifer.medallion.layers import Layer
from aquifer.settings import get_settings
from tests import policy_oracle
from tests.conftest import copy_materialized
from tests.servers import AquiferServer, free_port, post_context, service_env
from tests.test_credentials import DEV_TOKENS
from tests.test_identity import REFUSALS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ISSUER_ID = "tidewater_dev_idp"
HR_QUESTION = "employee case notes about a complaint, relocation or leave"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("users")
    data = copy_materialized(materialized_sample, root)
    users = root / "users.json"
    shutil.copy(USERS_FILE, users)
    port = free_port()
    idp = DevIdP(issuer=f"http://127.0.0.1:{port}", data_dir=root / "idp", users_file=users, ttl_s=600)
    thread = idp.start()
    identity_file = root / "catalog" / "identity.yaml"
    identity = yaml.safe_load(identity_file.read_text())
    identity["issuers"][0].update(issuer=idp.issuer, jwks_ttl_s=3)
    identity_file.write_text(yaml.safe_dump(identity, sort_keys=False))
    env = service_env(root, data)
    server = AquiferServer(env, root / "server.log", ready="/readyz")
    catalog = load_catalog(root / "catalog")
    platinum = pl.concat(
        [
            Lake(str(data / "lake")).read(Layer.PLATINUM, s.id, columns=["platinum_id", "doc_id", "dataset"])
            for s in catalog.sources.values()
        ]
    )
    manifest = json.loads((data / "sample_manifest.json").read_text())
    state = {
        "root": root,
        "data": data,
        "env": env,
        "idp": idp,
        "idp_thread": thread,
        "users_file": users,
        "server": server,
        "catalog": catalog,
        "doc_of": dict(
            zip(platinum["platinum_id"], zip(platinum["dataset"], platinum["doc_id"], strict=True), strict=True)
        ),
        "manifest": manifest,
    }
    yield state
    server.stop()
    state["idp_thread"].stop()  # the IdP test restarts it
    get_settings.cache_clear()


def _context(world: dict[str, Any], agent: str, query: str, **options: Any) -> httpx.Response:
    return post_context(world["server"].url, DEV_TOKENS[agent], query, **options)


def _token(world: dict[str, Any], name: str) -> str:
    form = {"grant_type": "password", "username": name, "password": "demo", "client_id": "aquifer"}
    answer = httpx.post(f"{world['idp'].issuer}/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _document_acls(world: dict[str, Any]) -> dict[tuple[str, str], list[str] | None]:
    """(dataset, doc id) -> the ACL principals the generator wrote (None: no ACL), from the corpus manifest."""
    out: dict[tuple[str, str], list[str] | None] = {}
    for doc in world["manifest"]["documents"]:
        out[(doc["source_id"], doc["id"])] = doc["acl"]
    return out


def _user_of(name: str) -> User:
    entry = json.loads(USERS_FILE.read_text())["users"][name]
    return User(ISSUER_ID, name, tuple(entry["groups"]))


# -- two users, one agent -------------------------------------------------------------------------------------------


def test_two_users_of_one_agent_receive_different_context(world: dict[str, Any]) -> None:
    acls = _document_acls(world)
    served: dict[str, set[str]] = {}
    for name in ("amira.haddad", "ben.okafor", "hana.kim"):
        answer = _context(
            world, "hr_case_assistant", HR_QUESTION, purpose="hr_casework", user_token=_token(world, name)
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["user"] == f"{ISSUER_ID}:{name}"
        cases = [c for c in body["chunks"] if c["dataset"] == "hr_case_notes"]
        assert cases, f"{name} is an HR partner: some case notes must match"
        held = set(_user_of(name).principals)
        for chunk in cases:
            acl = acls[world["doc_of"][chunk["receipt"]["platinum"]["id"]]]
            assert acl is not None and held & set(acl), (name, chunk["chunk_id"], acl)
            assert chunk["receipt"]["user"] == f"{ISSUER_ID}:{name}"
            assert chunk["receipt"]["admitted_by"] == sorted(held & set(acl))
        served[name] = {c["chunk_id"] for c in cases}
    north, south = served["amira.haddad"], served["ben.okafor"]
    assert north != south, "the same question, two HR regions: different case notes"
    assert len(north & south) <= 1, "only a case a partner of the other region is named on may be in both"


def test_the_agent_acting_for_a_user_needs_the_users_token(world: dict[str, Any]) -> None:
    alone = _context(world, "hr_case_assistant", HR_QUESTION, purpose="hr_casework")
    assert alone.status_code == 401, alone.text
    assert alone.json()["reasons"] == ["user_token_required"] and "chunks" not in alone.json()
    token = _token(world, "gus.lindqvist")
    refused = _context(
        world, "marketing_assistant", "product launch", purpose="marketing", model="external_gpt", user_token=token
    )
    assert refused.status_code == 403 and refused.json()["reasons"] == ["agent_acts_for_itself"]
    for user_token in (None, token):  # acts_for: either
        ok = _context(
            world,
            "support_assistant",
            "refund for a duplicate charge",
            purpose="customer_support",
            user_token=user_token,
        )
        assert ok.status_code == 200, ok.text


def test_the_user_bounds_the_agent(world: dict[str, Any]) -> None:
    """finance_analyst is cleared for restricted; a user outside the finance group gets no finance report, a
    finance user does, through the same agent."""
    question = "quarterly revenue and margin commentary"
    outsider = _context(
        world, "finance_analyst", question, purpose="financial_analysis", user_token=_token(world, "gus.lindqvist")
    )
    insider = _context(
        world, "finance_analyst", question, purpose="financial_analysis", user_token=_token(world, "erin.walsh")
    )
    assert outsider.status_code == insider.status_code == 200, (outsider.text, insider.text)
    assert not [c for c in outsider.json()["chunks"] if c["dataset"] == "finance_reports"]
    withheld = {w["dataset"]: w["reasons"] for w in outsider.json()["withheld"]}
    assert "not_in_dataset_access" in withheld["finance_reports"]
    assert "user_clearance_below_classification" in withheld["finance_reports"]
    reports = [c for c in insider.json()["chunks"] if c["dataset"] == "finance_reports"]
    assert reports and all(c["receipt"]["admitted_by"] == ["group:finance"] for c in reports)


# -- tokens ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_every_token_attack_is_refused_by_the_service(world: dict[str, Any], case: str) -> None:
    make, code, _ = REFUSALS[case]
    token = make(world["idp"], world["root"])
    answer = _context(world, "support_assistant", "refunds", purpose="customer_support", user_token=token)
    assert answer.status_code == 401, (case, answer.text)
    assert answer.json()["reasons"] == [code] and "chunks" not in answer.json()
    assert "X-Aquifer-User-Token" in answer.json()["detail"]
    assert not token or token not in answer.text


def test_no_token_ever_reaches_the_decision_log(world: dict[str, Any]) -> None:
    token = _token(world, "amira.haddad")
    assert _context(world, "hr_case_assistant", HR_QUESTION, purpose="hr_casework", user_token=token).status_code == 200
    signature = token.rsplit(".", 1)[-1]
    for segment in (world["data"] / "decisions").glob("segment-*.jsonl"):
        assert signature not in segment.read_text()


def test_a_key_rotated_mid_run_is_used_at_once(world: dict[str, Any]) -> None:
    idp: DevIdP = world["idp"]
    before = _token(world, "chloe.martin")
    fetched = idp.jwks_requests
    kid = idp.rotate("ES256")
    after = _token(world, "chloe.martin")
    assert json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "==")).get("kid") == kid
    # The new key is fetched by one refetch, at most one per 5 s cooldown (an earlier test sent unknown kids just
    # now): a rotation with no pre-published key waits out at most the cooldown.
    deadline = time.monotonic() + 8
    while (
        ok := _context(world, "support_assistant", "refunds", purpose="customer_support", user_token=after)
    ).status_code != 200:
        assert ok.json()["reasons"] == ["user_token_invalid"], ok.text
        assert time.monotonic() < deadline, ok.text
        time.sleep(0.5)
    old = _context(world, "support_assistant", "refunds", purpose="customer_support", user_token=before)
    assert old.status_code == 200, "the old key is still published (its grace period)"
    # one refetch for the new key, plus one per 3 s key TTL of this module (tests/test_identity.py counts exactly)
    assert idp.jwks_requests - fetched <= 5


def test_a_user_removed_from_a_group_loses_access_with_the_next_token(world: dict[str, Any]) -> None:
    users_file: Path = world["users_file"]
    original = users_file.read_text()
    try:
        doc = json.loads(original)
        doc["users"]["amira.haddad"]["groups"] = ["employees"]
        users_file.write_text(json.dumps(doc))
        answer = _context(
            world, "hr_case_assistant", HR_QUESTION, purpose="hr_casework", user_token=_token(world, "amira.haddad")
        )
        assert answer.status_code == 200, answer.text
        assert not [c for c in answer.json()["chunks"] if c["dataset"] == "hr_case_notes"]
    finally:
        users_file.write_text(original)
    back = _context(
        world, "hr_case_assistant", HR_QUESTION, purpose="hr_casework", user_token=_token(world, "amira.haddad")
    )
    assert [c for c in back.json()["chunks"] if c["dataset"] == "hr_case_notes"]


# -- the leak test --------------------------------------------------------------------------------------------------


def test_no_chunk_reaches_a_user_outside_its_acl_in_500_random_requests(world: dict[str, Any]) -> None:
    rng = random.Random(12)
    catalog = world["catalog"]
    data = catalog.policy_data()
    acls = _document_acls(world)
    names = sorted(json.loads(USERS_FILE.read_text())["users"])
    tokens = {name: _token(world, name) for name in names}
    agents = ["support_assistant", "hr_case_assistant", "finance_analyst", "marketing_assistant"]
    questions = [
        HR_QUESTION,
        "refund for a duplicate charge",
        "escalated ticket, customer threatens to churn",
        "quarterly revenue",
        "incident containment steps",
        "parental leave policy",
        "single sign-on setup",
        "performance improvement plan",
    ]
    outcomes: dict[int, int] = {}
    served = 0
    for _ in range(500):
        agent = rng.choice(agents)
        entry = catalog.agents[agent]
        name = rng.choice([*names, None])
        purpose = rng.choice([*entry.purposes, *entry.purposes, "customer_support"])
        model = rng.choice(entry.models)
        answer = _context(
            world,
            agent,
            rng.choice(questions),
            purpose=purpose,
            model=model,
            user_token=tokens[name] if name else None,
            top_k=6,
        )
        outcomes[answer.status_code] = outcomes.get(answer.status_code, 0) + 1
        assert answer.status_code in (200, 401, 403), answer.text
        if answer.status_code != 200:
            continue
        user = _user_of(name).as_input() if name else None
        for chunk in answer.json()["chunks"]:
            served += 1
            dataset, doc_id = world["doc_of"][chunk["receipt"]["platinum"]["id"]]
            acl = acls[(dataset, doc_id)]
            resource = {
                "dataset": dataset,
                "layer": chunk["layer"],
                "classification": chunk["classification"],
                "pii_types": [],
                "untrusted": False,
                "acl": {"listed": False} if acl is None else {"listed": True, "principals": acl},
            }
            verdict = policy_oracle.decide(data, agent, purpose, model, resource, user=user)
            assert verdict["allow"], (agent, name, purpose, model, chunk["chunk_id"], verdict["reasons"])
            if acl is not None:  # and without the oracle: the ACL names one of the request's principals
                held = set(_user_of(name).principals) if name else {f"agent:{agent}"}
                assert held & set(acl), (agent, name, chunk["chunk_id"], acl)
    assert served > 300 and outcomes.get(200, 0) > 200, outcomes
    assert outcomes.get(401, 0) > 0 and outcomes.get(403, 0) > 0, outcomes


# -- the audit trail ------------------------------------------------------------------------------------------------


def test_prove_answers_whether_a_user_received_a_chunk_of_a_document(world: dict[str, Any]) -> None:
    answer = _context(
        world, "hr_case_assistant", HR_QUESTION, purpose="hr_casework", user_token=_token(world, "amira.haddad")
    )
    chunk = next(c for c in answer.json()["chunks"] if c["dataset"] == "hr_case_notes")
    dataset, doc_id = world["doc_of"][chunk["receipt"]["platinum"]["id"]]
    argv = [sys.executable, "-m", "aquifer", "audit", "prove", "--document", f"{dataset}/{doc_id}", "--json"]
    found = subprocess.run(
        [*argv, "--user", f"{ISSUER_ID}:amira.haddad"], env=world["env"], capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 1, found.stdout + found.stderr
    proof = json.loads(found.stdout)
    assert proof["verdict"] == "found" and {v["user"] for v in proof["violations"]} == {f"{ISSUER_ID}:amira.haddad"}
    assert chunk["receipt"]["decision_id"] in {v["decision_id"] for v in proof["violations"]}
    other = subprocess.run(
        [*argv, "--user", f"{ISSUER_ID}:gus.lindqvist"], env=world["env"], capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 0 and json.loads(other.stdout)["verdict"] == "none", other.stdout + other.stderr


# -- the IdP going away (last: it stops the module's IdP) ----------------------------------------------------------


def test_jwks_down_fails_closed_after_the_key_ttl(world: dict[str, Any]) -> None:
    token = _token(world, "chloe.martin")
    assert (
        _context(world, "support_assistant", "refunds", purpose="customer_support", user_token=token).status_code == 200
    )
    world["idp_thread"].stop()
    time.sleep(3.5)  # the catalog's jwks_ttl_s for this module is 3
    down = _context(world, "support_assistant", "refunds", purpose="customer_support", user_token=token)
    assert down.status_code == 503, down.text
    assert down.json()["reasons"] == ["identity_provider_unavailable"] and "chunks" not in down.json()
    alone = _context(world, "support_assistant", "refunds", purpose="customer_support")
    assert alone.status_code == 200, "an agent acting for itself does not depend on the IdP"
    world["idp_thread"] = world["idp"].start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # failed fetches wait out a short cooldown before the next try
        back = _context(world, "support_assistant", "refunds", purpose="customer_support", user_token=token)
        if back.status_code == 200:
            break
        time.sleep(0.5)
    assert back.status_code == 200, back.text
