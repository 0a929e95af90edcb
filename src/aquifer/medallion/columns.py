"""Column lineage: which columns of the table a layer reads each of its output columns derives from, and how.

One declaration per layer, kept beside nothing else so that a change to a transform and to its lineage are reviewed
together (``tests/test_columns.py`` fails when a layer's schema and its declaration disagree). The OpenLineage
events (:mod:`aquifer.export.openlineage`) publish it as the ``columnLineage`` facet.

A column is one of:

- :func:`same` - copied unchanged from the upstream column of the same (or a given) name (``IDENTITY``);
- :func:`derived` - computed from the named upstream columns (``TRANSFORMATION``), or from values across rows
  (``AGGREGATION``: a document version superseded by a newer one, duplicates collapsed);
- :func:`stamped` - not derived from upstream data: the run's lineage stamp, the catalog or a constant. It has no
  input fields, so it is not listed in the facet.

No pipeline column is masked: PII stays in the lake and in the index, because redaction depends on the request
(agent, purpose, model) and happens when a chunk is served, where the decision record names what was redacted.

>>> LINEAGE[Layer.GOLD]["text"].inputs, LINEAGE[Layer.GOLD]["text"].subtype
(('body',), 'TRANSFORMATION')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aquifer.medallion.layers import Layer
from aquifer.medallion.platinum import _CARRIED

Subtype = Literal["IDENTITY", "TRANSFORMATION", "AGGREGATION"]


@dataclass(frozen=True)
class Derivation:
    """How one output column is made. ``filters`` are upstream columns that decide which rows are kept (OpenLineage
    ``INDIRECT``/``FILTER``); ``masking`` is true where the column hides the data it derives from."""

    inputs: tuple[str, ...]
    subtype: Subtype
    description: str
    filters: tuple[str, ...] = ()
    masking: bool = False


def same(column: str | None = None) -> Derivation:
    """Copied unchanged (from ``column``, default: the output column's own name, filled in by :func:`_named`)."""
    return Derivation((column,) if column else (), "IDENTITY", "copied unchanged")


def derived(*inputs: str, how: str, subtype: Subtype = "TRANSFORMATION") -> Derivation:
    return Derivation(tuple(inputs), subtype, how)


def stamped(how: str) -> Derivation:
    return Derivation((), "TRANSFORMATION", how)


_RUN_STAMP = {
    "upstream_table": stamped("the table this run read (lineage stamp)"),
    "upstream_version": stamped("the Delta version this run read (lineage stamp)"),
    "run_id": stamped("the Dagster run that wrote the row"),
    "code_version": stamped("the layer's code version"),
}


def _named(columns: dict[str, Derivation], filters: tuple[str, ...] = ()) -> dict[str, Derivation]:
    """Fill the implicit column of :func:`same` and the layer's row filters into every derived column."""
    out = {}
    for name, d in columns.items():
        inputs = d.inputs or ((name,) if d.subtype == "IDENTITY" else ())
        out[name] = Derivation(inputs, d.subtype, d.description, filters if inputs else (), d.masking)
    return out


_PAYLOAD = "the catalog's field mapping applied to the parsed record (bronze payload)"

SILVER = _named(
    {
        "silver_id": derived(
            "source_id", "payload", how="stable id of source, document id, content hash and document ACL"
        ),
        "source_id": same(),
        "doc_id": derived("payload", "uri", how=f"{_PAYLOAD}; a whole-file document without one: its file name"),
        "title": derived("payload", how=f"{_PAYLOAD}; else the body's first '# ' heading"),
        "body": derived("payload", how=f"{_PAYLOAD}, trimmed"),
        "language": derived("payload", how=f"{_PAYLOAD}, lower-cased; 'en' when absent"),
        "updated_at": derived("payload", how=f"{_PAYLOAD}, parsed as ISO 8601 and converted to UTC"),
        "owner": derived("payload", how=f"{_PAYLOAD}; else the source owner's contact"),
        "acl": derived("payload", how="the document's ACL field normalised to sorted, unique principals"),
        "classification": derived(
            "payload", how="max(catalog classification, the PII floor of each type detected in title and body)"
        ),
        "pii_types": derived("payload", how="the PII types the recognizers detect in title and body"),
        "pii_spans": derived("payload", how="PII spans the recognizers detect in the body"),
        "title_pii_spans": derived("payload", how="PII spans the recognizers detect in the title"),
        "detector_version": stamped("the PII detector's version"),
        "content_sha256": derived("payload", how="SHA-256 of title, body and updated_at"),
        "upstream_ids": derived(
            "record_id",
            how="the bronze records this document stands for (exact duplicates collapse into one)",
            subtype="AGGREGATION",
        ),
        **_RUN_STAMP,
        "processed_at": stamped("when silver last received this document version"),
    },
    filters=("parse_status",),
)
"""Silver from bronze: only records that parsed (``parse_status``) and normalise; the rest go to quarantine."""

SILVER_QUARANTINE = _named(
    {
        "record_id": same(),
        "source_id": same(),
        "uri": same(),
        "record_ordinal": same(),
        "reason": derived("parse_status", "payload", how="bronze's parse status, or silver's own rejection code"),
        "message": derived(
            "uri", "parse_error", "payload", how="the file and what is wrong with the record (never its content)"
        ),
        **_RUN_STAMP,
        "quarantined_at": stamped("when silver rejected the record"),
    },
)

_DOC_FLAGS = ("doc_id", "updated_at", "silver_id", "processed_at", "title", "body", "acl")

GOLD = _named(
    {
        "chunk_id": derived("silver_id", how="stable id of the silver document, the chunk's index and code version"),
        "silver_id": same(),
        "source_id": same(),
        "dataset": stamped("the catalog source id"),
        "doc_id": same(),
        "title": same(),
        "chunk_index": derived("body", how="position of the chunk's token window in the body"),
        "chunk_count": derived("body", how="number of token windows of the body"),
        "text": derived("body", how="a window of the body of at most the chunk token budget, on a sentence end"),
        "char_start": derived("body", how="character offset of the chunk in the body"),
        "char_end": derived("body", how="character offset of the chunk's end in the body"),
        "token_count": derived("body", how="WordPiece tokens of the chunk"),
        "tokenizer": stamped("the tokenizer (the embedding model's)"),
        "language": same(),
        "updated_at": same(),
        "owner": same(),
        "classification": derived(
            "pii_spans",
            "title_pii_spans",
            how="max(catalog classification, the PII floor of each type in the chunk or the title)",
        ),
        "pii_types": derived("pii_spans", "title_pii_spans", how="the PII types in the chunk and the title"),
        "pii_spans": derived("pii_spans", how="the body's PII spans that overlap the chunk, clipped and re-based"),
        "purposes": stamped("the catalog's allowed purposes of the source"),
        "pii_allowed_purposes": stamped("the catalog's purposes allowed to see the source's PII"),
        "acl": same(),
        "near_fingerprint": derived("title", "body", how="near-duplicate fingerprint of the normalised title and body"),
        "superseded_by": derived(
            *_DOC_FLAGS[:4],
            how="the newest version of the same document id, when this is not it",
            subtype="AGGREGATION",
        ),
        "near_duplicate_of": derived(
            *_DOC_FLAGS,
            how="the canonical copy among near-identical current documents with the same ACL",
            subtype="AGGREGATION",
        ),
        "untrusted": derived("body", how="the chunk's text matches an instruction (prompt injection) pattern"),
        "untrusted_pattern": derived("body", how="the instruction pattern the chunk's text matches"),
        "upstream_ids": derived("silver_id", how="the silver document the chunk was cut from"),
        **_RUN_STAMP,
        "processed_at": stamped("when gold chunked the document"),
    },
)

_CERTIFY = ("superseded_by", "near_duplicate_of", "untrusted", "updated_at", "acl")

PLATINUM = _named(
    {
        "platinum_id": derived("chunk_id", how="stable id of the gold chunk"),
        **{c: same() for c in _CARRIED},  # copied from gold unchanged (platinum.py owns the list)
        "fresh_until": derived("updated_at", how="updated_at plus the source's freshness SLA"),
        "upstream_ids": derived("chunk_id", how="the gold chunk certified"),
        **_RUN_STAMP,
        "certified_at": stamped("when platinum certified the chunk"),
    },
    filters=_CERTIFY,
)
"""Platinum from gold: only current, canonical, trusted and fresh chunks (and with an ACL where the source requires
one) are certified."""

INDEX = _named(
    {
        **{
            c: same()
            for c in (
                "platinum_id",
                "chunk_id",
                "doc_id",
                "dataset",
                "classification",
                "pii_types",
                "acl",
                "title",
                "text",
                "token_count",
                "pii_spans",
                "updated_at",
                "fresh_until",
                "silver_id",
                "run_id",
            )
        },
        "gold_id": same("chunk_id"),
        "layer": stamped("the layer served (platinum)"),
        "untrusted": stamped("false: platinum certifies trusted chunks only"),
        "class_key": derived("dataset", "classification", "pii_types", how="the policy class of the chunk"),
        "acl_listed": derived("acl", how="whether the document carries an ACL"),
        "text_hash": derived("title", "text", how="SHA-256 of title and text (re-embed when it changes)"),
        "vector": derived("title", "text", how="all-MiniLM-L6-v2 embedding of title and text"),
        "platinum_version": stamped("the platinum Delta version the chunk was read at"),
        "embedding_model": stamped("the embedding model's name"),
    },
)
"""The LanceDB index from platinum (each source's table). Its receipt columns that name bronze and silver
(``source_uri``, ``bronze_id`` and versions) come from the lineage trace of each chunk, not from a platinum column."""

LINEAGE: dict[Layer, dict[str, Derivation]] = {Layer.SILVER: SILVER, Layer.GOLD: GOLD, Layer.PLATINUM: PLATINUM}
"""Each layer's output columns, derived from the layer below (bronze reads files, not a table)."""
