"""Making a store hold exactly the current platinum chunks, whatever the store.

Chunks new to platinum are embedded and added, chunks that left platinum (superseded, stale, removed) are removed,
chunks whose text changed are re-embedded; all in one new store version, so an answer can be replayed at an earlier
one. Each added row gets its resource class columns and its provenance receipt from one lineage trace.
"""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from aquifer.checks import CheckOutcome
from aquifer.embedding import DIMENSIONS
from aquifer.index.base import SyncResult, VectorStore
from aquifer.index.schema import LAYER, PLATINUM_COLUMNS, RECEIPT_COLUMNS, SCHEMA
from aquifer.lake import Lake
from aquifer.lineage import trace
from aquifer.medallion.layers import Layer
from aquifer.policy.decision import Resource
from aquifer.tokenizer import EMBEDDING_MODEL

if TYPE_CHECKING:
    from aquifer.catalog import Catalog
    from aquifer.embedding import Embedder


def sync(store: VectorStore, lake: Lake, catalog: Catalog, embedder: Embedder) -> SyncResult:
    """Make ``store`` hold exactly the current platinum chunks."""
    desired, versions = _platinum(lake, catalog)
    # An index written under an older schema (say, before ACLs) is rebuilt, as one new version: its rows cannot say
    # what the policy now reads.
    rebuild = store.exists() and not store.schema_matches()
    existing = (
        store.columns(["platinum_id", "text_hash"])
        if store.exists() and not rebuild
        else pl.DataFrame(schema={"platinum_id": pl.String, "text_hash": pl.String})
    )
    keep = desired.join(existing, on=["platinum_id", "text_hash"], how="semi")
    fresh = desired.join(keep.select("platinum_id"), on="platinum_id", how="anti")
    gone = existing.join(keep.select("platinum_id"), on="platinum_id", how="anti")["platinum_id"].to_list()
    new_rows = _with_receipts(lake, catalog, fresh, versions)
    table = SCHEMA.empty_table()
    if new_rows.height:
        texts = [f"{t or ''}\n{x}" for t, x in zip(new_rows["title"], new_rows["text"], strict=True)]
        vectors = embedder.encode(texts)
        table = new_rows.select([f.name for f in SCHEMA if f.name != "vector"]).to_arrow()
        table = table.append_column(
            "vector", pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIMENSIONS)
        ).cast(SCHEMA)
    version, rows = store.apply(table, gone, replace_all=rebuild)
    return SyncResult(new_rows.height, len(gone), keep.height, version, rows)


def text_hash(title: str | None, text: str) -> str:
    return hashlib.sha256(f"{title or ''}\n{text}".encode()).hexdigest()


def _platinum(lake: Lake, catalog: Catalog) -> tuple[pl.DataFrame, dict[str, int]]:
    frames, versions = [], {}
    for dataset in sorted(catalog.sources):
        version = lake.version(LAYER, dataset)
        if version is None:
            continue
        versions[dataset] = version
        frames.append(lake.scan(LAYER, dataset, version=version).select(PLATINUM_COLUMNS).collect())
    if not frames:
        return pl.DataFrame(schema={c: pl.String for c in [*PLATINUM_COLUMNS, "text_hash"]}), versions
    frame = pl.concat(frames, how="vertical_relaxed")
    hashes = [text_hash(t, x) for t, x in zip(frame["title"], frame["text"], strict=True)]
    return frame.with_columns(pl.Series("text_hash", hashes, dtype=pl.String)), versions


def _with_receipts(lake: Lake, catalog: Catalog, rows: pl.DataFrame, versions: dict[str, int]) -> pl.DataFrame:
    """The rows with their class columns and flattened provenance receipt (one lineage trace for all of them)."""
    if rows.is_empty():
        return rows
    nodes = trace(lake, rows["platinum_id"].to_list(), sorted(catalog.sources))
    receipts = []
    for node in nodes:
        gold = node.upstream[0]
        silver = gold.upstream[0]
        bronze = silver.upstream[0]
        receipts.append(
            {
                "platinum_id": node.id,
                "source_uri": bronze.detail["uri"],
                "source_sha256": bronze.detail["file_sha256"],
                "bronze_id": bronze.id,
                "bronze_version": bronze.delta_version,
                "silver_id": silver.id,
                "silver_version": silver.delta_version,
                "gold_id": gold.id,
                "gold_version": gold.delta_version,
                "platinum_version": node.delta_version,
                "run_id": node.run_id,
            }
        )
    frame = rows.join(pl.DataFrame(receipts), on="platinum_id", how="left")
    # Class attributes platinum does not store take their defaults (every platinum chunk is certified, trusted).
    defaults = []
    for name in Resource.columns():
        default = next(f.default for f in fields(Resource) if f.name == name)
        if name not in frame.columns and default is not MISSING:
            defaults.append(pl.lit(default).alias(name))
    return (
        frame.with_columns(*defaults, pl.lit(EMBEDDING_MODEL).alias("embedding_model"))
        .with_columns(
            pl.col("pii_types").list.sort(),
            pl.col("acl").is_not_null().alias("acl_listed"),
            pl.col("acl").fill_null(pl.lit([], dtype=pl.List(pl.String))).list.sort(),
        )
        .with_columns(Resource.key_expr().alias("class_key"))
    )


def in_sync(index: VectorStore, lake: Lake, catalog: Catalog) -> CheckOutcome:
    """The index's gate: exactly the current platinum chunks, each with a complete receipt."""
    platinum = {
        i
        for d in catalog.sources
        if lake.exists(Layer.PLATINUM, d)
        for i in lake.read(Layer.PLATINUM, d, columns=[Layer.PLATINUM.key])[Layer.PLATINUM.key]
    }
    frame = index.columns(RECEIPT_COLUMNS)
    indexed = set(frame["platinum_id"])
    incomplete = frame.filter(pl.any_horizontal(pl.all().is_null())).height
    missing, extra = len(platinum - indexed), len(indexed - platinum)
    return CheckOutcome(
        passed=not (missing or extra or incomplete),
        description=f"{len(indexed)} chunks indexed; {missing} platinum chunks missing, {extra} not in platinum, "
        f"{incomplete} without a complete receipt",
        metadata={"missing": missing, "extra": extra, "incomplete_receipts": incomplete},
    )
