"""What the MCP tools answer (their ``outputSchema``): ``/v1/context``'s models, numbered for citation, and the
views of ``list_sources`` and ``explain``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from aquifer.service.schemas import Chunk, ContextResponse, Withheld

CHANNEL = "mcp"
"""The ``channel`` of the decision records of MCP calls."""


class NumberedChunk(Chunk):
    n: int = Field(description="Cite this chunk as [n]")
    # published as a plain object: MCP clients re-validate every result against the output schema, and the nested
    # receipt schema cost 1 ms of their CPU per call at top_k 8 (bench/mcp.py, docs/benchmarks.md)
    receipt: dict[str, Any] = Field(description="The provenance receipt, as in POST /v1/context")  # type: ignore[assignment]
    resource_uri: str = Field(description="aquifer://chunk/<id>: read it again later (re-decided on every read)")


class SearchResult(ContextResponse):
    """``/v1/context``'s answer, each chunk numbered for citation; ``tool`` and ``channel`` as logged."""

    channel: str = CHANNEL
    tool: str = "search_context"
    chunks: list[NumberedChunk]  # type: ignore[assignment]


class LineageResult(BaseModel):
    chunk_id: str
    lineage: dict[str, Any] = Field(description="The walk from platinum back to the landing file, as /v1/lineage")


class PurposeView(BaseModel):
    purpose: str
    allowed: bool = Field(description="Whether this agent (and user) may read context for this purpose at all")
    reasons: list[str] = Field(default_factory=list, description="Why not, when not allowed")
    explanations: list[str] = Field(default_factory=list)
    readable: list[str] = Field(default_factory=list, description="Datasets with something readable")
    withheld: list[Withheld] = Field(default_factory=list, description="What is withheld, per dataset, and why")


class SourceInfo(BaseModel):
    dataset: str
    description: str
    owner: str
    classification: str = Field(description="The catalog's default classification (documents may be higher)")
    allowed_purposes: list[str]


class SourcesResult(BaseModel):
    agent: str
    user: str | None
    model: str
    locality: str
    policy_revision: str
    index_version: int
    purposes: list[PurposeView]
    sources: list[SourceInfo]


class ClassDecision(BaseModel):
    classification: str
    layer: str
    pii_types: list[str]
    untrusted: bool
    allow: bool
    reasons: list[str]
    explanations: list[str]
    redact: list[str] = Field(default_factory=list, description="PII types redacted before serving")
    label: str | None = None


class ExplainResult(BaseModel):
    agent: str
    user: str | None
    purpose: str
    model: str
    policy_revision: str
    chunk_id: str | None = None
    dataset: str
    decisions: list[ClassDecision] = Field(description="For a chunk: its decision; for a dataset: one per class")
    summary: str
