"""The vector index of platinum: one LanceDB row per certified chunk, with everything serving needs.

Each row holds the chunk's vector (all-MiniLM-L6-v2 over ``title + text``), its text and PII spans (for redaction),
its policy class (dataset, layer, classification, PII types, trust) with a ``class_key`` the prefilter matches on,
and its provenance receipt precomputed from the lineage (source uri and sha256; bronze, silver, gold and platinum
ids with the Delta versions they were read at; the Dagster run). Serving then reads nothing but the index.

:meth:`ChunkIndex.sync` makes the index equal to platinum: chunks new to platinum are embedded and added, chunks that
left platinum (superseded, stale, removed) are deleted, chunks whose text changed are re-embedded; all in the same
run. Every sync that changes anything is a new LanceDB version, so an answer can be replayed at an earlier one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from aquifer.embedding import DIMENSIONS
from aquifer.lake import Lake
from aquifer.lineage import trace
from aquifer.policy.decision import Resource
from aquifer.tokenizer import EMBEDDING_MODEL

if TYPE_CHECKING:
    from aquifer.catalog import Catalog
    from aquifer.embedding import Embedder
    from aquifer.settings import Settings

TABLE = "chunks"
LAYER = "platinum"
ROWS_PER_PARTITION = 12_500

RECEIPT_COLUMNS = (
    "source_uri", "source_sha256", "bronze_id", "bronze_version", "silver_id", "silver_version", "gold_id",
    "gold_version", "platinum_id", "platinum_version", "run_id",
)  # fmt: skip

SCHEMA = pa.schema(
    [
        ("platinum_id", pa.string()),
        ("chunk_id", pa.string()),
        ("dataset", pa.string()),
        ("layer", pa.string()),
        ("classification", pa.string()),
        ("pii_types", pa.list_(pa.string())),
        ("untrusted", pa.bool_()),
        ("class_key", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("token_count", pa.int64()),
        ("pii_spans", pa.list_(pa.struct([("type", pa.string()), ("start", pa.int64()), ("end", pa.int64())]))),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("fresh_until", pa.timestamp("us", tz="UTC")),
        ("text_hash", pa.string()),
        ("source_uri", pa.string()),
        ("source_sha256", pa.string()),
        ("bronze_id", pa.string()),
        ("bronze_version", pa.int64()),
        ("silver_id", pa.string()),
        ("silver_version", pa.int64()),
        ("gold_id", pa.string()),
        ("gold_version", pa.int64()),
        ("platinum_version", pa.int64()),
        ("run_id", pa.string()),
        ("embedding_model", pa.string()),
        ("vector", pa.list_(pa.float32(), DIMENSIONS)),
    ]
)

_PLATINUM_COLUMNS = [
    "platinum_id", "chunk_id", "dataset", "title", "text", "token_count", "classification", "pii_types",
    "pii_spans", "updated_at", "fresh_until",
]  # fmt: skip


def class_key(resource: Resource) -> str:
    """The string the prefilter matches: every attribute of the class, in a fixed order."""
    return "/".join(
        [resource.dataset, resource.layer, resource.classification, ",".join(resource.pii_types),
         "untrusted" if resource.untrusted else "trusted"]
    )  # fmt: skip


def resource_of(row: dict[str, Any]) -> Resource:
    return Resource(
        dataset=row["dataset"],
        classification=row["classification"],
        layer=row["layer"],
        pii_types=tuple(row["pii_types"] or ()),
        untrusted=bool(row["untrusted"]),
    )


def sql_in(column: str, values: Sequence[str]) -> str:
    """``column IN ('a', 'b')`` with quotes escaped; ``false`` for no values (nothing matches)."""
    if not values:
        return "false"
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def _text_hash(title: str | None, text: str) -> str:
    return hashlib.sha256(f"{title or ''}\n{text}".encode()).hexdigest()


@dataclass(frozen=True)
class SyncResult:
    added: int
    removed: int
    unchanged: int
    version: int
    rows: int


class ChunkIndex:
    """The LanceDB table of platinum chunks.

    Search is exact below ``ann_min_rows`` chunks; from there on :meth:`ensure_indexes` builds an IVF_HNSW_SQ
    vector index (searched in ``nprobes`` partitions, ``refine_factor`` x k candidates re-ranked on full vectors)
    and scalar indexes on the prefilter columns. docs/benchmarks.md has the measurements behind the defaults.
    """

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
    def from_settings(cls, settings: Settings) -> ChunkIndex:
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
        from lancedb.index import BTree, HnswSq

        tbl = self.table()
        rows = int(tbl.count_rows())
        if rows < self.ann_min_rows:
            return {"vector_index": "none (exact search)", "rows": rows}
        if not self.has_vector_index():
            start = time.perf_counter()
            partitions = max(1, rows // ROWS_PER_PARTITION)
            tbl.create_index("vector", config=HnswSq(distance_type="cosine", num_partitions=partitions))
            tbl.create_index("class_key", config=BTree())
            tbl.create_index("fresh_until", config=BTree())
            self._ann.clear()
            self._checked = 0.0
            return {"vector_index": f"IVF_HNSW_SQ ({partitions} partitions)", "rows": rows,
                    "build_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        tbl.optimize()  # adds new rows to the existing indexes
        self._checked = 0.0
        return {"vector_index": "IVF_HNSW_SQ (optimized)", "rows": rows}

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

    def classes(self, *, version: int | None = None) -> list[Resource]:
        """Every resource class present in the index (the finite set the prefilter is computed over)."""
        if not self.exists():
            return []
        frame = self.columns(["dataset", "layer", "classification", "pii_types", "untrusted"], version=version)
        assert isinstance(frame, pl.DataFrame)
        return sorted({resource_of(r) for r in frame.unique().iter_rows(named=True)}, key=class_key)

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
        at all. The (fresh_until, id) column is read once per index version.
        """
        _, resolved = self._resolve(version)
        frame = self._freshness.get(resolved)
        if frame is None:
            frame = self.columns(["platinum_id", "fresh_until"], version=resolved).sort("fresh_until")
            self._freshness = {resolved: frame}
        cut = frame["fresh_until"].search_sorted(moment, side="left")
        return frame["platinum_id"].head(int(cut)).to_list()

    def search(self, vector: np.ndarray, *, where: str, k: int, version: int | None = None) -> list[dict[str, Any]]:
        """The ``k`` nearest chunks among those matching ``where`` (a prefilter: never fewer than k because of it),
        with their vectors (for near-duplicate collapse) and ``score`` (cosine similarity)."""
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

    def sync(self, lake: Lake, catalog: Catalog, embedder: Embedder) -> SyncResult:
        """Make the index hold exactly the current platinum chunks."""
        desired, versions = _platinum(lake, catalog)
        existing = (
            self.columns(["platinum_id", "text_hash"])
            if self.exists()
            else pl.DataFrame(schema={"platinum_id": pl.String, "text_hash": pl.String})
        )
        keep = desired.join(existing, on=["platinum_id", "text_hash"], how="semi")
        fresh = desired.join(keep.select("platinum_id"), on="platinum_id", how="anti")
        gone = existing.join(keep.select("platinum_id"), on="platinum_id", how="anti")["platinum_id"].to_list()
        new_rows = _with_receipts(lake, catalog, fresh, versions)
        if new_rows.height:
            texts = [f"{t or ''}\n{x}" for t, x in zip(new_rows["title"], new_rows["text"], strict=True)]
            vectors = embedder.encode(texts)
            table = new_rows.select([f.name for f in SCHEMA if f.name != "vector"]).to_arrow()
            table = table.append_column(
                "vector", pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIMENSIONS)
            )
            table = table.cast(SCHEMA)
        if not self.exists():
            empty = SCHEMA.empty_table()
            self._db.create_table(TABLE, data=table if new_rows.height else empty)
            new_added = True
        else:
            new_added = False
        tbl = self.table()
        for start in range(0, len(gone), 1000):
            tbl.delete(sql_in("platinum_id", gone[start : start + 1000]))
        if new_rows.height and not new_added:
            tbl.add(table)
        tbl = self.table()
        self._checked = 0.0  # the next read sees this version
        return SyncResult(new_rows.height, len(gone), keep.height, int(tbl.version), int(tbl.count_rows()))


