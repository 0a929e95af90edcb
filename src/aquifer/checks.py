"""What a blocking check answers. Every check is a library function returning a :class:`CheckOutcome` (the layers'
in :mod:`aquifer.medallion.checks`, the index's in :mod:`aquifer.index.sync`, the audit table's in
:mod:`aquifer.audit.chain`); the Dagster asset checks in ``pipelines/`` only wrap them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
