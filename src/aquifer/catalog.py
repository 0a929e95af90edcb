"""The governance catalog, one YAML file per entry:

- ``catalog/sources/<id>.yaml``: the data (owner, classification, allowed purposes, PII, retention);
- ``catalog/agents/<id>.yaml``: who asks (roles, clearance, purposes, the models it may use);
- ``catalog/models/<id>.yaml``: where context goes (OpenAI-compatible endpoint, locality, classification ceiling);
- ``catalog/classification.yaml``: the shared vocabulary;
- ``catalog/identity.yaml``: the IdPs whose user tokens are trusted, how their claims map, and what each IdP group
  grants (clearance, roles). Absent: no user token is trusted (every user-bound request is refused).

Loaded and validated by one pydantic schema; an invalid entry fails loudly with the file, the field and the reason
(:class:`CatalogError`). Agent credentials are not here: only their hashes, in :mod:`aquifer.credentials`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aquifer.ids import IDENTIFIER_PATTERN, PRINCIPAL_NAME_PATTERN
from aquifer.medallion.readers import READERS
from aquifer.pii.types import PII_TYPES

_M = TypeVar("_M", bound=BaseModel)

_ID = IDENTIFIER_PATTERN
_DURATION = re.compile(r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?$")


class Classification(StrEnum):
    """Sensitivity levels, ordered: public < internal < confidential < restricted."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"

    @property
    def rank(self) -> int:
        return _RANK[self]

    # str already defines every comparison, so all four are overridden (total_ordering would keep str's).
    def __lt__(self, other: str) -> bool:
        return self.rank < Classification(other).rank

    def __le__(self, other: str) -> bool:
        return self.rank <= Classification(other).rank

    def __gt__(self, other: str) -> bool:
        return self.rank > Classification(other).rank

    def __ge__(self, other: str) -> bool:
        return self.rank >= Classification(other).rank


_RANK: dict[str, int] = {level.value: i for i, level in enumerate(Classification)}


def parse_duration(value: str) -> dt.timedelta:
    """ISO 8601 calendar duration (``P365D``, ``P2Y``, ``P6M``, ``P1Y6M``) to a timedelta.

    Years count 365 days and months 30: SLAs and retention are policy figures, not calendar arithmetic.

    >>> parse_duration("P1Y2W")
    datetime.timedelta(days=379)
    """
    match = _DURATION.match(value)
    if not match or not any(match.groupdict().values()):
        msg = f"{value!r} is not an ISO 8601 duration such as P90D, P6M or P2Y"
        raise ValueError(msg)
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    days = parts["years"] * 365 + parts["months"] * 30 + parts["weeks"] * 7 + parts["days"]
    return dt.timedelta(days=days)


Duration = Annotated[str, Field(description="ISO 8601 duration, e.g. P90D, P2Y")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Owner(_Strict):
    team: str = Field(min_length=1)
    contact: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="Team e-mail address")


class PiiExpectation(_Strict):
    expected: bool
    types: list[str] = Field(default_factory=list)
    allowed_purposes: list[Annotated[str, Field(pattern=_ID)]] = Field(
        default_factory=list, description="Purposes for which a pii_reader may see this PII unredacted"
    )

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        unknown = sorted(set(types) - set(PII_TYPES))
        if unknown:
            msg = f"unknown PII type(s) {unknown}; known: {list(PII_TYPES)}"
            raise ValueError(msg)
        return types

    @model_validator(mode="after")
    def _types_iff_expected(self) -> PiiExpectation:
        if self.expected and not self.types:
            msg = "expected: true needs the PII types that are expected"
            raise ValueError(msg)
        if not self.expected and self.types:
            msg = "types are listed but expected is false"
            raise ValueError(msg)
        return self


class FieldMap(_Strict):
    """Which field of a structured record (JSON lines, CSV) holds each document attribute."""

    id: str = "id"
    title: str = "title"
    body: str = "body"
    updated_at: str = "updated_at"
    language: str | None = None
    owner: str | None = None
    acl: str = Field(
        default="acl",
        description="The field (Markdown front matter key, JSON key, CSV column) holding the document's ACL; read "
        "only when the source's document_acl is optional or required",
    )


_PrincipalName = Annotated[str, Field(pattern=PRINCIPAL_NAME_PATTERN)]