def _platinum(lake: Lake, catalog: Catalog) -> tuple[pl.DataFrame, dict[str, int]]:
    frames, versions = [], {}
    for dataset in sorted(catalog.sources):
        version = lake.version(LAYER, dataset)
        if version is None:
            continue
        versions[dataset] = version
        frames.append(lake.scan(LAYER, dataset, version=version).select(_PLATINUM_COLUMNS).collect())
    if not frames:
        return pl.DataFrame(schema={c: pl.String for c in [*_PLATINUM_COLUMNS, "text_hash"]}), versions
    frame = pl.concat(frames, how="vertical_relaxed")
    hashes = [_text_hash(t, x) for t, x in zip(frame["title"], frame["text"], strict=True)]
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
    return frame.with_columns(
        pl.lit(LAYER).alias("layer"),
        pl.lit(False).alias("untrusted"),
        pl.col("pii_types").list.sort(),
        pl.lit(EMBEDDING_MODEL).alias("embedding_model"),
    ).with_columns(
        pl.concat_str(
            [pl.col("dataset"), pl.col("layer"), pl.col("classification"), pl.col("pii_types").list.join(","),
             pl.when(pl.col("untrusted")).then(pl.lit("untrusted")).otherwise(pl.lit("trusted"))],
            separator="/",
        ).alias("class_key")
    )  # fmt: skip
