"""The policy: Rego unit tests, the embedded engine against an independent oracle, revisions, hot reload, and every
way the engine can fail - each must deny with policy_engine_unavailable."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aquifer.catalog import load_catalog
from aquifer.policy import (
    POLICY_ENGINE_UNAVAILABLE,
    EmbeddedBackend,
    OpaBackend,
    PolicyEngine,
    PolicySource,
    RequestContext,
    Resource,
)
from aquifer.policy.rego_tests import discover
from aquifer.policy.rego_tests import run as run_rego_tests
from aquifer.policy.source import ENTRYPOINTS
from aquifer.settings import PROJECT_ROOT
from tests import policy_oracle
from tests.demo_users import for_agent, user
from tests.policy_inputs import CONTEXT_FIELDS, NASTY, RESOURCE_FIELDS, Inputs, allowed_input, canonical

POLICIES = PROJECT_ROOT / "policies"
CATALOG = PROJECT_ROOT / "catalog"


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of policies/ and catalog/ that a test may edit."""
    policies, catalog = tmp_path / "policies", tmp_path / "catalog"
    shutil.copytree(POLICIES, policies)
    shutil.copytree(CATALOG, catalog)
    return policies, catalog


def engine_for(policies: Path, catalog: Path, **kwargs: float) -> PolicyEngine:
    return PolicyEngine(EmbeddedBackend(), policies, catalog, reload_interval_s=0.0, **kwargs)


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(EmbeddedBackend(), POLICIES, CATALOG)


# -- the Rego suite ---------------------------------------------------------------------------------------------


def test_every_rego_test_passes_on_the_embedded_engine() -> None:
    results = list(run_rego_tests(POLICIES))
    assert len(results) >= 40
    failed = [f"{r.test.ref}: {r.error or 'false'}" for r in results if not r.passed]
    assert failed == []


def test_every_rule_file_has_a_test_file_with_an_allow_and_a_deny_per_reason() -> None:
    modules, tests = discover(POLICIES)
    rule_files = [m for m in modules if not m.endswith("_test.rego")]
    for rel in rule_files:
        assert rel.replace(".rego", "_test.rego") in modules, f"{rel} has no test file beside it"
    codes = set()
    for rel in rule_files:
        codes |= set(re.findall(r'(?:request_deny|resource_deny) contains "(\w+)"', modules[rel]))
    assert len(codes) >= 11
    test_text = "\n".join(t for m, t in modules.items() if m.endswith("_test.rego"))
    rule_text = "\n".join(modules[rel] for rel in rule_files)
    for code in codes:
        assert f'"{code}"' in test_text, f"no Rego test asserts reason {code}"
        assert f'explain("{code}")' in rule_text, f"reason {code} has no explain() words for reviewers"
    assert sum(".allow" in t for m, t in modules.items() if m.endswith("_test.rego")) >= len(rule_files)
    assert len(tests) == len({t.ref for t in tests}), "duplicate test names would shadow each other"


