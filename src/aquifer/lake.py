"""All Delta Lake access goes through this module.

Tables live at ``<lake_root>/<layer>/<dataset>``. The root is a local path or an object-store URI
(``s3://bucket/lake``, ``gs://...``) that deltalake understands, so moving the lake is configuration only
(``AQUIFER_LAKE_URI`` plus ``AQUIFER_STORAGE_OPTIONS``). Every write carries commit metadata (asset key, run id,
upstream versions) so Delta history alone can answer "which run wrote this version, from what".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake

from aquifer.settings import Settings, get_settings

OP_COLUMN = "_op"


@dataclass(frozen=True)
class CommitInfo:
    """What a write records in the Delta log, next to the data."""

    asset_key: str
    run_id: str
    code_version: str
    upstream_versions: Mapping[str, int | None] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, str]:
        return {
            "aquifer.asset_key": self.asset_key,
            "aquifer.run_id": self.run_id,
            "aquifer.code_version": self.code_version,
            "aquifer.upstream_versions": json.dumps(dict(self.upstream_versions), sort_keys=True),
        }


class Lake:
    """A handle on the lake root.

    >>> lake = Lake("/tmp/lake")
    >>> lake.uri("bronze", "product_docs")
    '/tmp/lake/bronze/product_docs'
    """

    def __init__(self, root: str, *, storage_options: Mapping[str, str] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Lake:
        settings = settings or get_settings()
        return cls(settings.lake_root, storage_options=settings.storage_options)

    def uri(self, layer: str, dataset: str) -> str:
        return f"{self.root}/{layer}/{dataset}"

    def exists(self, layer: str, dataset: str) -> bool:
        return DeltaTable.is_deltatable(self.uri(layer, dataset), storage_options=self.storage_options or None)

    def table(self, layer: str, dataset: str, *, version: int | None = None) -> DeltaTable:
        return DeltaTable(self.uri(layer, dataset), version=version, storage_options=self.storage_options or None)

    def version(self, layer: str, dataset: str) -> int | None:
        """Latest Delta version, or None when the table does not exist yet."""
        if not self.exists(layer, dataset):
            return None
        return self.table(layer, dataset).version()

    def scan(
        self, layer: str, dataset: str, *, version: int | None = None, columns: Sequence[str] | None = None
    ) -> pl.LazyFrame:
        lf = pl.scan_delta(self.uri(layer, dataset), version=version, storage_options=self.storage_options or None)
        return lf.select(columns) if columns is not None else lf

    def read(
        self,
        layer: str,
        dataset: str,
        *,
        version: int | None = None,
        columns: Sequence[str] | None = None,
        schema: Mapping[str, pl.DataType] | None = None,
    ) -> pl.DataFrame:
        """Read a table, or an empty frame of ``schema`` when it does not exist yet."""
        if not self.exists(layer, dataset):
            if schema is None:
                msg = f"Delta table {self.uri(layer, dataset)} does not exist"
                raise FileNotFoundError(msg)
            empty = pl.DataFrame(schema=dict(schema))
            return empty.select(columns) if columns is not None else empty
        return self.scan(layer, dataset, version=version, columns=columns).collect()

    def append(
        self, layer: str, dataset: str, rows: pl.DataFrame, *, commit: CommitInfo, merge_schema: bool = False
    ) -> int | None:
        """Append rows; writes nothing (no new version) when ``rows`` is empty and the table exists.

        An empty first write still creates the table, so downstream layers and checks see its schema.
        ``merge_schema`` adds new columns to an existing table (older rows read them as null).
        """
        if rows.is_empty() and self.exists(layer, dataset):
            return self.version(layer, dataset)
        write_deltalake(
            self.uri(layer, dataset),
            rows.to_arrow(),
            mode="append",
            schema_mode="merge" if merge_schema else None,
            storage_options=self.storage_options or None,
            commit_properties=CommitProperties(custom_metadata=commit.as_metadata()),
        )
        return self.version(layer, dataset)

    def upsert(
        self,
        layer: str,
        dataset: str,
        inserts: pl.DataFrame,
        *,
        key: str,
        commit: CommitInfo,
        updates: pl.DataFrame | None = None,
        delete_keys: Sequence[str] = (),
    ) -> int | None:
        """Add ``inserts`` (keys the table does not hold), replace ``updates`` and delete ``delete_keys`` by
        ``key``, in one Delta commit.

        Only new rows is an append (a merge scans every key of the table: 1.2 s instead of 0.07 s at 350k rows).
        The caller passes only what changed: a run with nothing to change writes no version.
        """
        changed = inserts if updates is None else pl.concat([inserts, updates.select(inserts.columns)])
        if not self.exists(layer, dataset) or ((updates is None or updates.is_empty()) and not delete_keys):
            return self.append(layer, dataset, inserts, commit=commit)
        columns = changed.columns
        deletes = pl.DataFrame({key: list(delete_keys)}, schema={key: changed.schema[key]})
        source = pl.concat(
            [
                changed.with_columns(pl.lit("upsert").alias(OP_COLUMN)),
                deletes.with_columns(pl.lit("delete").alias(OP_COLUMN)),
            ],
            how="diagonal_relaxed",
        )
        assignments = {c: f"s.`{c}`" for c in columns}
        (
            self.table(layer, dataset)
            .merge(
                source=source.to_arrow(),
                predicate=f"t.`{key}` = s.`{key}`",
                source_alias="s",
                target_alias="t",
                commit_properties=CommitProperties(custom_metadata=commit.as_metadata()),
            )
            .when_matched_delete(predicate=f"s.{OP_COLUMN} = 'delete'")
            .when_matched_update(updates=assignments, predicate=f"s.{OP_COLUMN} = 'upsert'")
            .when_not_matched_insert(updates=assignments, predicate=f"s.{OP_COLUMN} = 'upsert'")
            .execute()
        )
        return self.version(layer, dataset)

    def history(self, layer: str, dataset: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        return self.table(layer, dataset).history(limit)

    def last_commit(self, layer: str, dataset: str) -> dict[str, Any] | None:
        if not self.exists(layer, dataset):
            return None
        entries = self.history(layer, dataset, limit=1)
        return entries[0] if entries else None