class Access(_Strict):
    """Who may read a dataset at all (the IdP groups and user ids, as the user token's claims name them); every
    other rule still applies. An absent ``access`` leaves the dataset to the other rules."""

    groups: list[_PrincipalName] = Field(default_factory=list)
    users: list[_PrincipalName] = Field(default_factory=list)
    agents: list[Annotated[str, Field(pattern=_ID)]] = Field(
        default_factory=list, description="Agents that may read it acting for themselves (acts_for: self/either)"
    )

    @model_validator(mode="after")
    def _someone(self) -> Access:
        if not (self.groups or self.users or self.agents):
            msg = "lists nobody (groups, users and agents are all empty); remove access to leave the dataset open"
            raise ValueError(msg)
        return self

    def principals(self) -> list[str]:
        return sorted(
            [f"group:{g}" for g in self.groups]
            + [f"user:{u}" for u in self.users]
            + [f"agent:{a}" for a in self.agents]
        )


class Source(_Strict):
    id: Annotated[str, Field(pattern=_ID)]
    description: str = Field(min_length=1)
    owner: Owner
    format: str = Field(description="A reader of aquifer.medallion.readers.READERS: markdown, jsonl or csv")
    landing_path: str = Field(min_length=1, description="Folder under the landing zone")
    classification: Classification
    allowed_purposes: list[Annotated[str, Field(pattern=_ID)]] = Field(min_length=1)
    pii: PiiExpectation
    pii_min_detection_rate: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of documents of a PII-bearing source in which the detector must find an expected type; "
        "below it the silver pii_coverage check fails (a silent detector is worse than a noisy one).",
    )
    fields: FieldMap = Field(default_factory=FieldMap)
    access: Access | None = None
    document_acl: Literal["none", "optional", "required"] = Field(
        default="none",
        description="Per-document ACLs (fields.acl): none (not read), optional (a document without one is governed "
        "by the dataset rules alone) or required (a document without a readable ACL is quarantined)",
    )
    retention: Duration
    freshness_sla: Duration

    @field_validator("retention", "freshness_sla")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("landing_path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            msg = "must be a folder inside the landing zone (relative, no '..')"
            raise ValueError(msg)
        return value

    @property
    def freshness(self) -> dt.timedelta:
        return parse_duration(self.freshness_sla)

    @property
    def retention_period(self) -> dt.timedelta:
        return parse_duration(self.retention)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in READERS:
            msg = f"{value!r} is not a source format Aquifer reads; known: {', '.join(sorted(READERS))}"
            raise ValueError(msg)
        return value

    @property
    def extensions(self) -> tuple[str, ...]:
        return READERS[self.format].extensions


class Locality(StrEnum):
    """Where a model runs, and so who else could read what it is sent."""

    LOCAL = "local"  # on infrastructure the organisation operates
    SOVEREIGN_CLOUD = "sovereign_cloud"  # a provider under the organisation's jurisdiction and contract
    EXTERNAL = "external"  # a third-party API


class Agent(_Strict):
    """An identity that asks for context. What it may see is decided by policy, from these attributes."""

    id: Annotated[str, Field(pattern=_ID)]
    description: str = Field(min_length=1)
    owner: Owner
    roles: list[Annotated[str, Field(pattern=_ID)]] = Field(default_factory=list)
    clearance: Classification
    purposes: list[Annotated[str, Field(pattern=_ID)]] = Field(min_length=1)
    models: list[Annotated[str, Field(pattern=_ID)]] = Field(
        min_length=1, description="Models this agent may send context to; the first is its default"
    )
    instructions: str | None = Field(
        default=None, min_length=1, description="The agent's system prompt (`aquifer ask`, the example agents)"
    )
    acts_for: Literal["self", "user", "either"] = Field(
        default="self",
        description="For whom the agent asks: itself (no user token), a user (an X-Aquifer-User-Token is required) "
        "or either",
    )

    @property
    def default_model(self) -> str:
        return self.models[0]


class Model(_Strict):
    """A model endpoint context may be sent to (any OpenAI-compatible server)."""

    id: Annotated[str, Field(pattern=_ID)]
    description: str = Field(min_length=1)
    owner: Owner
    endpoint: str = Field(pattern=r"^https?://\S+$", description="OpenAI-compatible base URL, e.g. http://host:8080/v1")
    served_name: str = Field(min_length=1, description="The model name the endpoint expects in requests")
    locality: Locality
    max_classification: Classification = Field(description="The highest classification this model may receive")
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the endpoint's API key (sent as a bearer token). The agent's "
        "Aquifer token is never forwarded.",
    )
    follow_up_context: Literal["system", "user"] = Field(
        default="system",
        description="Where a conversation's later context blocks go: a system message before the turn (default), "
        "or at the start of the turn's user message, for chat templates that allow a system message only first",
    )
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Longest wait for the endpoint's answer (or between two streamed "
        "chunks) before the gateway answers 504",
    )


