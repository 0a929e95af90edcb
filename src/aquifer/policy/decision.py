"""What the policy is asked and what it answers: one request context, resources described by their class, and a
decision document per resource.

A resource is described only by the attributes the policy reads (its *class*), never by its text or id. That keeps
every decision a pure function of (request context, class, policy revision), which is what makes decisions cacheable
and turns the policy into a search prefilter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

POLICY_ENGINE_UNAVAILABLE = "policy_engine_unavailable"
"""The reason code of every denial that the policy itself did not make: engine error, timeout, unreachable server,
malformed answer, policy that fails to compile. Fail closed."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks, for what, through which model. ``input.agent``, ``input.purpose``, ``input.model``."""

    agent: str
    purpose: str
    model: str

    def as_input(self) -> dict[str, Any]:
        return {"agent": self.agent, "purpose": self.purpose, "model": self.model}


@dataclass(frozen=True, slots=True)
class Resource:
    """The class of a chunk: every attribute of it the policy may read (``input.resource``).

    >>> Resource("hr_case_notes", "confidential", pii_types=("phone", "email")).pii_types
    ('email', 'phone')
    """

    dataset: str
    classification: str
    layer: str = "platinum"
    pii_types: tuple[str, ...] = ()
    untrusted: bool = False

    def __post_init__(self) -> None:
        # One canonical form per class, so equal classes share a cache entry.
        object.__setattr__(self, "pii_types", tuple(sorted(set(self.pii_types))))

    def as_input(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "layer": self.layer,
            "classification": self.classification,
            "pii_types": list(self.pii_types),
            "untrusted": self.untrusted,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], *, layer: str = "platinum") -> Resource:
        """The class of a platinum (or gold) row as the lake stores it (platinum rows are trusted by certification;
        gold rows carry their own ``untrusted`` flag)."""
        return cls(
            dataset=str(row["dataset"]),
            classification=str(row["classification"]),
            layer=layer,
            pii_types=tuple(row.get("pii_types") or ()),
            untrusted=bool(row.get("untrusted", False)),
        )


class Obligations(BaseModel):
    """What must be done to a resource before it is served."""

    model_config = ConfigDict(extra="allow", frozen=True)

    redact: list[str] = Field(default_factory=list, description="PII types to replace with typed placeholders")
    label: str | None = Field(default=None, description="e.g. 'uncertified' for gold served to analysts")


class Decision(BaseModel):
    """The policy's answer for one resource (or for the request). Validated: a malformed answer is not a decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: StrictBool
    reasons: list[str] = Field(default_factory=list)
    explanations: list[str] = Field(default_factory=list)
    obligations: Obligations = Field(default_factory=Obligations)

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if self.allow and self.reasons:
            msg = f"allow is true but reasons are given: {self.reasons}"
            raise ValueError(msg)
        if not self.allow and not self.reasons:
            msg = "allow is false without a reason"
            raise ValueError(msg)
        return self

    @classmethod
    def unavailable(cls, why: str) -> Decision:
        """The fail-closed denial: no decision could be made."""
        return cls(allow=False, reasons=[POLICY_ENGINE_UNAVAILABLE], explanations=[why])


@dataclass(frozen=True, slots=True)
class BatchDecision:
    """One request's decisions: the request-level one, then one per resource, in order, under one revision."""

    context: RequestContext
    revision: str
    request: Decision
    resources: list[Decision] = field(default_factory=list)

    @property
    def allowed(self) -> list[int]:
        return [i for i, d in enumerate(self.resources) if d.allow]


def unique(resources: Iterable[Resource]) -> list[Resource]:
    """Distinct classes, first-seen order."""
    return list(dict.fromkeys(resources))
