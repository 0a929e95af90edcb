"""Property tests: over random agents, purposes, models and resources, the engine never breaks the invariants the
organisation relies on, and agrees with the independent oracle on every decision."""

from __future__ import annotations

import itertools
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aquifer.pii import PII_TYPES
from aquifer.policy import EmbeddedBackend, PolicyEngine, RequestContext, Resource
from aquifer.settings import PROJECT_ROOT
from tests import policy_oracle

LEVELS = ["public", "internal", "confidential", "restricted"]
LOCALITIES = ["local", "sovereign_cloud", "external"]
ROLE_SETS = [[], ["pii_reader"], ["analyst"], ["analyst", "pii_reader"]]
OWNER = {"team": "Test", "contact": "test@example.com"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> PolicyEngine:
    """The real policy and sources, plus an agent per (clearance, roles) and a model per (locality, ceiling)."""
    root = tmp_path_factory.mktemp("props")
    catalog = root / "catalog"
    shutil.copytree(PROJECT_ROOT / "catalog", catalog)
    models = [f"m_{loc}_{lvl}" for loc, lvl in itertools.product(LOCALITIES, LEVELS)]
    for loc, lvl in itertools.product(LOCALITIES, LEVELS):
        doc = {
            "id": f"m_{loc}_{lvl}",
            "description": "test",
            "owner": OWNER,
            "endpoint": "http://127.0.0.1:1/v1",
            "served_name": "x",
            "locality": loc,
            "max_classification": lvl,
        }
        (catalog / "models" / f"m_{loc}_{lvl}.yaml").write_text(yaml.safe_dump(doc))
    purposes = sorted(
        {p for f in (catalog / "sources").glob("*.yaml") for p in yaml.safe_load(f.read_text())["allowed_purposes"]}
    )
    for lvl, roles in itertools.product(LEVELS, ROLE_SETS):
        agent_id = f"a_{lvl}_{'_'.join(roles) or 'none'}"
        doc = {
            "id": agent_id,
            "description": "test",
            "owner": OWNER,
            "roles": roles,
            "clearance": lvl,
            "purposes": purposes,
            "models": models,
        }
        (catalog / "agents" / f"{agent_id}.yaml").write_text(yaml.safe_dump(doc))
    return PolicyEngine(EmbeddedBackend(), PROJECT_ROOT / "policies", catalog)


def _data(engine: PolicyEngine) -> dict:  # type: ignore[type-arg]
    return engine.catalog.policy_data()


@st.composite
def requests(draw: st.DrawFn, engine: PolicyEngine) -> tuple[RequestContext, list[Resource]]:
    data = _data(engine)
    agent = draw(st.sampled_from([*sorted(data["agents"]), "intruder"]))
    purposes = sorted({p for d in data["datasets"].values() for p in d["purposes"]})
    purpose = draw(st.sampled_from([*purposes, "espionage"]))
    model = draw(st.sampled_from([*sorted(data["models"]), "shadow_llm"]))
    resource = st.builds(
        Resource,
        dataset=st.sampled_from([*sorted(data["datasets"]), "shadow_dataset"]),
        classification=st.sampled_from([*LEVELS, "secret"]),
        layer=st.sampled_from(["platinum", "platinum", "gold", "silver"]),
        pii_types=st.lists(st.sampled_from(PII_TYPES), max_size=3).map(tuple),
        untrusted=st.booleans(),
    )
    return RequestContext(agent, purpose, model), draw(st.lists(resource, min_size=1, max_size=12))


def test_invariants_hold_and_the_engine_agrees_with_the_oracle(engine: PolicyEngine) -> None:
    data = _data(engine)

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests(engine))
    def check(case: tuple[RequestContext, list[Resource]]) -> None:
        ctx, resources = case
        batch = engine.decide(ctx, resources)
        agent, model = data["agents"].get(ctx.agent), data["models"].get(ctx.model)
        for resource, decision in zip(resources, batch.resources, strict=True):
            expected = policy_oracle.decide(data, ctx.agent, ctx.purpose, ctx.model, resource.as_input())
            assert decision.allow is expected["allow"], (ctx, resource, decision)
            assert set(decision.reasons) == expected["reasons"], (ctx, resource, decision)
            if not decision.allow:
                continue
            level = LEVELS.index(resource.classification)
            assert agent is not None and model is not None
            assert level <= LEVELS.index(agent["clearance"]), "never above clearance"
            assert level <= LEVELS.index(model["max_classification"]), "never above the model's ceiling"
            if resource.classification == "restricted":
                assert model["locality"] == "local", "restricted never leaves local models"
            if model["locality"] == "external":
                assert resource.classification == "public", "external models receive public only"
            assert not resource.untrusted, "never an untrusted chunk"
            assert resource.layer == "platinum" or (resource.layer == "gold" and "analyst" in agent["roles"])
            assert ctx.purpose in agent["purposes"] and ctx.purpose in data["datasets"][resource.dataset]["purposes"]
            unredacted = set(resource.pii_types) - set(decision.obligations.redact)
            if unredacted:
                assert "pii_reader" in agent["roles"]
                assert ctx.purpose in data["datasets"][resource.dataset]["pii_purposes"]

    check()
