"""The incremental skeleton every promotion above bronze follows, written once.

1. :func:`upstream`: read the layer below at its current Delta version (recorded in every row's lineage and in the
   commit), or an empty frame of its schema before its first run;
2. :func:`pending`: the upstream rows this layer has not accounted for, deciding on the key column first and
   decoding full rows only for the new ones;
3. the layer's own transform (a pure function of frames, in the layer's module);
4. :func:`write`: inserts, updates and deletes by key, in one Delta commit naming the upstream version;
5. :func:`result`: what the run did, for the asset's metadata.

A run that finds nothing new writes no Delta version anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from aquifer.medallion.common import PromotionResult, RunContext
from aquifer.medallion.layers import Layer


@dataclass(frozen=True)
class Upstream:
    """The table a promotion reads, at the version it read it."""

    layer: Layer
    dataset: str
    version: int | None
    frame: pl.LazyFrame

    @property
    def table(self) -> str:
        return f"{self.layer}/{self.dataset}"

    def lineage(self, ctx: RunContext, code_version: str) -> dict[str, Any]:
        """The lineage columns every row this run writes carries (besides its ``upstream_ids``)."""
        return {
            "upstream_table": self.table,
            "upstream_version": self.version,
            "run_id": ctx.run_id,
            "code_version": code_version,
        }


def upstream(ctx: RunContext, layer: Layer, dataset: str, schema: Mapping[str, pl.DataType]) -> Upstream:
    """``layer/dataset`` at its current version (an empty frame of ``schema`` before it exists)."""
    version = ctx.lake.version(layer, dataset)
    frame = ctx.lake.scan(layer, dataset, version=version) if version is not None else pl.LazyFrame(schema=schema)
    return Upstream(layer, dataset, version, frame)


def pending(frame: pl.LazyFrame, seen: pl.DataFrame, key: str) -> pl.LazyFrame:
    """The rows of ``frame`` whose ``key`` is not in ``seen``: the ids are decided on one column, then the rows
    are selected with a filter, not a semi-join, so polars decodes the other columns only for matching rows."""
    ids = frame.select(key).join(seen.lazy().select(key), on=key, how="anti").collect()
    return frame.filter(pl.col(key).is_in(ids[key].implode()))


def write(
    ctx: RunContext,
    layer: Layer,
    dataset: str,
    code_version: str,
    source: Upstream,
    inserts: pl.DataFrame,
    *,
    key: str,
    updates: pl.DataFrame | None = None,
    delete_keys: Sequence[str] = (),
) -> int | None:
    """One Delta commit of the run's changes, its metadata naming the upstream table and version read."""
    commit = ctx.commit(layer, dataset, code_version, {source.table: source.version})
    return ctx.lake.upsert(layer, dataset, inserts, key=key, updates=updates, delete_keys=delete_keys, commit=commit)


def result(
    ctx: RunContext,
    layer: Layer,
    dataset: str,
    version: int | None,
    *,
    rows_total: int,
    rows_written: int,
    metadata: dict[str, Any],
) -> PromotionResult:
    return PromotionResult(
        layer=layer,
        dataset=dataset,
        table_uri=ctx.lake.uri(layer, dataset),
        version=version,
        rows_total=rows_total,
        rows_written=rows_written,
        metadata=metadata,
    )
