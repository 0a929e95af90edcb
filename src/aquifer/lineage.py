"""Walk any silver, gold or platinum id back to its bronze records and landing files, and verify them.

Each hop reads the upstream table at the Delta version the row recorded (``upstream_table``,
``upstream_version``), so the trace shows what the transform actually read, even after later runs changed the
table. Silver, gold and platinum nodes show the document's ``acl`` (its principals; None when it has none), so a
trace says who a served chunk was meant for and where that came from. ``verify`` re-hashes every landing file and
compares it with the sha256 bronze recorded at ingestion.
Batches are traced with one read per (table, version), so verifying every platinum row stays cheap.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from aquifer.lake import Lake
from aquifer.medallion.layers import Layer
from aquifer.policy.decision import Resource

if TYPE_CHECKING:
    from aquifer.catalog import Catalog

_DETAIL: dict[str, list[str]] = {
    Layer.PLATINUM: ["dataset", "classification", "acl", "certified_at", "fresh_until"],
    Layer.GOLD: [
        "dataset",
        "doc_id",
        "chunk_index",
        "classification",
        "pii_types",
        "acl",
        "untrusted",
        "superseded_by",
    ],
    Layer.SILVER: ["source_id", "doc_id", "title", "updated_at", "classification", "pii_types", "acl"],
    Layer.BRONZE: [
        "source_id",
        "uri",
        "record_ordinal",
        "file_sha256",
        "content_sha256",
        "parse_status",
        "ingested_at",
    ],
}


class LineageError(LookupError):
    """An id that is not in the lake, or a broken upstream reference."""


@dataclass
class Node:
    id: str
    layer: str
    table: str
    delta_version: int | None
    run_id: str
    code_version: str
    detail: dict[str, Any]
    upstream: list[Node] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "layer": self.layer,
            "table": self.table,
            "delta_version": self.delta_version,
            "run_id": self.run_id,
            "code_version": self.code_version,
            **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.detail.items()},
            **({"problems": self.problems} if self.problems else {}),
            "upstream": [u.as_dict() for u in self.upstream],
        }

    def leaves(self) -> list[Node]:
        return [self] if not self.upstream else [leaf for u in self.upstream for leaf in u.leaves()]

    def all_problems(self) -> list[str]:
        return self.problems + [p for u in self.upstream for p in u.all_problems()]


def _lookup(lake: Lake, layer: str, dataset: str, version: int | None, ids: list[str]) -> dict[str, dict[str, Any]]:
    key = Layer(layer).key
    if not lake.exists(layer, dataset):
        return {}
    columns = [key, "run_id", "code_version", *_DETAIL[layer]]
    if layer != Layer.BRONZE:
        columns += ["upstream_ids", "upstream_table", "upstream_version"]
    else:
        columns.append("raw")
    table = lake.scan(layer, dataset, version=version)
    # a version written before a detail column existed (acl) still traces; its nodes lack that detail
    present = set(table.collect_schema().names())
    columns = [c for c in columns if c in present or c not in _DETAIL[layer]]
    frame = table.filter(pl.col(key).is_in(ids)).select(columns).collect()
    return {row[key]: row for row in frame.iter_rows(named=True)}


def _node(layer: str, dataset: str, version: int | None, row: dict[str, Any]) -> Node:
    node = Node(
        id=row[Layer(layer).key],
        layer=layer,
        table=f"{layer}/{dataset}",
        delta_version=version,
        run_id=row["run_id"],
        code_version=row["code_version"],
        detail={k: row[k] for k in _DETAIL[layer] if k in row},
    )
    if layer == Layer.BRONZE and hashlib.sha256(row["raw"]).hexdigest() != row["content_sha256"]:
        node.problems.append(f"{node.id}: raw bytes in bronze do not match their recorded content_sha256")
    return node


def _expand(lake: Lake, frontier: list[tuple[Node, dict[str, Any]]]) -> None:
    """Attach upstream nodes to every node of the frontier, reading each (table, version) once."""
    wanted: dict[tuple[str, int | None], set[str]] = defaultdict(set)
    for _, row in frontier:
        if "upstream_ids" in row:
            wanted[(row["upstream_table"], row["upstream_version"])].update(row["upstream_ids"])
    found = {}
    for (table, version), ids in wanted.items():
        layer, dataset = table.split("/", 1)
        found[(table, version)] = _lookup(lake, layer, dataset, version, sorted(ids))
    next_frontier: list[tuple[Node, dict[str, Any]]] = []
    for node, row in frontier:
        if "upstream_ids" not in row:
            continue
        layer, dataset = row["upstream_table"].split("/", 1)
        rows = found[(row["upstream_table"], row["upstream_version"])]
        for upstream_id in row["upstream_ids"]:
            upstream_row = rows.get(upstream_id)
            if upstream_row is None:
                node.problems.append(
                    f"{node.id}: upstream {upstream_id} not found in {row['upstream_table']}@v{row['upstream_version']}"
                )
                continue
            child = _node(layer, dataset, row["upstream_version"], upstream_row)
            node.upstream.append(child)
            next_frontier.append((child, upstream_row))
    if next_frontier:
        _expand(lake, next_frontier)


def trace(lake: Lake, ids: list[str], datasets: list[str]) -> list[Node]:
    """Trace ids (of any one layer or mixed) to bronze. Raises :class:`LineageError` for an unknown id."""
    by_layer: dict[Layer, list[str]] = defaultdict(list)
    for record_id in ids:
        of = Layer.of_id(record_id)
        if of is None:
            prefixes = ", ".join(layer.prefix for layer in Layer)
            msg = f"{record_id!r} is not an Aquifer id (expected a {prefixes} prefix)"
            raise LineageError(msg)
        by_layer[of].append(record_id)
    roots: dict[str, tuple[Node, dict[str, Any]]] = {}
    for layer, layer_ids in by_layer.items():
        for dataset in datasets:
            version = lake.version(layer, dataset)
            for found_id, row in _lookup(lake, layer, dataset, version, layer_ids).items():
                roots[found_id] = (_node(layer, dataset, version, row), row)
    missing = [i for i in ids if i not in roots]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        msg = f"{len(missing)} id(s) not found in the current lake tables: {shown}"
        raise LineageError(msg)
    _expand(lake, list(roots.values()))
    return [roots[i][0] for i in ids]


def verify(nodes: list[Node], landing_dir: Path) -> list[str]:
    """Re-hash every landing file the nodes trace to; returns the problems (empty when all verify)."""
    problems = [p for n in nodes for p in n.all_problems()]
    files: dict[str, str] = {}
    for node in nodes:
        leaves = node.leaves()
        if not leaves or leaves[0].layer != Layer.BRONZE:
            problems.append(f"{node.id}: lineage does not reach a bronze record")
        for leaf in leaves:
            if leaf.layer == Layer.BRONZE:
                files[leaf.detail["uri"]] = leaf.detail["file_sha256"]
    for uri, expected in sorted(files.items()):
        path = landing_dir / uri
        if not path.is_file():
            problems.append(f"{uri}: landing file is missing ({path})")
            continue
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            problems.append(f"{uri}: sha256 is {actual}, bronze recorded {expected} (the file changed)")
    return problems


def find_chunk(lake: Lake, catalog: Catalog, chunk_id: str) -> tuple[dict[str, Any], Resource] | None:
    """The row of chunk ``chunk_id`` (a chunk id or a platinum id) and its resource class: from platinum when
    certified, else from gold (``aquifer policy explain --chunk``)."""
    for layer in (Layer.PLATINUM, Layer.GOLD):
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
