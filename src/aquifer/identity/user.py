"""The user a request acts for, as verified from their token: what the policy sees as ``input.user``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aquifer.ids import is_identifier, is_principal_name, principal

MAX_GROUPS = 500
"""More groups than this in one token is refused (Entra ID, for one, sends an overage claim past 200)."""
MAX_ATTRIBUTE_CHARS = 256


@dataclass(frozen=True, slots=True)
class User:
    """A verified user: ``issuer`` is the issuer's id in ``catalog/identity.yaml``, ``subject`` the value of its
    subject claim, ``groups`` their IdP groups, ``attributes`` the mapped attribute claims. Canonical (sorted,
    deduplicated), so equal users share decision-cache entries; a change of groups is a different user.

    >>> u = User("tidewater_dev_idp", "amira.haddad", ("hr-partners-north", "employees"))
    >>> u.principals
    ('group:employees', 'group:hr-partners-north', 'user:amira.haddad')
    >>> u.as_input()["principals"] == list(u.principals)
    True
    """

    issuer: str
    subject: str
    groups: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(sorted(set(self.groups))))
        object.__setattr__(self, "attributes", tuple(sorted(dict(self.attributes).items())))

    @property
    def principals(self) -> tuple[str, ...]:
        """Whom ACLs and access lists may name to admit this user: ``user:<subject>`` and ``group:<g>`` for each
        group (sorted)."""
        return tuple(sorted([principal("user", self.subject), *(principal("group", g) for g in self.groups)]))

    def invalid_fields(self) -> list[str]:
        """The fields that may not be shown to a policy engine (empty when all are well-formed)."""
        bad = []
        if not is_identifier(self.issuer):
            bad.append("user.issuer")
        if not is_principal_name(self.subject):
            bad.append("user.subject")
        if len(self.groups) > MAX_GROUPS or not all(is_principal_name(g) for g in self.groups):
            bad.append("user.groups")
        if not all(is_identifier(k) and _attribute_ok(v) for k, v in self.attributes):
            bad.append("user.attributes")
        return bad

    def as_input(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "subject": self.subject,
            "groups": list(self.groups),
            "principals": list(self.principals),
            "attributes": dict(self.attributes),
        }

    @property
    def ref(self) -> str:
        """How decision records name the user: ``<issuer id>:<subject>`` (never the token)."""
        return f"{self.issuer}:{self.subject}"


def _attribute_ok(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ATTRIBUTE_CHARS
        and not any(ord(c) < 32 or ord(c) == 127 for c in value)
    )
