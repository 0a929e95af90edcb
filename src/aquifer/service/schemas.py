"""The API's request and response models: one family per resource (OpenAPI at /docs is generated from these)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class ContextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000, description="The question to ground")
    purpose: str = Field(min_length=1, max_length=64, description="The purpose the agent acts for")
    model: str = Field(min_length=1, max_length=64, description="The registered model the context will be sent to")
    top_k: int = Field(default=8, ge=1, le=50, description="Chunks to return at most")
    max_tokens: int | None = Field(
        default=None, ge=1, le=100_000, description="Token budget for all chunk texts (embedding tokenizer)"
    )
    as_of: str | None = Field(
        default=None,
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


class ContextResponse(BaseModel):
    decision_id: str
    agent: str
    purpose: str
    model: str
    locality: str
    policy_revision: str
    index_version: int
    embedding_model: str
    tokens: int
    chunks: list[Chunk]


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
    purpose: str | None
    model: str | None
    locality: str | None
    revision: str | None
