"""An independent statement of the default organisation policy, in plain Python, read straight from the issues and
the catalog. Tests compare the Rego engines against it; it shares no code with policies/ or aquifer.policy."""

from __future__ import annotations

from typing import Any

LEVELS = ["public", "internal", "confidential", "restricted"]
LOCALITY_MAX = {"local": "restricted", "sovereign_cloud": "internal", "external": "public"}
# action -> (needs a purpose, names a model, reads resources)
ACTIONS = {
    "read_context": (True, True, True),
    "chat": (True, True, True),
    "read_lineage": (True, True, True),
    "list_models": (False, True, False),
    "read_decisions": (False, False, False),
}


def _rank(level: Any) -> int | None:
    return LEVELS.index(level) if isinstance(level, str) and level in LEVELS else None


def _get(mapping: dict[str, Any], key: Any) -> Any:
    return mapping.get(key) if isinstance(key, str) else None


def _user_grants(data: dict[str, Any], user: Any) -> tuple[set[str], int | None]:
    """The roles and the clearance rank a user's groups grant (catalog/identity.yaml), the default included."""
    groups = user.get("groups") if isinstance(user, dict) else None
    grants = (
        [data["identity"]["groups"].get(g) for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    )
    roles = {r for g in grants if g for r in g.get("roles", [])}
    ranks = [_rank(g.get("clearance")) for g in grants if g and "clearance" in g]
    ranks.append(_rank(data["identity"].get("default_clearance")))
    known = [r for r in ranks if r is not None]
    return roles, max(known) if known else None


def principals(agent: Any, user: Any) -> set[str]:
    """Whom a request is on behalf of: the user's user:/group: principals, or agent:<id> without a user."""
    if isinstance(user, dict):
        found = {f"user:{user.get('subject')}"}
        groups = user.get("groups")
        return found | ({f"group:{g}" for g in groups if isinstance(g, str)} if isinstance(groups, list) else set())
    return {f"agent:{agent}"}


def request_reasons(
    data: dict[str, Any], agent: Any, purpose: Any, model: Any, action: Any = "read_context", user: Any = None
) -> set[str]:
    a, m = _get(data["agents"], agent), _get(data["models"], model)
    needs = ACTIONS.get(action) if isinstance(action, str) else None
    reasons: set[str] = set()
    if needs is None:
        reasons.add("unknown_action")
    if a is None:
        reasons.add("unknown_agent")
    if needs and needs[1] and m is None:
        reasons.add("unknown_model")
    if a is not None and needs and needs[0] and purpose not in a["purposes"]:
        reasons.add("purpose_not_allowed")
    if a is not None and needs and needs[1] and model not in a["models"]:
        reasons.add("model_not_allowed")
    if action == "read_decisions" and a is not None and "auditor" not in a["roles"]:
        reasons.add("role_required")
    has_user = isinstance(user, dict)
    if a is not None:
        acts_for = a.get("acts_for")
        if has_user and acts_for not in ("user", "either"):
            reasons.add("agent_acts_for_itself")
        if not has_user and acts_for not in ("self", "either"):
            reasons.add("user_token_required")
    if action == "read_decisions" and has_user and "auditor" not in _user_grants(data, user)[0]:
        reasons.add("user_role_required")
    return reasons


def decide(
    data: dict[str, Any],
    agent: Any,
    purpose: Any,
    model: Any,
    resource: Any,
    action: Any = "read_context",
    user: Any = None,
) -> dict[str, Any]:
    """{allow, reasons (set), redact (sorted list)} for one resource."""
    resource = resource if isinstance(resource, dict) else {}
    a, m = _get(data["agents"], agent), _get(data["models"], model)
    ds = _get(data["datasets"], resource.get("dataset"))
    level = _rank(resource.get("classification"))
    reasons = request_reasons(data, agent, purpose, model, action, user)
    has_user = isinstance(user, dict)
    user_roles, user_rank = _user_grants(data, user)
    if has_user and (user_rank is None or level is None or user_rank < level):
        reasons.add("user_clearance_below_classification")
    holds = principals(agent, user)
    access = ds.get("access") if ds is not None else None
    if ds is not None and not (
        isinstance(access, dict) and (access.get("restricted") is False or holds & set(access.get("principals") or []))
    ):
        reasons.add("not_in_dataset_access")
    acl = resource.get("acl")
    acl_ok = isinstance(acl, dict) and (
        acl.get("listed") is False
        or acl.get("prefilter") is True
        or (
            acl.get("listed") is True
            and isinstance(acl.get("principals"), list)
            and bool(holds & {p for p in acl["principals"] if isinstance(p, str)})
        )
    )
    if not acl_ok:
        reasons.add("not_in_document_acl")
    needs = ACTIONS.get(action) if isinstance(action, str) else None
    if needs is not None and not needs[2]:
        reasons.add("action_reads_no_resources")
    roles = a["roles"] if a else []
    served = ["platinum"] + (["gold"] if "analyst" in roles else [])
    if resource.get("layer") not in served:
        reasons.add("layer_not_served")
    clearance = _rank(a["clearance"]) if a else None
    if clearance is None or level is None or clearance < level:
        reasons.add("clearance_below_classification")
    if ds is None:
        reasons.add("unknown_dataset")
    elif purpose not in ds["purposes"]:
        reasons.add("purpose_not_allowed_for_dataset")
    locality_max = _rank(LOCALITY_MAX.get(m["locality"])) if m else None
    if locality_max is None or level is None or level > locality_max:
        reasons.add("model_locality")
    ceiling = _rank(m["max_classification"]) if m else None
    if ceiling is None or level is None or level > ceiling:
        reasons.add("above_model_ceiling")
    pii = resource.get("pii_types")
    if not isinstance(pii, list) or not all(isinstance(t, str) and t in data["pii_types"] for t in pii):
        reasons.add("pii_unknown")
        pii = []
    if resource.get("untrusted") is not False:
        reasons.add("untrusted_content")
    reader = (
        "pii_reader" in roles
        and ds is not None
        and purpose in ds["pii_purposes"]
        and (not has_user or "pii_reader" in user_roles)
    )
    redact = sorted(set(pii)) if pii and not reader else []
    return {"allow": not reasons, "reasons": reasons, "redact": redact}