class Vocabulary(_Strict):
    levels: list[Classification]
    pii_floor: dict[str, Classification]

    @model_validator(mode="after")
    def _consistent(self) -> Vocabulary:
        if self.levels != list(Classification):
            msg = f"levels must be {[c.value for c in Classification]} in that order"
            raise ValueError(msg)
        missing = sorted(set(PII_TYPES) - set(self.pii_floor))
        if missing:
            msg = f"pii_floor lacks PII type(s) {missing}"
            raise ValueError(msg)
        return self


SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""The asymmetric JWS algorithms an issuer may be trusted for: no ``none``, no shared-secret HS*."""

_URL = r"^https?://[^\s]+$"


class ClaimMap(_Strict):
    """Which claims of a user token say who the user is."""

    subject: str = Field(
        default="sub",
        min_length=1,
        description="The claim naming the user, as ACLs and access lists name users (user:<value>): sub, "
        "preferred_username, email, oid...",
    )
    groups: str = Field(default="groups", min_length=1, description="The claim listing the user's IdP groups")
    attributes: dict[Annotated[str, Field(pattern=_ID)], str] = Field(
        default_factory=dict, description="input.user.attributes.<name> from the claim named here (text claims)"
    )


class Issuer(_Strict):
    """An IdP whose user tokens Aquifer trusts (OIDC: keys from discovery's jwks_uri)."""

    id: Annotated[str, Field(pattern=_ID)]
    issuer: str = Field(pattern=_URL, description="The exact iss claim, and the base of the discovery document")
    audiences: list[str] = Field(min_length=1, description="Accepted aud values (Aquifer's client or API id)")
    algorithms: list[Literal[SIGNING_ALGORITHMS]] = Field(min_length=1)  # type: ignore[valid-type]
    jwks_uri: str | None = Field(
        default=None,
        pattern=_URL,
        description="The JWKS; default: jwks_uri of <issuer>/.well-known/openid-configuration",
    )
    claims: ClaimMap = Field(default_factory=ClaimMap)
    leeway_s: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat")
    jwks_ttl_s: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="How long fetched keys are used without refetching; with the IdP unreachable past it, "
        "user-bound requests fail closed (503)",
    )
    development_only: bool = Field(default=False, description="Refused when AQUIFER_ENVIRONMENT=production")


class GroupGrant(_Strict):
    """What membership of an IdP group grants a user; the user's clearance is the highest of their groups'."""

    clearance: Classification | None = None
    roles: list[Annotated[str, Field(pattern=_ID)]] = Field(default_factory=list)


class Identity(_Strict):
    """``catalog/identity.yaml``: trusted issuers and what IdP groups grant."""

    issuers: list[Issuer] = Field(default_factory=list)
    default_clearance: Classification = Field(
        default=Classification.PUBLIC, description="The clearance of a user whose groups grant none"
    )
    groups: dict[_PrincipalName, GroupGrant] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct(self) -> Identity:
        for attr in ("id", "issuer"):
            values = [getattr(i, attr) for i in self.issuers]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                msg = f"issuers: {attr} {dupes} listed more than once"
                raise ValueError(msg)
        return self

    def issuer(self, iss: str) -> Issuer | None:
        return next((i for i in self.issuers if i.issuer == iss), None)


class CatalogError(ValueError):
    """An invalid catalog file. The message names the file, the field and the reason."""

    def __init__(self, path: Path, field: str, reason: str) -> None:
        self.path, self.field, self.reason = path, field, reason
        super().__init__(f"{path}: {field}: {reason}")