def _metadata_blocks(text: str) -> Iterator[tuple[str, str]]:
    """(scope, the line the block annotates) for each ``# METADATA`` block of a module."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != "# METADATA":
            continue
        j = i + 1
        while j < len(lines) and lines[j].startswith("#"):
            j += 1
        block = "\n".join(lines[i:j])
        target = lines[j] if j < len(lines) else ""
        scope = re.search(r"^# scope: (\w+)", block, re.M)
        default = "package" if target.startswith("package ") else "rule"
        yield (scope.group(1) if scope else default), target


def test_policy_hygiene_one_package_annotation_entrypoints_once_no_input_in_messages() -> None:
    """What Regal and OPA's compiler would refuse, checked without them: a package-scoped METADATA block once per
    package across all files (OPA: `package annotation redeclared`), each entrypoint annotated once, and no
    explanation that splices raw input into the decision (rego-cpp does not escape strings in its results)."""
    modules, _ = discover(POLICIES)
    package_blocks: dict[str, int] = {}
    entrypoints: list[str] = []
    for rel, text in modules.items():
        package = re.search(r"^package ([\w.]+)", text, re.M)
        assert package, rel
        for scope, target in _metadata_blocks(text):
            if scope in ("package", "subpackages"):
                package_blocks[package.group(1)] = package_blocks.get(package.group(1), 0) + 1
            elif re.match(r"^\w+ :?=", target):
                entrypoints.append(target.split()[0])
        if rel.endswith("_test.rego"):
            continue
        for body in re.findall(r'^explain\("\w+"\) := (.*?)(?=^\S|\Z)', text, re.M | re.S):
            assert "input." not in body, f"{rel}: an explanation built from raw input: {body.strip()[:80]}"
    assert package_blocks == {"aquifer.context": 1}
    assert sorted(entrypoints) == sorted(ENTRYPOINTS)


def test_a_failing_rego_test_is_reported_as_failed(workspace: tuple[Path, Path]) -> None:
    policies, _ = workspace
    trust = policies / "aquifer/context/trust.rego"
    trust.write_text(trust.read_text().replace("_trusted if input.resource.untrusted == false", "_trusted := true"))
    failed = {r.test.name for r in run_rego_tests(policies) if not r.passed}
    assert {"test_untrusted_denied", "test_unmarked_trust_denied"} <= failed


# -- decisions on the real catalog --------------------------------------------------------------------------------

DEMO = [
    # agent, purpose, model, resource, allow, reasons or redactions
    ("support_assistant", "customer_support", "local_smollm2", Resource("product_docs", "public"), True, []),
    (
        "support_assistant",
        "customer_support",
        "local_smollm2",
        Resource("support_tickets", "internal", pii_types=("email", "phone")),
        True,
        ["email", "phone"],
    ),
    (
        "support_assistant",
        "customer_support",
        "local_smollm2",
        Resource("hr_case_notes", "confidential"),
        False,
        ["clearance_below_classification", "purpose_not_allowed_for_dataset"],
    ),
    (
        "hr_case_assistant",
        "hr_casework",
        "local_smollm2",
        Resource(
            "hr_case_notes",
            "confidential",
            pii_types=("national_id", "person"),
            acl=("group:hr-leads", "group:hr-partners-north"),
        ),
        True,
        [],
    ),
    ("finance_analyst", "financial_analysis", "local_smollm2", Resource("finance_reports", "restricted"), True, []),
    (
        "finance_analyst",
        "financial_analysis",
        "local_smollm2",
        Resource("finance_reports", "restricted", layer="gold"),
        True,
        [],
    ),
    (
        "support_assistant",
        "customer_support",
        "local_smollm2",
        Resource("product_docs", "public", layer="gold"),
        False,
        ["layer_not_served"],
    ),
    ("marketing_assistant", "marketing", "external_gpt", Resource("product_docs", "public"), True, []),
    (
        "marketing_assistant",
        "marketing",
        "external_gpt",
        Resource("engineering_wiki", "internal"),
        False,
        ["above_model_ceiling", "clearance_below_classification", "model_locality", "purpose_not_allowed_for_dataset"],
    ),
    (
        "support_assistant",
        "customer_support",
        "sovereign_eu",
        Resource("support_tickets", "confidential"),
        False,
        ["above_model_ceiling", "clearance_below_classification", "model_locality"],
    ),
    (
        "support_assistant",
        "customer_support",
        "local_smollm2",
        Resource("product_docs", "public", untrusted=True),
        False,
        ["untrusted_content"],
    ),
]


@pytest.mark.parametrize(("agent", "purpose", "model", "resource", "allow", "detail"), DEMO)
def test_demo_decisions(
    engine: PolicyEngine, agent: str, purpose: str, model: str, resource: Resource, allow: bool, detail: list[str]
) -> None:
    batch = engine.decide(RequestContext(agent, purpose, model, user=for_agent(agent)), [resource])
    decision = batch.resources[0]
    assert decision.allow is allow, decision
    if allow:
        assert decision.obligations.redact == detail
        assert decision.obligations.label == ("uncertified" if resource.layer == "gold" else None)
    else:
        assert decision.reasons == detail
        assert len(decision.explanations) == len(decision.reasons)
        assert all(" " in text for text in decision.explanations), "every reason is explained in words"


def test_request_level_refusal_comes_before_any_resource(engine: PolicyEngine) -> None:
    batch = engine.decide(RequestContext("marketing_assistant", "customer_support", "local_smollm2"))
    assert not batch.request.allow
    assert batch.request.reasons == ["model_not_allowed", "purpose_not_allowed"]
    assert batch.resources == []
    unknown = engine.decide(RequestContext("mallory", "marketing", "gpt_9"))
    assert unknown.request.reasons == ["unknown_agent", "unknown_model"]
    # an id that is not an identifier never reaches the engine
    malformed = engine.decide(RequestContext("mallory", "marketing", "gpt-9"), [Resource("product_docs", "public")])
    assert malformed.request.reasons == ["invalid_input"]
    assert malformed.resources[0].reasons == ["invalid_input"]
    assert "input.model" in malformed.request.explanations[0]


def test_batch_equals_one_by_one_and_matches_the_oracle(engine: PolicyEngine) -> None:
    data = engine.catalog.policy_data()
    resources = [
        Resource(ds, level, layer=layer, pii_types=pii, untrusted=untrusted)
        for ds in sorted(data["datasets"])
        for level in ("public", "confidential", "restricted")
        for layer in ("platinum", "gold")
        for pii in ((), ("email",))
        for untrusted in (False, True)
    ]
    acls = [None, ("group:hr-partners-north",), ("user:erin.walsh", "group:oncall"), (), ("agent:support_assistant",)]
    resources += [Resource("hr_case_notes", "confidential", acl=acl) for acl in acls]
    resources += [Resource("support_tickets", "internal", acl=acl).at_prefilter() for acl in acls[:1]]
    users = [None, user("amira.haddad"), user("erin.walsh"), user("dev.patel"), user("gus.lindqvist")]
    for agent in data["agents"]:
        for model in data["models"]:
            for who in users:
                ctx = RequestContext(agent, data["agents"][agent]["purposes"][0], model, user=who)
                batch = engine.decide(ctx, resources)
                singles = [engine.decide(ctx, [r]).resources[0] for r in resources[:12]]
                assert batch.resources[:12] == singles
                for resource, decision in zip(resources, batch.resources, strict=True):
                    user_input = who.as_input() if who else None
                    expected = policy_oracle.decide(
                        data, ctx.agent, ctx.purpose, ctx.model, resource.as_input(), user=user_input
                    )
                    assert decision.allow is expected["allow"], (ctx, resource)
                    assert set(decision.reasons) == expected["reasons"], (ctx, resource)
                    if decision.allow:
                        assert decision.obligations.redact == expected["redact"]


# -- revision and reload ------------------------------------------------------------------------------------------


def test_revision_is_a_content_hash_of_policies_and_registries(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    base = PolicySource.read(policies, catalog).revision
    assert base == PolicySource.read(POLICIES, CATALOG).revision, "same content, same revision, wherever it lies"
    (policies / "aquifer/context/trust_test.rego").write_text(
        (policies / "aquifer/context/trust_test.rego").read_text() + "\n# a comment in a test\n"
    )
    assert PolicySource.read(policies, catalog).revision == base, "tests do not decide anything"
    agent = catalog / "agents/support_assistant.yaml"
    agent.write_text(agent.read_text().replace("description: Answers", "description: Politely answers"))
    assert PolicySource.read(policies, catalog).revision == base, "descriptions do not decide anything"
    agent.write_text(agent.read_text().replace("clearance: internal", "clearance: confidential"))
    changed = PolicySource.read(policies, catalog).revision
    assert changed != base
    locality = policies / "aquifer/context/locality.rego"
    locality.write_text(locality.read_text() + "\n")
    assert PolicySource.read(policies, catalog).revision not in (base, changed)


def test_a_one_line_policy_edit_applies_without_a_restart(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    engine = engine_for(policies, catalog)
    ctx = RequestContext("hr_case_assistant", "hr_casework", "local_smollm2", user=user("amira.haddad"))
    hr_internal = Resource("hr_handbook", "internal")
    first = engine.decide(ctx, [hr_internal])
    assert first.resources[0].allow
    # the reviewer's one-line change: the HR handbook is no longer for HR casework
    source = catalog / "sources/hr_handbook.yaml"
    source.write_text(
        source.read_text().replace(
            "allowed_purposes: [hr_casework, general_assistance]", "allowed_purposes: [general_assistance]"
        )
    )
    second = engine.decide(ctx, [hr_internal])
    assert second.resources[0].reasons == ["purpose_not_allowed_for_dataset"]
    assert second.revision != first.revision
    # and a Rego edit: let sovereign-cloud models receive confidential data
    ctx2 = RequestContext("hr_case_assistant", "hr_casework", "sovereign_eu", user=user("amira.haddad"))
    locality = policies / "aquifer/context/locality.rego"
    text = locality.read_text()
    assert '"sovereign_cloud": {"public", "internal"},' in text
    locality.write_text(
        text.replace(
            '"sovereign_cloud": {"public", "internal"},', '"sovereign_cloud": {"public", "internal", "confidential"},'
        )
    )
    agent = catalog / "agents/hr_case_assistant.yaml"
    agent.write_text(agent.read_text().replace("models: [local_smollm2]", "models: [local_smollm2, sovereign_eu]"))
    case = Resource("hr_case_notes", "confidential")
    reasons = engine.decide(ctx2, [case]).resources[0].reasons
    assert "model_locality" not in reasons
    assert reasons == ["above_model_ceiling"], "the model's own ceiling (internal) still holds"


# -- fail closed --------------------------------------------------------------------------------------------------


def _assert_unavailable(engine: PolicyEngine, resources: list[Resource] | None = None) -> str:
    resources = resources or [Resource("product_docs", "public")]
    batch = engine.decide(RequestContext("support_assistant", "customer_support", "local_smollm2"), resources)
    assert not batch.request.allow
    assert batch.request.reasons == [POLICY_ENGINE_UNAVAILABLE]
    assert all(not d.allow and d.reasons == [POLICY_ENGINE_UNAVAILABLE] for d in batch.resources)
    return batch.request.explanations[0]


def test_a_policy_that_does_not_compile_denies_everything_and_says_why(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    engine = engine_for(policies, catalog)
    assert engine.decide(RequestContext("support_assistant", "customer_support", "local_smollm2")).request.allow
    broken = policies / "aquifer/context/trust.rego"
    good = broken.read_text()
    broken.write_text(good + "\nresource_deny contains if {\n")
    why = _assert_unavailable(engine)
    assert "does not compile" in why and "trust.rego" in why
    broken.write_text(good)
    assert engine.decide(RequestContext("support_assistant", "customer_support", "local_smollm2")).request.allow


def test_a_malformed_decision_is_a_denial(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    context = policies / "aquifer/context/context.rego"
    context.write_text(context.read_text().replace('"allow": count(codes) == 0,', '"allow": "yes",'))
    why = _assert_unavailable(engine_for(policies, catalog))
    assert "malformed decision" in why and "allow" in why


def test_an_allow_that_carries_reasons_is_a_denial(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    context = policies / "aquifer/context/context.rego"
    context.write_text(context.read_text().replace('"allow": count(codes) == 0,', '"allow": true,'))
    engine = engine_for(policies, catalog)
    batch = engine.decide(
        RequestContext("support_assistant", "customer_support", "local_smollm2"),
        [Resource("finance_reports", "restricted")],
    )
    assert batch.resources[0].reasons == [POLICY_ENGINE_UNAVAILABLE]


def test_an_undefined_decision_is_a_denial(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    context = policies / "aquifer/context/context.rego"
    context.write_text(
        context.read_text().replace(
            "request := _document(request_deny, {})", "request := _document(request_deny, {}) if false"
        )
    )
    assert "undefined" in _assert_unavailable(engine_for(policies, catalog))


def test_a_slow_policy_times_out_into_a_denial_and_the_engine_recovers(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    slow = policies / "aquifer/context/slow.rego"
    slow.write_text(
        "package aquifer.context\n\nimport rego.v1\n\n"
        'resource_deny contains "too_slow" if {\n\tinput.resource.dataset == "product_docs"\n'
        "\tcount([x | some x in numbers.range(1, 30000000); x % 7 == 0]) < 0\n}\n"
    )
    engine = engine_for(policies, catalog, timeout_s=0.3)
    start = time.monotonic()
    why = _assert_unavailable(engine)
    assert time.monotonic() - start < 5
    assert "no answer within 0.3 s" in why
    slow.unlink()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the abandoned evaluation finishes on its own thread; the engine reloads
        batch = engine.decide(
            RequestContext("support_assistant", "customer_support", "local_smollm2"),
            [Resource("support_tickets", "internal")],
        )
        if batch.resources[0].allow:
            break
        time.sleep(0.2)
    assert batch.resources[0].allow


def test_an_invalid_catalog_denies_everything_naming_the_file(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    agent = catalog / "agents/support_assistant.yaml"
    agent.write_text(agent.read_text().replace("clearance: internal", "clearance: cosmic"))
    why = _assert_unavailable(engine_for(policies, catalog))
    assert "support_assistant.yaml" in why and "clearance" in why


def test_an_unreachable_opa_server_denies_everything(workspace: tuple[Path, Path]) -> None:
    policies, catalog = workspace
    engine = PolicyEngine(OpaBackend("http://127.0.0.1:9", timeout_s=0.5), policies, catalog, timeout_s=2)
    why = _assert_unavailable(engine)
    assert "OPA at http://127.0.0.1:9" in why


def test_registries_reject_unknown_models_naming_the_field(workspace: tuple[Path, Path]) -> None:
    _, catalog = workspace
    agent = catalog / "agents/marketing_assistant.yaml"
    agent.write_text(agent.read_text().replace("models: [external_gpt]", "models: [external_gpt, gpt_99]"))
    with pytest.raises(ValueError, match=r"marketing_assistant\.yaml: models\.1: unknown model 'gpt_99'"):
        load_catalog(catalog)


# -- hostile and incomplete inputs ---------------------------------------------------------------------------------


def test_generated_hostile_inputs_match_the_oracle_on_the_embedded_engine() -> None:
    """Missing fields, wrong types, unknown ids and strings with quotes, newlines and unicode, sent to rego-cpp
    directly: every answer is a well-formed decision with the oracle's reasons (tests/test_opa.py does 10,000 on
    both engines where an `opa` is on PATH)."""
    source = PolicySource.read(POLICIES, CATALOG)
    backend = EmbeddedBackend()
    backend.load(source)
    data = source.catalog.policy_data()
    for ctx, resources in Inputs(data, seed=7).cases(1_000):
        fields = [ctx.get(f) for f in ("agent", "purpose", "model")]
        request = backend.evaluate("request", ctx)
        user = ctx.get("user")
        assert set(request["reasons"]) == policy_oracle.request_reasons(data, *fields, ctx.get("action"), user), ctx
        for resource, doc in zip(resources, backend.decide_many(ctx, resources), strict=True):
            expected = policy_oracle.decide(data, *fields, resource, ctx.get("action"), user)
            assert canonical(doc)[0] != "malformed", (ctx, resource, doc)
            assert set(doc["reasons"]) == expected["reasons"], (ctx, resource, doc)
            if doc["allow"]:
                assert doc["obligations"].get("redact", []) == expected["redact"]


@pytest.mark.parametrize("field", [*CONTEXT_FIELDS, *(f"resource.{f}" for f in RESOURCE_FIELDS), "resource"])
def test_deleting_any_input_field_denies(field: str) -> None:
    source = PolicySource.read(POLICIES, CATALOG)
    backend = EmbeddedBackend()
    backend.load(source)
    ctx, resource = allowed_input(source.catalog.policy_data())
    assert backend.evaluate("decision", {**ctx, "resource": resource})["allow"]
    doc: dict[str, object] = {**ctx, "resource": dict(resource)}
    if field.startswith("resource."):
        del doc["resource"][field.removeprefix("resource.")]  # type: ignore[attr-defined]
    else:
        del doc[field]
    decision = backend.evaluate("decision", doc)
    assert not decision["allow"] and decision["reasons"], decision


def test_ids_that_are_not_identifiers_never_reach_the_engine(engine: PolicyEngine) -> None:
    for nasty in NASTY:
        for ctx in (
            RequestContext("support_assistant", nasty, "local_smollm2"),
            RequestContext(nasty, "customer_support", "local_smollm2"),
            RequestContext("support_assistant", "customer_support", nasty),
            RequestContext("support_assistant", "customer_support", "local_smollm2", action=nasty),
        ):
            batch = engine.decide(ctx, [Resource("product_docs", "public")])
            assert batch.request.reasons == ["invalid_input"], (ctx, batch.request)
            assert batch.resources[0].reasons == ["invalid_input"]
        ok = RequestContext("support_assistant", "customer_support", "local_smollm2")
        decided = engine.decide(ok, [Resource(nasty, "public"), Resource("product_docs", "public", pii_types=(nasty,))])
        assert [d.reasons for d in decided.resources] == [["invalid_input"]] * 2, nasty


def test_every_reason_code_is_the_policys_or_in_the_one_list_of_non_policy_codes() -> None:
    """Authorization lives in Rego: Python never mints one of the policy's reason codes, every code Python does
    give is in aquifer.codes (validation, engine failure, upstream outcome), and docs/policies.md lists them all."""
    from aquifer.codes import ANSWERED_401, NON_POLICY_CODES

    modules, _ = discover(POLICIES)
    rule_text = "\n".join(t for m, t in modules.items() if not m.endswith("_test.rego"))
    policy_codes = set(re.findall(r'(?:request_deny|resource_deny) contains "(\w+)"', rule_text))
    assert not policy_codes & set(NON_POLICY_CODES)
    assert policy_codes >= ANSWERED_401, "the codes answered 401 are the policy's"
    for path in sorted((PROJECT_ROOT / "src" / "aquifer").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name == "codes.py":  # the one place that names policy codes, to choose their HTTP status
            text = re.sub(r"ANSWERED_401 = frozenset\(\{[^}]*\}\)", "", text)
        for code in policy_codes:
            assert f'"{code}"' not in text, f"{path.name} mints {code}, a decision only the policy makes"
        given = re.findall(r'reasons=\[\s*"(\w+)"', text) + re.findall(r'_log_refusal\([^)]*\["(\w+)"\]\)', text)
        assert set(given) <= set(NON_POLICY_CODES), f"{path.name}: {set(given) - set(NON_POLICY_CODES)}"
    docs = (PROJECT_ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    for code in sorted(policy_codes | set(NON_POLICY_CODES)):
        assert f"`{code}`" in docs, f"docs/policies.md does not list {code}"


def test_a_full_decision_cache_drops_its_oldest_decisions_not_all(tmp_path: Path) -> None:
    engine = PolicyEngine(EmbeddedBackend(), POLICIES, CATALOG, cache_size=20)
    resources = [Resource("product_docs", "public", pii_types=(t,)) for t in ("email", "phone", "person")]
    contexts = [
        RequestContext("support_assistant", "customer_support", "local_smollm2", user=user(name))
        for name in ("amira.haddad", "ben.okafor", "chloe.martin", "dev.patel", "erin.walsh", "gus.lindqvist")
    ]
    for ctx in contexts:
        engine.decide(ctx, resources)
    cached = engine._cache
    assert len(cached) <= 20
    assert (contexts[-1], resources[-1]) in cached, "the newest decisions stay"
    assert (contexts[0], None) not in cached, "the oldest went first"
    assert len(cached) > 10, "a full cache loses a tenth, not everything"
