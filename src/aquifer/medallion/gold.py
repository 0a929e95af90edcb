"""Gold: documents become token-aware chunks, each carrying its governance attributes and quality flags.

Chunking: windows of ``CHUNK_TOKENS`` = 200 WordPiece tokens of the embedding model, advancing by
``CHUNK_TOKENS - OVERLAP_TOKENS`` = 160. Why these sizes: all-MiniLM-L6-v2 embeds at most 256 tokens including
[CLS]/[SEP]; 200 leaves room for a title prefix at embedding time without silent truncation, and is long enough
to hold a full paragraph of policy or a support exchange. The 40-token (20%) overlap keeps a sentence cut at a
window edge whole in one of the two neighbours. A window end is pulled back to the last sentence end in its final
quarter when there is one, so chunks rarely stop mid-sentence. Documents of <= 200 tokens are one chunk.

Every chunk carries its document's ``acl`` (null: the document has none) unchanged from silver.

Flags (all kept in gold for traceability; platinum certifies only clean chunks):
- ``superseded_by``: a newer document with the same id exists (latest ``updated_at`` wins; on a tie, the version
  silver received last, so an ACL change that left ``updated_at`` alone still replaces the old version).
- ``near_duplicate_of``: a current document whose casefolded alphanumeric text (digits kept) equals that of a
  more recently updated one with the same ACL (the freshest copy is kept). This catches re-published copies
  differing in whitespace, case, punctuation or quotes; it does not catch reworded copies. Copies with different
  ACLs are not duplicates: each is visible to different people, and collapsing them would decide who sees it.
- ``untrusted``: the chunk holds instruction-like text (:mod:`aquifer.injection`), with the matched pattern.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import polars as pl

from aquifer.catalog import Catalog, Classification, Source
from aquifer.injection import instruction_match
from aquifer.medallion import promotion, silver
from aquifer.medallion.common import PII_SPAN, PromotionResult, RunContext, nested_spans
from aquifer.medallion.layers import LINEAGE_SCHEMA, Layer
from aquifer.tokenizer import EMBEDDING_MODEL, get_tokenizer

CODE_VERSION = "gold-1"
LAYER = Layer.GOLD
CHUNK_TOKENS = 200
OVERLAP_TOKENS = 40
_SENTENCE_END = re.compile(r"[.!?:;]\s*$|\n\s*$")

SCHEMA: dict[str, pl.DataType] = {
    "chunk_id": pl.String(),
    "silver_id": pl.String(),
    "source_id": pl.String(),
    "dataset": pl.String(),
    "doc_id": pl.String(),
    "title": pl.String(),
    "chunk_index": pl.Int64(),
    "chunk_count": pl.Int64(),
    "text": pl.String(),
    "char_start": pl.Int64(),
    "char_end": pl.Int64(),
    "token_count": pl.Int64(),
    "tokenizer": pl.String(),
    "language": pl.String(),
    "updated_at": pl.Datetime("us", "UTC"),
    "owner": pl.String(),
    "classification": pl.String(),
    "pii_types": pl.List(pl.String),
    "pii_spans": pl.List(PII_SPAN),
    "purposes": pl.List(pl.String),
    "pii_allowed_purposes": pl.List(pl.String),
    "acl": pl.List(pl.String),
    "near_fingerprint": pl.String(),
    "superseded_by": pl.String(),
    "near_duplicate_of": pl.String(),
    "untrusted": pl.Boolean(),
    "untrusted_pattern": pl.String(),
    **LINEAGE_SCHEMA,
    "processed_at": pl.Datetime("us", "UTC"),
}
FLAG_COLUMNS = ("superseded_by", "near_duplicate_of")


def chunk_spans(text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Split a text into (char_start, char_end, token_count) windows from its token offsets."""
    if len(offsets) <= CHUNK_TOKENS:
        return [(0, len(text), len(offsets))]
    spans = []
    start = 0
    while start < len(offsets):
        end = min(start + CHUNK_TOKENS, len(offsets))
        if end < len(offsets):
            for candidate in range(end, start + CHUNK_TOKENS * 3 // 4, -1):
                if _SENTENCE_END.search(text[offsets[candidate - 1][0] : offsets[candidate][0]]):
                    end = candidate
                    break
        spans.append((offsets[start][0], offsets[end - 1][1], end - start))
        if end == len(offsets):
            break
        start = end - OVERLAP_TOKENS  # end >= start + 150, so this always advances
    return spans


def near_fingerprint(title: str, body: str) -> str:
    normalised = re.sub(r"[\W_]+", " ", f"{title}\n{body}".casefold()).strip()
    return hashlib.sha256(normalised.encode()).hexdigest()


def _chunk_pii(spans: list[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
    """Spans that overlap [start, end), clipped and re-based on the chunk, so redaction never leaks a fragment."""
    return [
        {"type": s["type"], "start": max(s["start"], start) - start, "end": min(s["end"], end) - start}
        for s in spans
        if s["start"] < end and s["end"] > start
    ]


def chunk_documents(docs: pl.DataFrame, source: Source, catalog: Catalog, lineage: dict[str, Any]) -> pl.DataFrame:
    """Chunk silver documents into gold rows (flags unset).

    The per-chunk work that needs Python (window boundaries, PII span clipping) fills plain column lists; the
    rest (constant columns, instruction screening) is done by polars on whole columns.
    """
    if docs.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    encodings = get_tokenizer().encode_batch(docs["body"].to_list(), add_special_tokens=False)
    levels = [c.value for c in Classification]
    floors = {t: c.rank for t, c in catalog.vocabulary.pii_floor.items()}
    default = levels[source.classification.rank]
    # Nested values (lists of span structs) are slow to move between polars and Python one row at a time, and
    # most documents have none: fetch spans only for the documents that have some, and return them flat.
    with_spans = docs.with_row_index("row").filter(
        (pl.col("pii_spans").list.len() > 0) | (pl.col("title_pii_spans").list.len() > 0)
    )
    body_spans = dict(zip(with_spans["row"], with_spans["pii_spans"].to_list(), strict=True))
    title_types = {
        r: {s["type"] for s in spans}
        for r, spans in zip(with_spans["row"], with_spans["title_pii_spans"].to_list(), strict=True)
    }
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "row",
            "chunk_id",
            "chunk_index",
            "chunk_count",
            "text",
            "char_start",
            "char_end",
            "token_count",
            "classification",
            "near_fingerprint",
        )
    }
    found_spans: dict[int, list[tuple[str, int, int]]] = {}
    flat_types: dict[str, list[Any]] = {"chunk": [], "type": []}
    for row, (silver_id, title, body, encoding) in enumerate(
        zip(docs["silver_id"], docs["title"], docs["body"], encodings, strict=True)
    ):
        windows = chunk_spans(body, encoding.offsets)
        fingerprint = near_fingerprint(title, body)
        spans, in_title = body_spans.get(row), title_types.get(row, set())
        for index, (start, end, tokens) in enumerate(windows):
            chunk = len(columns["row"])
            classification = default
            if spans or in_title:
                chunk_pii = _chunk_pii(spans, start, end) if spans else []
                types = sorted({s["type"] for s in chunk_pii} | in_title)
                classification = levels[max([source.classification.rank, *(floors[t] for t in types)])]
                if chunk_pii:
                    found_spans[chunk] = [(p["type"], p["start"], p["end"]) for p in chunk_pii]
                flat_types["chunk"].extend([chunk] * len(types))
                flat_types["type"].extend(types)
            columns["row"].append(row)
            columns["chunk_id"].append(LAYER.stable_id(silver_id, index, CODE_VERSION))
            columns["chunk_index"].append(index)
            columns["chunk_count"].append(len(windows))
            columns["text"].append(body[start:end])
            columns["char_start"].append(start)
            columns["char_end"].append(end)
            columns["token_count"].append(tokens)
            columns["classification"].append(classification)
            columns["near_fingerprint"].append(fingerprint)
    chunks = pl.DataFrame(
        columns, schema={"row": pl.UInt32, **{c: SCHEMA[c] for c in columns if c != "row"}}
    ).with_row_index("chunk")
    types_per_chunk = (
        pl.DataFrame(flat_types, schema={"chunk": pl.UInt32, "type": pl.String})
        .group_by("chunk", maintain_order=True)
        .agg(pl.col("type").alias("pii_types"))
    )
    chunks = (
        chunks.with_columns(nested_spans(chunks.height, found_spans).alias("pii_spans"))  # positional: before the join
        .join(types_per_chunk, on="chunk", how="left", maintain_order="left")
        .with_columns(pl.col("pii_types").fill_null(pl.lit([], SCHEMA["pii_types"])))
        .drop("chunk")
    )
    doc_columns = docs.select("silver_id", "doc_id", "title", "language", "updated_at", "owner", "acl").with_row_index(
        "row"
    )
    return (
        chunks.join(doc_columns, on="row", how="left")
        .with_columns(
            pl.lit(source.id).alias("source_id"),
            pl.lit(source.id).alias("dataset"),
            pl.lit(EMBEDDING_MODEL).alias("tokenizer"),
            pl.lit(list(source.allowed_purposes), pl.List(pl.String)).alias("purposes"),
            pl.lit(list(source.pii.allowed_purposes), pl.List(pl.String)).alias("pii_allowed_purposes"),
            pl.lit(None, pl.String).alias("superseded_by"),
            pl.lit(None, pl.String).alias("near_duplicate_of"),
            instruction_match(pl.col("text")).alias("untrusted_pattern"),
            pl.concat_list(pl.col("silver_id")).alias("upstream_ids"),
            *(pl.lit(value, SCHEMA[name]).alias(name) for name, value in lineage.items()),
        )
        .with_columns(pl.col("untrusted_pattern").is_not_null().alias("untrusted"))
        .select(SCHEMA.keys())
    )


def document_flags(documents: pl.LazyFrame) -> pl.LazyFrame:
    """Per silver document: which newer version supersedes it, which earlier document it near-duplicates.

    ``documents`` has one row per silver_id with doc_id, updated_at, near_fingerprint, acl and received_at (when
    silver wrote the document). Versions of one id with the same ``updated_at`` (an ACL changed, the content did
    not) are ordered by ``received_at``, then by id.
    """
    latest = (
        documents.sort("updated_at", "received_at", "silver_id")
        .group_by("doc_id")
        .agg(pl.col("silver_id").last().alias("latest"))
    )
    flagged = documents.join(latest, on="doc_id").with_columns(
        pl.when(pl.col("silver_id") != pl.col("latest")).then(pl.col("latest")).alias("superseded_by"),
        # one text per ACL: null (no ACL) and every list of principals (which hold no ';') are distinct
        pl.when(pl.col("acl").is_null())
        .then(pl.lit("none"))
        .otherwise(pl.lit("acl=") + pl.col("acl").list.join(";"))
        .alias("acl_key"),
    )
    # Of near-identical current documents the most recently updated copy is kept: it stays fresh the longest.
    canonical = (
        flagged.filter(pl.col("superseded_by").is_null())
        .sort(["updated_at", "doc_id", "silver_id"], descending=[True, False, False])
        .group_by("near_fingerprint", "acl_key")
        .agg(pl.col("silver_id").first().alias("canonical"))
    )
    return (
        flagged.join(canonical, on=["near_fingerprint", "acl_key"], how="left")
        .with_columns(
            pl.when(pl.col("superseded_by").is_null() & (pl.col("silver_id") != pl.col("canonical")))
            .then(pl.col("canonical"))
            .alias("near_duplicate_of")
        )
        .select("silver_id", *FLAG_COLUMNS)
    )


def promote_to_gold(source: Source, ctx: RunContext, *, catalog: Catalog) -> PromotionResult:
    """Chunk silver documents gold has not seen, then re-derive the superseded / near-duplicate flags."""
    lake = ctx.lake
    documents = promotion.upstream(ctx, silver.LAYER, source.id, silver.SCHEMA)
    lineage = {**documents.lineage(ctx, CODE_VERSION), "processed_at": ctx.now}
    doc_columns = ["silver_id", "doc_id", "updated_at", "near_fingerprint", "acl", *FLAG_COLUMNS]
    existing_docs = lake.read(LAYER, source.id, columns=doc_columns, schema=SCHEMA).unique("silver_id")
    new_docs = promotion.pending(documents.frame, existing_docs, "silver_id").sort("silver_id").collect()
    new_chunks = chunk_documents(new_docs, source, catalog, lineage)

    # Flags depend on the set of documents and on when silver last received each (a version received again - an
    # edit undone - becomes the current one again), so they are re-derived every run; only changed rows are written.
    flags = pl.DataFrame(schema={"silver_id": pl.String, **{c: pl.String for c in FLAG_COLUMNS}})
    changed_ids = pl.Series("silver_id", [], pl.String)
    if not (new_docs.is_empty() and existing_docs.is_empty()):
        all_docs = pl.concat([existing_docs, new_chunks.select(doc_columns).unique("silver_id")])
        # when silver wrote each version: orders versions of one id that share updated_at (an ACL change)
        received = documents.frame.select("silver_id", pl.col("processed_at").alias("received_at"))
        flags = document_flags(
            all_docs.lazy()
            .select("silver_id", "doc_id", "updated_at", "near_fingerprint", "acl")
            .join(received, on="silver_id", how="left")
        ).collect()
        changed_ids = existing_docs.join(flags, on="silver_id", suffix="_new").filter(
            pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_new")) for c in FLAG_COLUMNS)
        )["silver_id"]
    reflagged = (
        lake.scan(LAYER, source.id).filter(pl.col("silver_id").is_in(changed_ids.implode())).collect()
        if not changed_ids.is_empty()
        else pl.DataFrame(schema=SCHEMA)
    )

    def with_flags(chunks: pl.DataFrame) -> pl.DataFrame:
        return chunks.drop(*FLAG_COLUMNS).join(flags, on="silver_id", how="left").select(SCHEMA.keys())

    inserts, updates = with_flags(new_chunks), with_flags(reflagged)
    version = promotion.write(ctx, LAYER, source.id, CODE_VERSION, documents, inserts, key="chunk_id", updates=updates)
    return promotion.result(
        ctx,
        LAYER,
        source.id,
        version,
        rows_total=lake.read(LAYER, source.id, columns=["chunk_id"], schema=SCHEMA).height,
        rows_written=inserts.height + updates.height,
        metadata={
            "documents_chunked_now": new_docs.height,
            "chunks_added_now": new_chunks.height,
            "documents_reflagged_now": changed_ids.len(),
            "untrusted_chunks_now": int(new_chunks["untrusted"].sum()),
            "chunk_tokens": CHUNK_TOKENS,
            "overlap_tokens": OVERLAP_TOKENS,
        },
    )
