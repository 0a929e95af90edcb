"""Find a chunk in the lake and say, in words, what the policy decides for it and why."""

from __future__ import annotations

from typing import Any

import polars as pl

from aquifer.catalog import Catalog
from aquifer.lake import Lake
from aquifer.policy.decision import Resource

CHUNK_COLUMNS = ("chunk_id", "platinum_id", "dataset", "title", "classification", "pii_types")


def find_chunk(lake: Lake, catalog: Catalog, chunk_id: str) -> tuple[dict[str, Any], Resource] | None:
    """The chunk ``chunk_id`` (a chunk id or a platinum id): from platinum when certified, else from gold."""
    for layer in ("platinum", "gold"):
        for dataset in catalog.sources:
            if not lake.exists(layer, dataset):
                continue
            lf = lake.scan(layer, dataset)
            names = lf.collect_schema().names()
            cond = pl.col("chunk_id") == chunk_id
            if "platinum_id" in names:
                cond = cond | (pl.col("platinum_id") == chunk_id)
            rows = lf.filter(cond).head(1).collect()
            if rows.height:
                row = rows.row(0, named=True)
                return row, Resource.from_row(row, layer=layer)
    return None