class Catalog(_Strict):
    sources: dict[str, Source]
    vocabulary: Vocabulary
    agents: dict[str, Agent] = Field(default_factory=dict)
    models: dict[str, Model] = Field(default_factory=dict)
    identity: Identity = Field(default_factory=Identity)

    def __iter__(self) -> Iterator[Source]:  # type: ignore[override]
        return iter(self.sources.values())

    def source(self, source_id: str) -> Source:
        try:
            return self.sources[source_id]
        except KeyError:
            msg = f"unknown source {source_id!r}; the catalog has {sorted(self.sources)}"
            raise KeyError(msg) from None

    def agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            msg = f"unknown agent {agent_id!r}; the catalog has {sorted(self.agents)}"
            raise KeyError(msg) from None

    def model(self, model_id: str) -> Model:
        try:
            return self.models[model_id]
        except KeyError:
            msg = f"unknown model {model_id!r}; the catalog has {sorted(self.models)}"
            raise KeyError(msg) from None

    def policy_data(self) -> dict[str, Any]:
        """The registries as the policy sees them: ``data.aquifer.catalog`` in both engines.

        Everything a decision may depend on, and nothing else: editing a description does not change the policy
        revision, editing a purpose does.
        """
        return {
            "levels": [level.value for level in self.vocabulary.levels],
            "pii_types": sorted(PII_TYPES),
            "agents": {
                a.id: {
                    "roles": sorted(a.roles),
                    "clearance": a.clearance.value,
                    "purposes": sorted(a.purposes),
                    "models": list(a.models),
                    "acts_for": a.acts_for,
                }
                for a in self.agents.values()
            },
            "models": {
                m.id: {"locality": m.locality.value, "max_classification": m.max_classification.value}
                for m in self.models.values()
            },
            "datasets": {
                s.id: {
                    "classification": s.classification.value,
                    "purposes": sorted(s.allowed_purposes),
                    "pii_purposes": sorted(s.pii.allowed_purposes),
                    "access": {
                        "restricted": s.access is not None,
                        "principals": s.access.principals() if s.access else [],
                    },
                }
                for s in self.sources.values()
            },
            "identity": {
                "default_clearance": self.identity.default_clearance.value,
                "groups": {
                    name: {"roles": sorted(g.roles)} | ({"clearance": g.clearance.value} if g.clearance else {})
                    for name, g in self.identity.groups.items()
                },
            },
        }


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogError(path, "<file>", f"not valid YAML: {exc}") from exc


def _validate(model: type[_M], data: Any, path: Path) -> _M:
    if not isinstance(data, dict):
        raise CatalogError(path, "<file>", "expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<file>"
        raise CatalogError(path, where, first["msg"]) from exc


def load_catalog(catalog_dir: Path) -> Catalog:
    """Load and validate ``catalog_dir``.

    >>> from aquifer.settings import PROJECT_ROOT
    >>> "hr_case_notes" in load_catalog(PROJECT_ROOT / "catalog").sources
    True
    """
    vocabulary = _validate(
        Vocabulary, _load_yaml(catalog_dir / "classification.yaml"), catalog_dir / "classification.yaml"
    )
    sources: dict[str, Source] = {}
    files = sorted((catalog_dir / "sources").glob("*.yaml"))
    if not files:
        raise CatalogError(catalog_dir / "sources", "<folder>", "no source entries (*.yaml)")
    for path in files:
        source = _validate(Source, _load_yaml(path), path)
        if source.id != path.stem:
            raise CatalogError(path, "id", f"must match the file name ({path.stem!r}), got {source.id!r}")
        sources[source.id] = source
    agents = _load_entries(Agent, catalog_dir / "agents")
    models = _load_entries(Model, catalog_dir / "models")
    for source in sources.values():
        for i, agent_id in enumerate(source.access.agents if source.access else []):
            if agent_id not in agents:
                path = catalog_dir / "sources" / f"{source.id}.yaml"
                raise CatalogError(
                    path, f"access.agents.{i}", f"unknown agent {agent_id!r}; registered: {sorted(agents)}"
                )
    identity_file = catalog_dir / "identity.yaml"
    identity = _validate(Identity, _load_yaml(identity_file), identity_file) if identity_file.exists() else Identity()
    for agent in agents.values():
        for i, model_id in enumerate(agent.models):
            if model_id not in models:
                path = catalog_dir / "agents" / f"{agent.id}.yaml"
                raise CatalogError(path, f"models.{i}", f"unknown model {model_id!r}; registered: {sorted(models)}")
    return Catalog(sources=sources, vocabulary=vocabulary, agents=agents, models=models, identity=identity)


_E = TypeVar("_E", Agent, Model)


def _load_entries(model: type[_E], folder: Path) -> dict[str, _E]:
    """One entry per ``<id>.yaml`` in ``folder``; a missing folder is an empty registry (every request denied)."""
    entries: dict[str, _E] = {}
    for path in sorted(folder.glob("*.yaml")):
        entry = _validate(model, _load_yaml(path), path)
        if entry.id != path.stem:
            raise CatalogError(path, "id", f"must match the file name ({path.stem!r}), got {entry.id!r}")
        entries[entry.id] = entry
    return entries
