"""Pieces every layer shares: the run context, the per-run result, PII span columns (the vocabulary of layers, ids
and lineage columns is :mod:`aquifer.medallion.layers`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aquifer.lake import CommitInfo, Lake

PII_SPAN = pl.Struct({"type": pl.String, "start": pl.Int64, "end": pl.Int64})


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class RunContext:
    """Who is running a promotion: enough to stamp lineage and Delta commit metadata."""

    lake: Lake
    run_id: str
    now: dt.datetime = field(default_factory=utcnow)

    def commit(self, layer: str, dataset: str, code_version: str, upstream: dict[str, int | None]) -> CommitInfo:
        return CommitInfo(
            asset_key=f"{layer}/{dataset}",
            run_id=self.run_id,
            code_version=code_version,
            upstream_versions=upstream,
        )


@dataclass
class PromotionResult:
    """What one promotion did; becomes Dagster materialization metadata."""

    layer: str
    dataset: str
    table_uri: str
    version: int | None
    rows_total: int
    rows_written: int
    metadata: dict[str, Any] = field(default_factory=dict)


def nested_spans(rows: int, spans: dict[int, list[tuple[str, int, int]]]) -> pl.Series:
    """A ``List(PII_SPAN)`` column of ``rows`` entries from the few rows that have spans.

    Building nested polars values row by row from Python objects is slow, and most rows have no PII:
    the spans go in flat and are grouped back per row.
    """
    index = [row for row, found in spans.items() for _ in found]
    flat = [span for found in spans.values() for span in found]
    grouped = (
        pl.DataFrame(
            {
                "row": index,
                "type": [t for t, _, _ in flat],
                "start": [s for _, s, _ in flat],
                "end": [e for _, _, e in flat],
            },
            schema={"row": pl.UInt32, "type": pl.String, "start": pl.Int64, "end": pl.Int64},
        )
        .group_by("row", maintain_order=True)
        .agg(pl.struct("type", "start", "end").alias("spans"))
    )
    return (
        pl.DataFrame({"row": pl.arange(0, rows, dtype=pl.UInt32, eager=True)})
        .join(grouped, on="row", how="left")
        .sort("row")["spans"]
        .fill_null(pl.lit([], pl.List(PII_SPAN)))
    )
