"""An independent statement of the default organisation policy, in plain Python, read straight from the issue and
the catalog. Tests compare the Rego engines against it; it shares no code with policies/ or aquifer.policy."""

from __future__ import annotations

from typing import Any

LEVELS = ["public", "internal", "confidential", "restricted"]
LOCALITY_MAX = {"local": "restricted", "sovereign_cloud": "internal", "external": "public"}


def _rank(level: Any) -> int | None:
    return LEVELS.index(level) if level in LEVELS else None


def request_reasons(data: dict[str, Any], agent: str, purpose: str, model: str) -> set[str]:
    a, m = data["agents"].get(agent), data["models"].get(model)
    reasons: set[str] = set()
    if a is None:
        reasons.add("unknown_agent")
    if m is None:
        reasons.add("unknown_model")
    if a is not None and purpose not in a["purposes"]:
        reasons.add("purpose_not_allowed")
    if a is not None and model not in a["models"]:
        reasons.add("model_not_allowed")
    return reasons


def decide(data: dict[str, Any], agent: str, purpose: str, model: str, resource: dict[str, Any]) -> dict[str, Any]:
    """{allow, reasons (set), redact (sorted list)} for one resource."""
    a, m = data["agents"].get(agent), data["models"].get(model)
    ds = data["datasets"].get(resource.get("dataset"))
    level = _rank(resource.get("classification"))
    reasons = request_reasons(data, agent, purpose, model)
    roles = a["roles"] if a else []
    served = {"platinum"} | ({"gold"} if "analyst" in roles else set())
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
    if not isinstance(pii, list):
        reasons.add("pii_unknown")
        pii = []
    if resource.get("untrusted") is not False:
        reasons.add("untrusted_content")
    reader = "pii_reader" in roles and ds is not None and purpose in ds["pii_purposes"]
    redact = sorted(set(pii)) if pii and not reader else []
    return {"allow": not reasons, "reasons": reasons, "redact": redact}
