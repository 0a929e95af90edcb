"""What is in the lake: every table of every source, its size, Delta version, last run and quarantine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from aquifer.catalog import Catalog
from aquifer.lake import Lake
from aquifer.medallion.layers import QUARANTINE, Layer


def table_status(lake: Lake, catalog: Catalog) -> list[dict[str, Any]]:
    rows = []
    for source in catalog:
        for layer in (*Layer, QUARANTINE):
            entry: dict[str, Any] = {
                "layer": layer,
                "dataset": source.id,
                "path": lake.uri(layer, source.id),
                "exists": lake.exists(layer, source.id),
                "rows": 0,
                "delta_version": None,
                "last_run_id": None,
                "last_commit_at": None,
            }
            if entry["exists"]:
                table = lake.table(layer, source.id)
                commit = lake.last_commit(layer, source.id) or {}
                entry["rows"] = lake.scan(layer, source.id).select(pl.len()).collect().item()
                entry["delta_version"] = table.version()
                entry["last_run_id"] = commit.get("aquifer.run_id")
                if "timestamp" in commit:
                    entry["last_commit_at"] = dt.datetime.fromtimestamp(commit["timestamp"] / 1000, dt.UTC).isoformat()
                if layer == QUARANTINE:
                    reasons = lake.scan(layer, source.id).group_by("reason").len().sort("reason").collect()
                    entry["quarantined_by_reason"] = dict(reasons.rows())
            rows.append(entry)
    return rows
