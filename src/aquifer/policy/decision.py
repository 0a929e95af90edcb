"""What the policy is asked and what it answers: one request context, resources described by their class, and a
decision document per resource.

A resource is described only by the attributes the policy reads (its *class*), never by its text or id. That keeps
every decision a pure function of (request context, class, policy revision), which is what makes decisions cacheable
and turns the policy into a search prefilter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from aquifer.codes import INVALID_INPUT as INVALID_INPUT  # re-exported; aquifer.codes says what each code means
from aquifer.codes import POLICY_ENGINE_UNAVAILABLE as POLICY_ENGINE_UNAVAILABLE
from aquifer.ids import is_identifier

ACTIONS = ("read_context", "chat", "read_lineage", "list_models", "read_decisions")
"""What a caller can ask to do (``input.action``); the policy (``action.rego``) says who may do which, and what each
one needs."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks, to do what, for which purpose, through which model: ``input.agent``, ``input.action``,
    ``input.purpose``, ``input.model``. A purpose or model the action does not need is None (left out of the input).

    >>> RequestContext("audit_reviewer", None, None, action="read_decisions").as_input()
    {'action': 'read_decisions', 'agent': 'audit_reviewer'}
    """

    agent: str
    purpose: str | None
    model: str | None
    action: str = "read_context"

    def as_input(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "agent": self.agent}
        if self.purpose is not None:
            doc["purpose"] = self.purpose
        if self.model is not None:
            doc["model"] = self.model
        return doc

    def invalid_fields(self) -> list[str]:
        """The fields that are not identifiers (empty when the context may be sent to an engine)."""
        fields = {"action": self.action, "agent": self.agent, "purpose": self.purpose, "model": self.model}
        return [name for name, value in fields.items() if value is not None and not is_identifier(value)]


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

    def invalid_fields(self) -> list[str]:
        """The attributes that are not identifiers (empty when the class may be sent to an engine)."""
        bad = [name for name in ("dataset", "layer", "classification") if not is_identifier(getattr(self, name))]
        return bad + (["pii_types"] if not all(is_identifier(t) for t in self.pii_types) else [])

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

    @classmethod
    def invalid(cls, fields: Sequence[str]) -> Decision:
        """The denial for an input the engines are never shown: ``fields`` are not identifiers."""
        why = f"not an identifier, so never sent to the policy: {', '.join(fields)}"
        return cls(allow=False, reasons=[INVALID_INPUT], explanations=[why])


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
