"""From the rows a search returned and their decisions to the chunks served: redaction, near-duplicate collapse,
the token budget, and each chunk's provenance receipt.

Only allowed rows are packed. Each keeps its text with the PII types its decision obliges redacted (typed
placeholders, with counts); the rows are ordered best score first (ties by chunk id, so the order is stable); a
row whose embedding is at least ``similarity`` (cosine) to one kept before is collapsed into it; then rows are
kept in that order while they fit ``max_tokens`` (counted with the embedding model's tokenizer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aquifer.pii import PiiSpan, redact
from aquifer.policy import Decision
from aquifer.service.schemas import Chunk, Layered, Receipt, Redaction
from aquifer.tokenizer import count_tokens


@dataclass
class Packed:
    chunks: list[Chunk] = field(default_factory=list)
    near_duplicates: int = 0
    over_budget: int = 0


@dataclass(frozen=True)
class Stamp:
    """What every receipt of one answer names besides the row's own lineage."""

    index_version: int
    policy_revision: str
    decision_id: str


def pack(
    rows: Sequence[dict[str, Any]],
    decisions: Sequence[Decision],
    stamp: Stamp,
    *,
    max_tokens: int | None,
    similarity: float,
) -> Packed:
    """The chunks to serve, from index rows and their decisions (parallel sequences)."""
    packed = Packed()
    candidates = []
    for row, decision in zip(rows, decisions, strict=True):
        if decision.allow:
            candidates.append((row, decision, *_redacted(row, decision)))
    candidates.sort(key=lambda c: (-round(c[0]["score"], 6), c[0]["chunk_id"]))
    kept: list[np.ndarray] = []
    distinct = []
    for candidate in candidates:
        vector = np.asarray(candidate[0]["vector"], dtype=np.float32)
        if kept and float(np.max(np.stack(kept) @ vector)) >= similarity:
            packed.near_duplicates += 1
            continue
        kept.append(vector)
        distinct.append(candidate)
    tokens = count_tokens([c[2] for c in distinct]) if distinct else []
    used = 0
    for (row, decision, text, counts), n in zip(distinct, tokens, strict=True):
        if max_tokens is not None and used + n > max_tokens:
            packed.over_budget += 1
            continue
        used += n
        packed.chunks.append(
            Chunk(
                chunk_id=row["chunk_id"],
                text=text,
                score=round(row["score"], 6),
                dataset=row["dataset"],
                layer=row["layer"],
                classification=row["classification"],
                tokens=n,
                redactions=[Redaction(type=t, count=c) for t, c in sorted(counts.items())],
                label=decision.obligations.label,
                receipt=receipt(row, stamp),
            )
        )
    return packed


def _redacted(row: dict[str, Any], decision: Decision) -> tuple[str, dict[str, int]]:
    """The row's text with the obliged PII types replaced, and how many spans of each type were."""
    types = decision.obligations.redact
    spans = [PiiSpan(s["type"], s["start"], s["end"]) for s in row["pii_spans"] or []]
    text = redact(row["text"], spans, types) if types else row["text"]
    counts: dict[str, int] = {}
    for span in spans:
        if span.type in types:
            counts[span.type] = counts.get(span.type, 0) + 1
    return text, counts


def receipt(row: dict[str, Any], stamp: Stamp) -> Receipt:
    """Where an index row came from (precomputed in the index from its lineage), and the answer it was served in."""
    return Receipt(
        source_uri=row["source_uri"],
        source_sha256=row["source_sha256"],
        bronze=Layered(id=row["bronze_id"], delta_version=row["bronze_version"]),
        silver=Layered(id=row["silver_id"], delta_version=row["silver_version"]),
        gold=Layered(id=row["gold_id"], delta_version=row["gold_version"]),
        platinum=Layered(id=row["platinum_id"], delta_version=row["platinum_version"]),
        dagster_run_id=row["run_id"],
        embedding_model=row["embedding_model"],
        index_version=stamp.index_version,
        policy_revision=stamp.policy_revision,
        decision_id=stamp.decision_id,
    )
