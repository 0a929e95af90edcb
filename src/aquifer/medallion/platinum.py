"""Platinum: certified context, the only layer served to agents.

A gold chunk is certified when it is current (not superseded), canonical (not a near-duplicate), trusted (no
instruction-like text) and fresh (its document's ``updated_at`` is within the source's freshness SLA). Dagster
runs platinum only after every blocking check upstream passed, so a certified row also means "the checks on the
gold version it was read from passed". Platinum is re-derived from gold on every run and only the difference is
written: newly eligible chunks are inserted, chunks that went stale or were superseded are deleted (they remain
in gold, with the reason visible in their flags).

Each row carries its document's ``acl`` (``List(String)`` of principals; null when the document has none), for the
index and the policy. A source whose catalog entry requires document ACLs never has a row certified without one
(silver quarantines such documents already; this is the second lock).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from aquifer.catalog import Source
from aquifer.medallion import gold, promotion
from aquifer.medallion.common import PromotionResult, RunContext
from aquifer.medallion.layers import LINEAGE_SCHEMA, Layer

CODE_VERSION = "platinum-1"
LAYER = Layer.PLATINUM

_CARRIED = [
    "chunk_id",
    "silver_id",
    "dataset",
    "doc_id",
    "title",
    "chunk_index",
    "chunk_count",
    "text",
    "token_count",
    "tokenizer",
    "language",
    "updated_at",
    "owner",
    "classification",
    "pii_types",
    "pii_spans",
    "purposes",
    "pii_allowed_purposes",
    "acl",
]
SCHEMA: dict[str, pl.DataType] = {
    "platinum_id": pl.String(),
    **{c: gold.SCHEMA[c] for c in _CARRIED},
    "fresh_until": pl.Datetime("us", "UTC"),
    **LINEAGE_SCHEMA,
    "certified_at": pl.Datetime("us", "UTC"),
}


def certifiable(
    chunks: pl.LazyFrame, *, freshness: dt.timedelta, now: dt.datetime, acl_required: bool = False
) -> pl.LazyFrame:
    """The gold chunks that may be certified at ``now`` (with ``acl_required``, only those that carry an ACL)."""
    eligible = (
        pl.col("superseded_by").is_null()
        & pl.col("near_duplicate_of").is_null()
        & ~pl.col("untrusted")
        & (pl.col("updated_at") + freshness >= now)
    )
    if acl_required:
        eligible = eligible & pl.col("acl").is_not_null()
    return chunks.filter(eligible)


def promote_to_platinum(source: Source, ctx: RunContext) -> PromotionResult:
    chunks = promotion.upstream(ctx, gold.LAYER, source.id, gold.SCHEMA)
    current = ctx.lake.read(LAYER, source.id, columns=["platinum_id", "chunk_id"], schema=SCHEMA)
    certified = certifiable(
        chunks.frame, freshness=source.freshness, now=ctx.now, acl_required=source.document_acl == "required"
    )
    eligible = certified.select("chunk_id").collect()
    removals = current.join(eligible, on="chunk_id", how="anti")["platinum_id"].to_list()
    rows = promotion.pending(certified, current, "chunk_id").select(_CARRIED).collect()
    lineage = chunks.lineage(ctx, CODE_VERSION)
    inserts = rows.with_columns(
        pl.Series("platinum_id", [LAYER.stable_id(c) for c in rows["chunk_id"]], pl.String),
        (pl.col("updated_at") + source.freshness).alias("fresh_until"),
        pl.concat_list(pl.col("chunk_id")).alias("upstream_ids"),
        pl.lit(lineage["upstream_table"]).alias("upstream_table"),
        pl.lit(lineage["upstream_version"], pl.Int64).alias("upstream_version"),
        pl.lit(lineage["run_id"]).alias("run_id"),
        pl.lit(lineage["code_version"]).alias("code_version"),
        pl.lit(ctx.now, pl.Datetime("us", "UTC")).alias("certified_at"),
    ).select(SCHEMA.keys())
    version = promotion.write(
        ctx, LAYER, source.id, CODE_VERSION, chunks, inserts, key="platinum_id", delete_keys=removals
    )
    return promotion.result(
        ctx,
        LAYER,
        source.id,
        version,
        rows_total=eligible.height,
        rows_written=inserts.height + len(removals),
        metadata={
            "certified_now": inserts.height,
            "decertified_now": len(removals),
            "acl_rows_now": int(inserts["acl"].is_not_null().sum()),
        },
    )
