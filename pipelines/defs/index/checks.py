"""The index's gate: it holds exactly the certified platinum chunks, each with a complete receipt."""

import polars as pl

from aquifer.catalog import Catalog
from aquifer.index import RECEIPT_COLUMNS, VectorStore
from aquifer.lake import Lake
from aquifer.medallion.checks import CheckOutcome
from aquifer.medallion.layers import Layer

IN_SYNC = "in_sync_with_platinum"
IN_SYNC_DESCRIPTION = (
    "The index holds every current platinum chunk and nothing else (no superseded, stale or removed chunk can be "
    "retrieved), and every row carries a complete provenance receipt."
)


def in_sync(index: VectorStore, lake: Lake, catalog: Catalog) -> CheckOutcome:
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
