"""The LanceDB store: the only module that speaks LanceDB, and so the only one that writes a filter string.

Search is exact below ``ann_min_rows`` rows; from there on :meth:`LanceDBStore.ensure_indexes` builds an IVF_HNSW_SQ
vector index (searched in ``nprobes`` partitions, ``refine_factor`` x k candidates re-ranked on full vectors) and
scalar indexes on the prefilter columns. Every sync that changes anything is a new LanceDB version.
docs/benchmarks.md has the measurements behind the defaults.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from aquifer.index.base import StoreBase
from aquifer.index.schema import SCHEMA, TABLE
from aquifer.medallion.layers import Layer

if TYPE_CHECKING:
    from aquifer.settings import Settings

ROWS_PER_PARTITION = 12_500


def _quoted(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _sql_in(column: str, values: Sequence[str]) -> str:
    """``column IN ('a', 'b')`` with quotes escaped; ``false`` for no values (nothing matches)."""
    if not values:
        return "false"
    return f"{column} IN ({_quoted(values)})"


def _sql_acl(principals: Sequence[str]) -> str:
    """Documents without an ACL, or whose ACL lists one of ``principals`` (docs/benchmarks.md: the form measured)."""
    if not principals:
        return "NOT acl_listed"
    return f"(NOT acl_listed OR array_has_any(acl, make_array({_quoted(principals)})))"


class LanceDBStore(StoreBase):
    """The LanceDB table of platinum chunks (:data:`~aquifer.index.schema.SCHEMA`)."""

    def __init__(
        self, uri: str, *, ann_min_rows: int = 20_000, nprobes: int | None = None, refine_factor: int = 10
    ) -> None:
        import lancedb

        self.uri = uri
        self.ann_min_rows, self.nprobes, self.refine_factor = ann_min_rows, nprobes, refine_factor
        self._db = lancedb.connect(uri)
        self._ann: dict[int, int | None] = {}
        self.refresh_s = 0.25
        self._handle: tuple[Any, int] | None = None
        self._checked = 0.0
        self._handle_lock = threading.Lock()
        self._freshness: dict[int, pl.DataFrame] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> LanceDBStore:
        return cls(
            settings.index_location,
            ann_min_rows=settings.index_ann_min_rows,
            nprobes=settings.index_nprobes,
            refine_factor=settings.index_refine_factor,
        )

    def has_vector_index(self, *, version: int | None = None) -> bool:
        tbl, resolved = self._resolve(version)
        return self._ann_probes(tbl, resolved) is not None

    def _ann_probes(self, tbl: Any, key: int) -> int | None:
        """Partitions to search in this table version (None: no vector index, exact search). Default: all of
        them - one per 12,500 rows - which is what kept filtered recall@10 >= 0.98 (docs/benchmarks.md)."""
        if key not in self._ann:
            indexed = any(i.index_type.startswith("IVF") for i in tbl.list_indices())
            partitions = max(1, int(tbl.count_rows()) // ROWS_PER_PARTITION)
            self._ann[key] = (self.nprobes or partitions) if indexed else None
        return self._ann[key]

    def ensure_indexes(self) -> dict[str, Any]:
        """Build the ANN and scalar indexes once the table is big enough; fold new rows into existing ones.

        IVF_HNSW_SQ, one partition per 12,500 rows: at 100,000 derived chunks it reached filtered recall@10 >= 0.98
        at every selectivity where IVF_PQ (48 or 96 sub-vectors) stayed below it, and built in a third of the time
        (docs/benchmarks.md).
        """
        from lancedb.index import HnswSq

        tbl = self.table()
        rows = int(tbl.count_rows())
        if rows < self.ann_min_rows:
            return {"vector_index": "none (exact search)", "rows": rows}
        if not self.has_vector_index():
            start = time.perf_counter()
            partitions = max(1, rows // ROWS_PER_PARTITION)
            tbl.create_index("vector", config=HnswSq(distance_type="cosine", num_partitions=partitions))
            self._scalar_indexes(tbl)
            self._ann.clear()
            self._checked = 0.0
            return {
                "vector_index": f"IVF_HNSW_SQ ({partitions} partitions)",
                "rows": rows,
                "build_seconds": round(time.perf_counter() - start, 1),
            }
        added = self._scalar_indexes(tbl)  # an index built before a column existed gains its index
        tbl.optimize()  # adds new rows to the existing indexes
        self._checked = 0.0
        return {"vector_index": "IVF_HNSW_SQ (optimized)", "rows": rows} | ({"added": added} if added else {})

    @staticmethod
    def _scalar_indexes(tbl: Any) -> list[str]:
        """The prefilter's scalar indexes, those missing: BTree on class_key and fresh_until, a LabelList on acl and
        a Bitmap on acl_listed. The last two only together answer the ACL term from indexes (an OR with an
        unindexed side is scanned): -32% per search at 100,000 chunks with ACLs (docs/benchmarks.md)."""
        from lancedb.index import Bitmap, BTree, LabelList

        wanted = {"class_key": BTree(), "fresh_until": BTree(), "acl": LabelList(), "acl_listed": Bitmap()}
        present = {column for index in tbl.list_indices() for column in index.columns}
        added = [column for column in wanted if column not in present]
        for column in added:
            tbl.create_index(column, config=wanted[column])
        return added

    def _latest(self) -> tuple[Any, int] | None:
        """A handle on the latest version, re-opened at most every ``refresh_s`` (opening costs ~0.8 ms, reading
        ``version`` ~0.3 ms: per request that was more than the policy). A new handle replaces the old one, never
        mutated under a concurrent search; writes through this object refresh it at once."""
        now = time.monotonic()
        if self._handle is None or now - self._checked >= self.refresh_s:
            with self._handle_lock:
                if self._handle is None or now - self._checked >= self.refresh_s:
                    if TABLE not in self._db.list_tables().tables:
                        return None
                    tbl = self._db.open_table(TABLE)
                    self._handle = (tbl, int(tbl.version))
                    self._checked = now
        return self._handle

    def _resolve(self, version: int | None) -> tuple[Any, int]:
        latest = self._latest()
        if latest is None:
            msg = f"no index table at {self.uri}"
            raise FileNotFoundError(msg)
        if version is None or version == latest[1]:
            return latest
        tbl = self._db.open_table(TABLE)
        tbl.checkout(version)
        return tbl, version

    def exists(self) -> bool:
        return self._latest() is not None

    def table(self, *, version: int | None = None) -> Any:
        """A fresh handle (for writes and scans), at ``version`` if given."""
        tbl = self._db.open_table(TABLE)
        if version is not None:
            tbl.checkout(version)
        return tbl

    def version(self) -> int | None:
        latest = self._latest()
        return latest[1] if latest else None

    def versions(self) -> list[dict[str, Any]]:
        return list(self.table().list_versions()) if self.exists() else []

    def columns(self, names: Sequence[str], *, version: int | None = None) -> pl.DataFrame:
        """Some columns of every row, without reading the vectors."""
        arrow = self.table(version=version).search().select(list(names)).limit(None).to_arrow()
        frame = pl.from_arrow(arrow)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def stale_ids(self, moment: dt.datetime, *, version: int | None = None) -> list[str]:
        """Chunks of this index version whose ``fresh_until`` is before ``moment``.

        Freshness as a range predicate in every search cost ~3 ms at 100k chunks; the chunks past their SLA are
        few (platinum drops them at its next run), so they are excluded by id instead, usually with no predicate
        at all. The (fresh_until, id) column is read once per index version (overrides StoreBase's, which reads
        it every time).
        """
        _, resolved = self._resolve(version)
        frame = self._freshness.get(resolved)
        if frame is None:
            frame = self.columns(["platinum_id", "fresh_until"], version=resolved).sort("fresh_until")
            self._freshness = {resolved: frame}
        cut = frame["fresh_until"].search_sorted(moment, side="left")
        return frame["platinum_id"].head(int(cut)).to_list()

    def search(
        self,
        vector: np.ndarray,
        *,
        classes: Sequence[str],
        principals: Sequence[str] = (),
        exclude_ids: Sequence[str] = (),
        k: int,
        version: int | None = None,
    ) -> list[dict[str, Any]]:
        where = f"({_sql_in('class_key', classes)}) AND {_sql_acl(principals)}"
        if exclude_ids:
            where = f"({where}) AND NOT ({_sql_in('platinum_id', exclude_ids)})"
        tbl, resolved = self._resolve(version)
        query = tbl.search(vector).distance_type("cosine").where(where, prefilter=True).limit(k)
        probes = self._ann_probes(tbl, resolved)
        if probes is not None:
            query = query.nprobes(probes).refine_factor(self.refine_factor)
        result = query.to_arrow()
        rows: list[dict[str, Any]] = result.to_pylist()
        for row in rows:
            row["score"] = 1.0 - float(row.pop("_distance"))
        return rows

    def row(self, chunk_id: str) -> dict[str, Any] | None:
        layer = Layer.PLATINUM if Layer.of_id(chunk_id) is Layer.PLATINUM else Layer.GOLD
        column = layer.key
        rows = self.table().search().where(_sql_in(column, [chunk_id])).limit(1).to_list()
        return rows[0] if rows else None

    def schema_matches(self) -> bool:
        return bool(self.table().schema == SCHEMA)

    def apply(self, add: pa.Table, remove: Sequence[str], *, replace_all: bool = False) -> tuple[int, int]:
        """Remove ``remove`` (platinum ids) and add ``add``; returns the new version and row count."""
        created = False
        if replace_all and self.exists():
            # overwrite is a new version of the same table: earlier versions stay readable (as_of)
            self._db.create_table(TABLE, data=add if add.num_rows else SCHEMA.empty_table(), mode="overwrite")
            self._ann.clear()
            self._checked = 0.0
            tbl = self.table()
            return int(tbl.version), int(tbl.count_rows())
        if not self.exists():
            self._db.create_table(TABLE, data=add if add.num_rows else SCHEMA.empty_table())
            created = True
        tbl = self.table()
        for start in range(0, len(remove), 1000):
            tbl.delete(_sql_in("platinum_id", remove[start : start + 1000]))
        if add.num_rows and not created:
            tbl.add(add)
        tbl = self.table()
        self._checked = 0.0  # the next read sees this version
        return int(tbl.version), int(tbl.count_rows())
