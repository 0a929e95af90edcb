"""Who may see what in the sample corpus: the per-document ACLs of the ACL-bearing sources, and the hostile ACLs
planted so that silver's ``missing_acl`` / ``invalid_acl`` quarantine is exercised by the normal sample.

The ACLs name the IdP groups of ``catalog/identity.yaml`` and the demo users of ``users.json`` (read here, never
repeated): HR case notes go to their region's HR partners and the HR leads, a few also to the covering partner of
the other region by name; containment runbooks to the on-call group; urgent (escalated) support tickets to tier-2
support, some also to the tier-1 agent who escalated them. Every choice is a function of values the record already
drew (its HR partner, page kind, priority) or of its id, so adding ACLs left every other byte of the corpus as it was.
"""

from __future__ import annotations

import json
import zlib
from importlib import resources
from typing import Any

ABSENT = object()
"""A hostile variant that drops the ACL field altogether."""

HOSTILE_ACLS: dict[str, dict[str, tuple[str, Any]]] = {
    # role in the generator's plan: (the quarantine reason silver must give, the value written in the record)
    "hr_case_notes": {
        "acl_absent": ("missing_acl", ABSENT),
        "acl_everyone": ("invalid_acl", "everyone"),
        "acl_lists_nobody": ("invalid_acl", {"groups": []}),
        "acl_unknown_key": ("invalid_acl", {"teams": ["hr-leads"]}),
    },
    "support_tickets": {
        "acl_name_with_space": ("invalid_acl", "group:bad name"),
        "acl_no_kind": ("invalid_acl", "support-tier2"),
        "acl_lists_nobody": ("invalid_acl", ";"),
    },
    # Markdown: the YAML text written after `acl:` in the front matter
    "security_runbooks": {
        "acl_not_a_list": ("invalid_acl", '{"groups": "oncall"}'),
        "acl_unknown_key": ("invalid_acl", '{"roles": ["oncall"]}'),
        "acl_everyone": ("invalid_acl", "everyone"),
    },
}
"""Planted once per corpus (like the malformed files), listed in the manifest's ``malformed`` with the reason."""

HOSTILE_STATUS = {role: status for variants in HOSTILE_ACLS.values() for role, (status, _) in variants.items()}

RESTRICTED_RUNBOOK_KINDS = ("runbook",)
"""Page kinds of security_runbooks readable by on-call only: the containment (break-glass) runbooks."""
ONCALL_ACL = {"groups": ["oncall"]}


def _users() -> dict[str, dict[str, Any]]:
    text = resources.files("aquifer.sample").joinpath("users.json").read_text(encoding="utf-8")
    users: dict[str, dict[str, Any]] = json.loads(text)["users"]
    return users


DEMO_USERS = _users()


def members(group: str) -> list[str]:
    """The demo users in an IdP group, sorted."""
    return sorted(user for user, entry in DEMO_USERS.items() if group in entry["groups"])


def principals(acl: Any) -> list[str] | None:
    """The principals of an ACL as the generator writes it (object, list, or ';'-separated text), sorted; None for
    no ACL. Only for the well-formed ACLs the generator plants (silver is the reader of record)."""
    if acl is None or acl == "":
        return None
    if isinstance(acl, str):
        return sorted({p for p in acl.split(";") if p})
    if isinstance(acl, list):
        return sorted(set(acl))
    kinds = {"groups": "group", "users": "user", "agents": "agent"}
    return sorted({f"{kinds[key]}:{name}" for key, names in acl.items() for name in names})


def _bucket(record_id: str, buckets: int) -> int:
    """A stable bucket of an id (crc32: the same in every process, unlike hash())."""
    return zlib.crc32(record_id.encode()) % buckets


HR_REGIONS = ("north", "south")


def case_acl(partners: tuple[str, ...], partner: str, case_id: str) -> tuple[str, dict[str, list[str]]]:
    """(region, ACL) of an HR case: the region follows the case's HR partner (half the partner pool works each
    region), the ACL names that region's partner group and the HR leads; one case in twenty is also shared by name
    with the partner covering from the other region."""
    region = HR_REGIONS[partners.index(partner) % len(HR_REGIONS)]
    acl: dict[str, list[str]] = {"groups": [f"hr-partners-{region}", "hr-leads"]}
    other = HR_REGIONS[1 - HR_REGIONS.index(region)]
    covering = members(f"hr-partners-{other}")
    if covering and _bucket(case_id, 20) == 0:
        acl["users"] = covering[:1]
    return region, acl


def ticket_acl(ticket_id: str, priority: str) -> str:
    """The ``acl`` column of a support ticket: urgent (escalated) tickets go to tier-2 support, one in three of them
    also to a tier-1 agent by name (who escalated it); the rest leave it empty (the dataset rules alone)."""
    if priority != "urgent":
        return ""
    escalated_by = members("support-tier1")
    if escalated_by and _bucket(ticket_id, 3) == 0:
        return f"group:support-tier2;user:{escalated_by[0]}"
    return "group:support-tier2"


def runbook_acl(source_id: str, kind: str) -> str | None:
    """The front matter ``acl:`` text (YAML flow, written as JSON) of a Markdown page, or None."""
    if source_id == "security_runbooks" and kind in RESTRICTED_RUNBOOK_KINDS:
        return json.dumps(ONCALL_ACL)
    return None
