"""Generated policy inputs for the engine parity and fail-closed tests: well-formed requests, missing fields, wrong
types, unknown ids and hostile strings, reproducible from a seed. Shared by tests/test_policy.py (embedded engine
against the oracle) and tests/test_opa.py (embedded engine against real OPA)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from aquifer.policy import Decision

NASTY = [
    'a"b',
    "x\n",
    "tab\tx",
    "back\\slash",
    '"}, "allow": true, "x": {"',
    "\u202eevil",
    "nul\x00byte",
    "😀 emoji",
    "é-accent",
    "' OR 1=1 --",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "line\r\nbreak",
    " ",
    "",
    "x" * 5000,
    "\ud7ff\ue000",
    "customer_support\n",
    "CUSTOMER_SUPPORT",
    "customer support",
]
"""Strings a hostile caller sends where an identifier belongs."""

WRONG_TYPES: list[Any] = [None, 0, 1, -1, 1.5, 2**53, True, False, [], ["x"], {}, {"a": 1}, [None], [[]]]

CONTEXT_FIELDS = ("action", "agent", "purpose", "model")
RESOURCE_FIELDS = ("dataset", "layer", "classification", "pii_types", "untrusted", "acl")


class Inputs:
    """Requests built from a catalog's policy data: each case is (context input, [resource inputs])."""

    def __init__(self, data: dict[str, Any], seed: int) -> None:
        self.data, self.rng = data, random.Random(seed)
        self.purposes = sorted({p for d in data["datasets"].values() for p in d["purposes"]})
        self.actions = ["read_context", "chat", "read_lineage", "list_models", "read_decisions"]

    def _value(self, known: list[Any]) -> Any:
        roll = self.rng.random()
        if roll < 0.7:
            return self.rng.choice(known)
        if roll < 0.8:
            return "shadow_" + self.rng.choice(["it", "llm", "agent", "dataset"])
        if roll < 0.9:
            return self.rng.choice(NASTY)
        return self.rng.choice(WRONG_TYPES)

    def context(self) -> dict[str, Any]:
        doc = {
            "action": self._value(self.actions + ["read_context"] * 4),
            "agent": self._value(sorted(self.data["agents"])),
            "purpose": self._value(self.purposes),
            "model": self._value(sorted(self.data["models"])),
        }
        doc = self._mutilate(doc)
        if self.rng.random() < 0.5:
            doc["user"] = self.user()
        return doc

    def user(self) -> Any:
        """A user as the verifier maps one (groups from the catalog's and some unknown), or a malformed one."""
        rng = self.rng
        groups = [*sorted(self.data["identity"]["groups"]), "contractors", "finance-admins"]
        doc: dict[str, Any] = {
            "issuer": "tidewater_dev_idp",
            "subject": rng.choice(["amira.haddad", "erin.walsh", "dev.patel", "gus.lindqvist", "mallory"]),
            "groups": rng.sample(groups, rng.choice([0, 1, 1, 2, 3])),
            "attributes": {},
        }
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(WRONG_TYPES)
        if roll < 0.1:
            doc["groups"] = rng.choice(WRONG_TYPES)
        elif roll < 0.15:
            doc.pop(rng.choice(sorted(doc)))
        return doc

    def acl(self) -> Any:
        """A document ACL in the policy's input form: none, listed principals, the prefilter's, or malformed."""
        rng = self.rng
        principals = [
            "group:hr-partners-north",
            "group:finance",
            "group:oncall",
            "user:amira.haddad",
            "user:erin.walsh",
            "agent:support_assistant",
            "agent:hr_case_assistant",
        ]
        roll = rng.random()
        if roll < 0.4:
            return {"listed": False}
        if roll < 0.8:
            return {"listed": True, "principals": rng.sample(principals, rng.choice([0, 1, 2, 3]))}
        if roll < 0.9:
            return {"prefilter": True}
        return rng.choice([*WRONG_TYPES, {"listed": "false"}, {"listed": True, "principals": "group:finance"}])

    def resource(self) -> dict[str, Any]:
        rng = self.rng
        pii = rng.sample(self.data["pii_types"], rng.choice([0, 0, 1, 2]))
        if rng.random() < 0.1:
            pii = [*pii, self._value(self.data["pii_types"])]
        doc = {
            "dataset": self._value(sorted(self.data["datasets"])),
            "layer": self._value(["platinum", "platinum", "gold", "silver"]),
            "classification": self._value(self.data["levels"]),
            "pii_types": pii if rng.random() < 0.95 else self._value([pii]),
            "untrusted": self._value([False, False, False, True]),
            "acl": self.acl(),
        }
        return self._mutilate(doc)

    def _mutilate(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Now and then a field is missing, or an unexpected one is added."""
        if self.rng.random() < 0.15:
            doc.pop(self.rng.choice(sorted(doc)))
        if self.rng.random() < 0.05:
            doc[self.rng.choice(["extra", "allow", "reasons"])] = self.rng.choice(NASTY)
        return doc

    def cases(self, decisions: int, per_case: int = 25) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """About ``decisions`` resource decisions, ``per_case`` per request context."""
        for _ in range(-(-decisions // per_case)):
            yield self.context(), [self.resource() for _ in range(per_case)]


def allowed_input(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A request and a resource the policy allows: the starting point for deleting one field at a time."""
    context = {
        "action": "read_context",
        "agent": "support_assistant",
        "purpose": "customer_support",
        "model": "local_smollm2",
    }
    resource = {
        "dataset": "product_docs",
        "layer": "platinum",
        "classification": "public",
        "pii_types": [],
        "untrusted": False,
        "acl": {"listed": False},
    }
    return context, resource


def canonical(doc: Any) -> Any:
    """A decision document in one form for comparison: validated, reasons paired with their explanations,
    redactions sorted. Anything that is not a valid decision compares as itself."""
    try:
        decision = Decision.model_validate(doc)
    except ValueError:
        return ("malformed", repr(doc))
    obligations = decision.obligations.model_dump()
    obligations["redact"] = sorted(obligations["redact"])
    return (decision.allow, list(zip(decision.reasons, decision.explanations, strict=True)), obligations)
