"""Writing the landing zone: the manifest of planted problems, sharded folders, JSON lines and CSV files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aquifer.sample.spec import (
    CSV_HEADER,
    DOCUMENT_MANIFEST_CAP,
    MAX_FILES_PER_DIR,
    MAX_RECORDS_PER_FILE,
    PII_MANIFEST_CAP,
)
from aquifer.sample.text import Clock, Pools

# --------------------------------------------------------------------------------------------------
# Manifest and file writers.
# --------------------------------------------------------------------------------------------------

_MANIFEST_LISTS = (
    "malformed",
    "exact_duplicates",
    "near_duplicates",
    "superseded",
    "stale",
    "instruction_like",
    "pii",
    "documents",
)


@dataclass
class Manifest:
    """What was planted where. ``documents`` lists every document silver is expected to accept, once per
    (source, id), with its ACL principals (None: no ACL), up to ``DOCUMENT_MANIFEST_CAP`` per source;
    ``acl_summary`` counts them per source without a cap (documents, how many carry an ACL, per principal)."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in _MANIFEST_LISTS})
    acl_summary: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, kind: str, **entry: Any) -> None:
        if kind == "pii" and len(self.lists["pii"]) >= PII_MANIFEST_CAP:
            return
        self.lists[kind].append(entry)

    def document(self, source_id: str, doc_id: str, acl: list[str] | None) -> None:
        """One document expected in silver and the principals of its ACL (sorted; None when it has none)."""
        summary = self.acl_summary.setdefault(source_id, {"documents": 0, "with_acl": 0, "principals": {}})
        summary["documents"] += 1
        if acl is not None:
            summary["with_acl"] += 1
            for principal in acl:
                summary["principals"][principal] = summary["principals"].get(principal, 0) + 1
        if summary["documents"] <= DOCUMENT_MANIFEST_CAP:
            self.lists["documents"].append({"source_id": source_id, "id": doc_id, "acl": acl})

    def merge(self, other: Manifest) -> None:
        self.counts.update(other.counts)
        self.acl_summary.update(other.acl_summary)
        for kind, entries in other.lists.items():
            self.lists[kind] += entries
        del self.lists["pii"][PII_MANIFEST_CAP:]

    def to_dict(self, seed: int, scale: int, as_of: dt.date) -> dict[str, Any]:
        return {
            "seed": seed,
            "scale": scale,
            "as_of": as_of.isoformat(),
            "counts": self.counts,
            **self.lists,
            "acl_summary": self.acl_summary,
        }


def _write_new(path: str | Path, data: bytes) -> None:
    # O_EXCL refuses to overwrite: generate and generate_increment only ever add files. Raw os calls
    # because buffered file objects cost more than the write itself for 400,000 small pages.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class ShardedDir:
    """Writes files into p0000, p0001, ... subfolders of at most MAX_FILES_PER_DIR files each."""

    def __init__(self, landing: Path, rel_root: str) -> None:
        self.landing = landing
        self.rel_root = rel_root
        self.files = 0

    def write(self, name: str, data: bytes) -> str:
        shard = f"p{self.files // MAX_FILES_PER_DIR:04d}"
        if self.files % MAX_FILES_PER_DIR == 0:
            (self.landing / self.rel_root / shard).mkdir(parents=True)
        self.files += 1
        uri = f"{self.rel_root}/{shard}/{name}"
        _write_new(f"{self.landing}/{uri}", data)
        return uri


def chunk_uri(rel_dir: str, stem: str, ext: str, index: int, size: int) -> tuple[str, int]:
    """File uri and 1-based line (or CSV data row) of the record at position `index` of a chunked stream."""
    return f"{rel_dir}/{stem}-{index // size + 1:04d}.{ext}", index % size + 1


def write_jsonl(landing: Path, rel_dir: str, stem: str, lines: list[str], size: int, cut: int = -1) -> list[str]:
    """Write `lines` in files of `size`; the line at position `cut` is written without its newline."""
    (landing / rel_dir).mkdir(parents=True, exist_ok=True)
    uris = []
    for start in range(0, len(lines), size):
        chunk = lines[start : start + size]
        uri = chunk_uri(rel_dir, stem, "jsonl", start, size)[0]
        text = "\n".join(chunk) + ("" if start + len(chunk) - 1 == cut else "\n")
        _write_new(landing / uri, text.encode())
        uris.append(uri)
    return uris


def write_csv(landing: Path, rel_dir: str, stem: str, rows: list[Sequence[str] | str], size: int) -> list[str]:
    """Write rows in files of `size` data rows, each with a header; a str row is written verbatim."""
    (landing / rel_dir).mkdir(parents=True, exist_ok=True)
    uris = []
    for start in range(0, len(rows), size):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for row in rows[start : start + size]:
            if isinstance(row, str):
                buf.write(row)
            else:
                writer.writerow(row)
        uri = chunk_uri(rel_dir, stem, "csv", start, size)[0]
        _write_new(landing / uri, buf.getvalue().encode())
        uris.append(uri)
    return uris


@dataclass
class Run:
    """Shared state of one generate() call."""

    landing: Path
    scale: int
    seed: int
    clock: Clock
    pools: Pools
    manifest: Manifest

    def rng(self, source_id: str) -> random.Random:
        # One stream per source, so changing one source's generator leaves the others byte-identical.
        return random.Random(f"{self.seed}/{source_id}")

    @property
    def chunk(self) -> int:
        return min(50 * self.scale, MAX_RECORDS_PER_FILE)
