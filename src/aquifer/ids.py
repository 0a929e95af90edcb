"""The shapes of the ids Aquifer accepts: one definition, used by the catalog schema and at every entry point.

An identifier (agent, model, dataset, purpose, role, action) is lower-case ASCII: a letter, then letters, digits or
``_``, 2 to 63 characters. Anything else is refused where it enters (422 naming the field, 400 on the OpenAI
routes), before any policy call, and the catalog refuses such ids at load: ids reach the policy engines only in
this shape, so no quote, control character or markup can change what a rule or a log line says.

>>> is_identifier("customer_support"), is_identifier('a"b'), is_identifier("x\\n")
(True, False, False)
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{1,62}$"
CHUNK_ID_PATTERN = r"^(gld|plt)_[0-9a-f]{32}$"
"""A chunk id (``gld_`` + 32 hex digits) or the id of its platinum row (``plt_`` ...)."""
DECISION_ID_PATTERN = r"^dec_[0-9a-f]{32}$"

PRINCIPAL_KINDS = ("group", "user", "agent")
PRINCIPAL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+=:/-]{0,199}$"
"""The name part of an access-control principal: an IdP group or user id as IdPs write them (``hr-partners``,
``alice@tidewater.example``, an Entra object id, ``CN=Finance``-style names without spaces), up to 200 characters.
No space, quote, backslash, comma, semicolon or control character, so a principal is safe in a JSON document, a
SQL literal and a list separated by ``;``."""
PRINCIPAL_PATTERN = r"^(group|user|agent):[A-Za-z0-9][A-Za-z0-9._@+=:/-]{0,199}$"
"""An access-control principal as data and policy carry it: ``group:<name>``, ``user:<subject>`` or
``agent:<agent id>``."""

# fullmatch without anchors: Python's `$` also matches before a trailing newline (pydantic's patterns run on Rust's
# regex engine, where it does not)
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN.removeprefix("^").removesuffix("$"))
_PRINCIPAL = re.compile(PRINCIPAL_PATTERN.removeprefix("^").removesuffix("$"))
_PRINCIPAL_NAME = re.compile(PRINCIPAL_NAME_PATTERN.removeprefix("^").removesuffix("$"))

Identifier = Annotated[
    str,
    Field(
        pattern=IDENTIFIER_PATTERN,
        description="An identifier: a lower-case letter, then lower-case letters, digits or _ (2-63 characters)",
    ),
]


def is_identifier(value: Any) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def is_principal(value: Any) -> bool:
    """``group:<name>``, ``user:<subject>`` or ``agent:<id>``, the name in :data:`PRINCIPAL_NAME_PATTERN`.

    >>> is_principal("group:hr-partners-north"), is_principal("user:alice@tidewater.example"), is_principal("user:a b")
    (True, True, False)
    """
    return isinstance(value, str) and _PRINCIPAL.fullmatch(value) is not None


def is_principal_name(value: Any) -> bool:
    return isinstance(value, str) and _PRINCIPAL_NAME.fullmatch(value) is not None


def principal(kind: str, name: str) -> str:
    """The principal of a group, user or agent name; ValueError when the name cannot be one.

    >>> principal("group", "finance")
    'group:finance'
    """
    if kind not in PRINCIPAL_KINDS:
        msg = f"{kind!r} is not a principal kind ({', '.join(PRINCIPAL_KINDS)})"
        raise ValueError(msg)
    if not is_principal_name(name):
        msg = f"{name!r} cannot name a {kind}: 1-200 characters of letters, digits and ._@+=:/- (no spaces)"
        raise ValueError(msg)
    return f"{kind}:{name}"
