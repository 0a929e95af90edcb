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

# fullmatch without anchors: Python's `$` also matches before a trailing newline (pydantic's patterns run on Rust's
# regex engine, where it does not)
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN.removeprefix("^").removesuffix("$"))

Identifier = Annotated[
    str,
    Field(
        pattern=IDENTIFIER_PATTERN,
        description="An identifier: a lower-case letter, then lower-case letters, digits or _ (2-63 characters)",
    ),
]


def is_identifier(value: Any) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None
