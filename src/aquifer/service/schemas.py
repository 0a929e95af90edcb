"""The API's request and response models: one family per resource (OpenAPI at /docs is generated from these)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aquifer.ids import Identifier

if TYPE_CHECKING:
    from aquifer.catalog import Model


class ContextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000, pattern=r"\S", description="The question to ground (not blank)")
    purpose: Identifier = Field(description="The purpose the agent acts for (an identifier)")
    model: Identifier = Field(description="The registered model the context will be sent to (an identifier)")
    top_k: int = Field(default=8, ge=1, le=50, description="Chunks to return at most")
    max_tokens: int | None = Field(
        default=None, ge=1, le=100_000, description="Token budget for all chunk texts (embedding tokenizer)"
    )
    as_of: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Replay: an index version (integer) or an ISO 8601 time; the answer this agent would have "
        "received from the index as it was then",
    )


class Layered(BaseModel):
    id: str
    delta_version: int


class Receipt(BaseModel):
    """Where a chunk came from, and under which decision it was served."""

    source_uri: str = Field(description="Landing file, relative to the landing zone")
    source_sha256: str
    bronze: Layered
    silver: Layered
    gold: Layered
    platinum: Layered
    dagster_run_id: str
    embedding_model: str
    index_version: int
    policy_revision: str
    decision_id: str
    user: str | None = Field(
        default=None, description="The user the agent acted for (<issuer id>:<subject>), or null for the agent itself"
    )
    admitted_by: list[str] = Field(
        default_factory=list,
        description="The request's principals (user:, group:, agent:) that the chunk's document ACL or its dataset's "
        "access list names; empty when neither restricts it",
    )


class Redaction(BaseModel):
    type: str
    count: int


class Chunk(BaseModel):
    chunk_id: str
    text: str
    score: float
    dataset: str
    layer: str
    classification: str
    tokens: int
    redactions: list[Redaction]
    label: str | None = None
    receipt: Receipt


class Withheld(BaseModel):
    """Data the policy keeps from this request, per dataset, whatever the query: what and why, never which chunks."""

    dataset: str
    classifications: list[str]
    reasons: list[str]
    explanations: list[str]


class ContextResponse(BaseModel):
    decision_id: str
    agent: str
    user: str | None = Field(default=None, description="The user the agent acted for (<issuer id>:<subject>)")
    purpose: str
    model: str
    locality: str
    policy_revision: str
    index_version: int
    embedding_model: str
    tokens: int
    chunks: list[Chunk]
    near_duplicates: int = Field(
        default=0, description="Allowed chunks left out as near-duplicates of a better-scoring chunk served"
    )
    over_budget: int = Field(default=0, description="Allowed chunks left out to stay within max_tokens")
    withheld: list[Withheld] = Field(
        default_factory=list, description="What the policy withholds from this agent, purpose and model, and why"
    )


class ChatMessage(BaseModel):
    """One message of an OpenAI chat completion request; fields other than role and content pass through."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """An OpenAI chat completion request. ``model`` is a registered model id (catalog/models); the purpose comes
    from the ``X-Aquifer-Purpose`` header or ``metadata.purpose``. Other parameters (temperature, max_tokens, stop,
    seed, tools, ...) pass through to the model endpoint."""

    model_config = ConfigDict(extra="allow")

    model: Identifier = Field(description="A registered model id, e.g. local_smollm2")
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    stream: bool = False
    metadata: dict[str, str] | None = Field(default=None, description="metadata.purpose: the purpose of the call")


class Citation(BaseModel):
    """Context source ``[n]`` of a chat answer: the chunk (not its text) and its provenance receipt."""

    n: int
    chunk_id: str
    dataset: str
    layer: str
    classification: str
    tokens: int
    redactions: list[Redaction]
    label: str | None = None
    receipt: Receipt


class ChatExtension(BaseModel):
    """The ``aquifer`` member of a chat completion (of the first chunk when streaming): what was sent, and why."""

    decision_id: str
    agent: str
    user: str | None = None
    purpose: str
    model: str
    locality: str
    policy_revision: str
    index_version: int
    context_tokens: int
    near_duplicates: int
    over_budget: int
    citations: list[Citation]
    withheld: list[Withheld]


class ModelEntry(BaseModel):
    """A model of OpenAI's model list, with where it runs and the most it may receive."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str
    locality: str
    max_classification: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelEntry]

    @classmethod
    def of(cls, models: list[Model]) -> ModelList:
        entries = [
            ModelEntry(
                id=m.id, owned_by=m.owner.team, locality=m.locality.value, max_classification=m.max_classification.value
            )
            for m in models
        ]
        return cls(data=entries)


class OpenAIError(BaseModel):
    message: str
    type: str = Field(description="The error kind, as in ErrorResponse.error")
    code: str = Field(description="The first reason code, or the error kind")
    param: str | None = Field(default=None, description="The request field at fault, if any")
    reasons: list[str] = Field(default_factory=list)
    explanations: list[str] = Field(default_factory=list)


class OpenAIErrorResponse(BaseModel):
    """The error shape OpenAI clients parse (the OpenAI-compatible routes), with Aquifer's reasons beside it."""

    error: OpenAIError


class ErrorResponse(BaseModel):
    error: str = Field(description="unauthenticated, forbidden, invalid_request, unavailable, not_found")
    detail: str
    reasons: list[str] = Field(default_factory=list)
    explanations: list[str] = Field(default_factory=list)
    field: str | None = None


class DecisionRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    decision_id: str
    seq: int
    time: dt.datetime
    kind: str
    agent: str | None
    user: str | None = None
    purpose: str | None
    model: str | None
    locality: str | None
    revision: str | None
