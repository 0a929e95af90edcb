"""What the policy is asked and what it answers: one request context, resources described by their class, and a
decision document per resource.

A resource is described only by the attributes the policy reads (its *class*), never by its text or id. That keeps
every decision a pure function of (request context, class, policy revision), which is what makes decisions cacheable
and turns the policy into a search prefilter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from aquifer.codes import INVALID_INPUT as INVALID_INPUT  # re-exported; aquifer.codes says what each code means
from aquifer.codes import POLICY_ENGINE_UNAVAILABLE as POLICY_ENGINE_UNAVAILABLE
from aquifer.identity.user import User
from aquifer.ids import is_identifier, is_principal

ACTIONS = ("read_context", "chat", "read_lineage", "list_models", "read_decisions")
"""What a caller can ask to do (``input.action``); the policy (``action.rego``) says who may do which, and what each
one needs."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks, to do what, for which purpose, through which model, on behalf of whom: ``input.agent``,
    ``input.action``, ``input.purpose``, ``input.model``, ``input.user``. A purpose or model the action does not
    need is None, and so is the user of an agent acting for itself (each left out of the input).

    >>> RequestContext("audit_reviewer", None, None, action="read_decisions").as_input()
    {'action': 'read_decisions', 'agent': 'audit_reviewer'}
    """

    agent: str
    purpose: str | None
    model: str | None
    action: str = "read_context"
    user: User | None = None

    def as_input(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "agent": self.agent}
        if self.purpose is not None:
            doc["purpose"] = self.purpose
        if self.model is not None:
            doc["model"] = self.model
        if self.user is not None:
            doc["user"] = self.user.as_input()
        return doc

    def invalid_fields(self) -> list[str]:
        """The fields that may not be shown to an engine (empty when the context may be sent to one)."""
        fields = {"action": self.action, "agent": self.agent, "purpose": self.purpose, "model": self.model}
        bad = [name for name, value in fields.items() if value is not None and not is_identifier(value)]
        return bad + (self.user.invalid_fields() if self.user is not None else [])

    @property
    def principals(self) -> tuple[str, ...]:
        """Whom the request is on behalf of, as access lists name principals: the user's (``user:<subject>``,
        ``group:<g>``) when the agent acts for one, else the agent's own (``agent:<id>``). The policy
        (``acl.rego``) derives the same set from the input; the index prefilter admits documents by it.

        >>> RequestContext("support_assistant", "customer_support", "local_smollm2").principals
        ('agent:support_assistant',)
        """
        return self.user.principals if self.user is not None else (f"agent:{self.agent}",)


@dataclass(frozen=True, slots=True)
class Resource:
    """The class of a chunk: every attribute of it the policy may read (``input.resource``).

    This class owns the attributes: their input document (:meth:`as_input`), the prefilter's class key, in Python
    (:attr:`key`) and as a polars expression (:meth:`key_expr`), from one definition, and the construction from a
    stored row (:meth:`from_row`). A new attribute is a new field here (text, ``tuple[str, ...]`` or ``bool``) and
    the Rego that reads it; the index stores it as a column of the same name.

    The document's access list (:attr:`acl`) is an attribute too, but not part of the class: documents carry
    their own ACLs, so classes stay few, and the prefilter admits documents by principal instead
    (:data:`ACL_AT_PREFILTER`): ``None`` for a document without an ACL, its principals otherwise.

    >>> r = Resource("hr_case_notes", "confidential", pii_types=("phone", "email"), acl=("group:hr-leads",))
    >>> r.pii_types, r.key
    (('email', 'phone'), 'hr_case_notes/platinum/confidential/email,phone/trusted')
    >>> r.as_input()["acl"], r.at_prefilter().as_input()["acl"]
    ({'listed': True, 'principals': ['group:hr-leads']}, {'prefilter': True})
    """

    dataset: str
    classification: str
    layer: str = "platinum"
    pii_types: tuple[str, ...] = ()
    untrusted: bool = field(default=False, metadata={"key": ("untrusted", "trusted")})
    acl: tuple[str, ...] | str | None = field(default=None, metadata={"class": False})

    def __post_init__(self) -> None:
        # One canonical form per class, so equal classes share a cache entry (lists sorted and deduplicated).
        for f in _class_fields(self):
            if _kind(f) == "list":
                object.__setattr__(self, f.name, tuple(sorted(set(getattr(self, f.name)))))
        if isinstance(self.acl, list | tuple):
            object.__setattr__(self, "acl", tuple(sorted(set(self.acl))))

    def at_prefilter(self) -> Resource:
        """This class as the prefilter asks about it: the document ACL deferred to the index (and the re-check)."""
        return replace(self, acl=ACL_AT_PREFILTER)

    @classmethod
    def kinds(cls) -> dict[str, str]:
        """Each class attribute's kind: ``text``, ``list`` (a tuple of texts) or ``flag`` (a bool)."""
        return {f.name: _kind(f) for f in _class_fields(cls)}

    @classmethod
    def columns(cls) -> list[str]:
        """The class attribute names, in class-key order (``dataset`` first)."""
        names = [f.name for f in _class_fields(cls)]
        return ["dataset", "layer", "classification", *(n for n in names if n not in _LEADING)]

    def invalid_fields(self) -> list[str]:
        """The attributes that may not be sent to an engine (empty when the resource may be)."""
        bad = []
        if not (
            self.acl is None
            or self.acl == ACL_AT_PREFILTER
            or (isinstance(self.acl, tuple) and len(self.acl) <= MAX_ACL and all(is_principal(p) for p in self.acl))
        ):
            bad.append("acl")
        for f in _class_fields(self):
            value, kind = getattr(self, f.name), _kind(f)
            if kind == "flag":
                ok = isinstance(value, bool)
            elif kind == "list":
                ok = all(is_identifier(v) for v in value)
            else:
                ok = is_identifier(value)
            if not ok:
                bad.append(f.name)
        return bad

    def as_input(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name in self.columns():
            value = getattr(self, name)
            doc[name] = list(value) if isinstance(value, tuple) else value
        if self.acl == ACL_AT_PREFILTER:
            doc["acl"] = {"prefilter": True}
        elif self.acl is None:
            doc["acl"] = {"listed": False}
        else:
            doc["acl"] = {"listed": True, "principals": list(self.acl)}
        return doc

    @property
    def key(self) -> str:
        """The string the prefilter matches: every attribute, in :meth:`columns` order."""
        by_name = {f.name: f for f in fields(self)}
        parts = []
        for name in self.columns():
            f, value = by_name[name], getattr(self, name)
            kind = _kind(f)
            if kind == "list":
                parts.append(",".join(value))
            elif kind == "flag":
                yes, no = _flag_labels(f)
                parts.append(yes if value else no)
            else:
                parts.append(value)
        return KEY_SEPARATOR.join(parts)

    @classmethod
    def key_expr(cls) -> Any:
        """:attr:`key` as a polars expression over a frame holding the attribute columns."""
        import polars as pl

        by_name = {f.name: f for f in fields(cls)}
        parts = []
        for name in cls.columns():
            f = by_name[name]
            kind = _kind(f)
            if kind == "list":
                parts.append(pl.col(name).list.sort().list.join(","))
            elif kind == "flag":
                yes, no = _flag_labels(f)
                parts.append(pl.when(pl.col(name)).then(pl.lit(yes)).otherwise(pl.lit(no)))
            else:
                parts.append(pl.col(name))
        return pl.concat_str(parts, separator=KEY_SEPARATOR)

    @classmethod
    def from_row(cls, row: dict[str, Any], **defaults: Any) -> Resource:
        """The resource of a stored row: an index row holds every attribute; a lake row may lack some (platinum rows
        have no ``layer`` or ``untrusted`` column), which then take ``defaults`` or the field's default.

        The ACL: an index row says whether the document lists one (``acl_listed``) and its principals (``acl``); a
        lake row holds ``acl`` (null: none). A row that says neither, with no ``acl`` default, is refused
        (KeyError): a document whose ACL is unknown is never taken for one without an ACL."""
        values: dict[str, Any] = {"acl": _row_acl(row, defaults)}
        for f in _class_fields(cls):
            value = row.get(f.name)
            if value is None:
                value = defaults.get(f.name, f.default)
            if value is MISSING:
                msg = f"the row has no {f.name!r}, which a resource class needs"
                raise KeyError(msg)
            kind = _kind(f)
            values[f.name] = tuple(value or ()) if kind == "list" else bool(value) if kind == "flag" else str(value)
        return cls(**values)


KEY_SEPARATOR = "/"
_LEADING = ("dataset", "layer", "classification")
ACL_AT_PREFILTER = "prefilter"
"""The :attr:`Resource.acl` of a class decided for the search prefilter (``input.resource.acl.prefilter``)."""
MAX_ACL = 1000
"""Principals one document's ACL may list."""
_NO_DEFAULT = object()


def _class_fields(cls: Any) -> list[Any]:
    return [f for f in fields(cls) if f.metadata.get("class", True)]


def _row_acl(row: dict[str, Any], defaults: dict[str, Any]) -> tuple[str, ...] | str | None:
    if isinstance(row.get("acl"), dict):  # the policy's input form (Resource.as_input)
        doc = row["acl"]
        if doc.get("prefilter") is True:
            return ACL_AT_PREFILTER
        return tuple(doc.get("principals") or ()) if doc.get("listed") is True else None
    if "acl_listed" in row:
        return tuple(row.get("acl") or ()) if row["acl_listed"] else None
    if "acl" in row:
        return None if row["acl"] is None else tuple(row["acl"])
    default = defaults.get("acl", _NO_DEFAULT)
    if default is _NO_DEFAULT:
        msg = "the row says nothing of its document's ACL (no acl or acl_listed), which a resource needs"
        raise KeyError(msg)
    return default  # type: ignore[no-any-return]


def _kind(f: Any) -> str:
    """How an attribute is stored and keyed: ``text``, ``list`` (tuple of texts) or ``flag`` (bool)."""
    kind = str(f.type)
    return "list" if kind.startswith("tuple") else "flag" if kind == "bool" else "text"


def _flag_labels(f: Any) -> tuple[str, str]:
    labels: tuple[str, str] = f.metadata.get("key", (f.name, f"not_{f.name}"))
    return labels


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
