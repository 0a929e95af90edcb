"""Bronze: every landing file becomes one row per record, raw bytes kept, nothing dropped.

The source's reader (:mod:`aquifer.medallion.readers`, one per format) splits a file into records; whatever it
cannot read, or what passes a limit, is still a bronze row with its raw bytes and a ``parse_status`` saying why,
and silver quarantines it. A file over the size limit is one row with its head and its sha256, never read whole.

Ingestion is incremental and idempotent: a file whose (uri, size, mtime) was seen, or whose sha256 is what the uri
held when last read, is not read again, and a record is keyed by (source, uri, content sha256, occurrence), so
re-ingesting unchanged content adds nothing. A file edited back to content it held before (an ACL widened, then
narrowed again) is read again as a new observation: its records' ids also count the earlier reads of those bytes,
so they reach silver, which marks that version received now and makes it current again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from aquifer.catalog import Source
from aquifer.medallion.common import PromotionResult, RunContext
from aquifer.medallion.layers import Layer
from aquifer.medallion.readers import ReaderLimits, Record, _failed, read_records

CODE_VERSION = "bronze-1"
LAYER = Layer.BRONZE

SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "source_id": pl.String(),
    "uri": pl.String(),
    "record_ordinal": pl.Int64(),
    "file_sha256": pl.String(),
    "file_size": pl.Int64(),
    "file_mtime_ns": pl.Int64(),
    "raw": pl.Binary(),
    "content_sha256": pl.String(),
    "payload": pl.String(),
    "parse_status": pl.String(),
    "parse_error": pl.String(),
    "ingested_at": pl.Datetime("us", "UTC"),
    "run_id": pl.String(),
    "code_version": pl.String(),
}

HEAD_BYTES = 64 * 1024
"""What bronze keeps of a file over the size limit (the file itself stays in the landing zone, its sha256 in bronze)."""


def _head_and_sha256(path: Path) -> tuple[bytes, str]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
        digest.update(head)
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return head, digest.hexdigest()


def landing_files(landing_root: Path, source: Source) -> list[tuple[str, os.stat_result]]:
    """Every file under the source's landing folder, as (uri relative to the landing root, stat), sorted.

    Hidden files (``.name``) are skipped: editors and sync tools leave them, and they are not data. A run that
    finds nothing new is mostly this walk, so it stays on plain strings (pathlib costs microseconds a file).
    """
    root = str(landing_root).rstrip(os.sep) + os.sep
    found: list[tuple[str, os.stat_result]] = []
    stack = [str(landing_root / source.landing_path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file():
                uri = entry.path.removeprefix(root)
                found.append((uri if os.sep == "/" else uri.replace(os.sep, "/"), entry.stat()))
    return sorted(found, key=lambda item: item[0])


def ingest_file(
    source: Source,
    uri: str,
    data: bytes,
    stat: os.stat_result,
    ctx: RunContext,
    *,
    limits: ReaderLimits | None = None,
    file_sha: str | None = None,
    observation: int = 0,
) -> list[dict[str, Any]]:
    """The bronze rows of one landing file. ``data`` is the file, or only its head when ``file_sha`` (the whole
    file's sha256) says it was too large to read. ``observation`` counts earlier ingests of these very bytes at
    this uri (a file edited back to an earlier content): its records then get new ids, so the content the landing
    zone holds now is seen again, and made current, downstream."""
    records: Iterator[Record]
    if file_sha is None:
        file_sha = hashlib.sha256(data).hexdigest()
        records = read_records(source, Path(uri), data, limits)
    else:
        size = (limits or ReaderLimits()).max_file_bytes
        detail = f"{stat.st_size:,} bytes, at most {size:,}"
        records = iter([replace(_failed(data, "file_too_large", detail), digest=file_sha)])
    seen: Counter[str] = Counter()
    rows = []
    for record in records:
        content_sha = record.digest or hashlib.sha256(record.raw).hexdigest()
        occurrence = seen[content_sha]
        seen[content_sha] += 1
        rows.append(
            {
                "record_id": LAYER.stable_id(
                    source.id, uri, content_sha, occurrence, *([observation] if observation else [])
                ),
                "source_id": source.id,
                "uri": uri,
                "record_ordinal": record.ordinal,
                "file_sha256": file_sha,
                "file_size": stat.st_size,
                "file_mtime_ns": stat.st_mtime_ns,
                "raw": record.raw,
                "content_sha256": content_sha,
                "payload": json.dumps(record.payload, ensure_ascii=False, default=str)
                if record.payload is not None
                else None,
                "parse_status": record.status,
                "parse_error": record.error,
                "ingested_at": ctx.now,
                "run_id": ctx.run_id,
                "code_version": CODE_VERSION,
            }
        )
    return rows


def promote_to_bronze(
    source: Source, ctx: RunContext, *, landing_root: Path, limits: ReaderLimits | None = None
) -> PromotionResult:
    """Ingest new or changed landing files of ``source`` into ``bronze/<source.id>``."""
    limits = limits or ReaderLimits()
    lake = ctx.lake
    known = lake.read(
        LAYER,
        source.id,
        columns=["uri", "file_sha256", "file_size", "file_mtime_ns", "record_id", "ingested_at"],
        schema=SCHEMA,
    )
    seen_stat = set(known.select("uri", "file_size", "file_mtime_ns").unique().iter_rows())
    # What each uri held when last read, and how often each content was read there: unchanged content is skipped,
    # content the file held before (an edit undone) is read again as a new observation.
    latest = dict(
        known.sort("ingested_at").group_by("uri", maintain_order=True).agg(pl.col("file_sha256").last()).iter_rows()
    )
    ingests = {
        (uri, sha): n
        for uri, sha, n in known.group_by("uri", "file_sha256").agg(pl.col("ingested_at").n_unique()).iter_rows()
    }

    rows: list[dict[str, Any]] = []
    files_read = 0
    for uri, stat in landing_files(landing_root, source):
        if (uri, stat.st_size, stat.st_mtime_ns) in seen_stat:
            continue
        if stat.st_size > limits.max_file_bytes:  # hashed in pieces, never held in memory
            data, file_sha = _head_and_sha256(landing_root / uri)
        else:
            data, file_sha = (landing_root / uri).read_bytes(), None
        sha = file_sha or hashlib.sha256(data).hexdigest()
        if latest.get(uri) == sha:
            continue  # touched but unchanged
        files_read += 1
        observation = ingests.get((uri, sha), 0)
        rows.extend(
            ingest_file(source, uri, data, stat, ctx, limits=limits, file_sha=file_sha, observation=observation)
        )

    # A changed file re-yields its unchanged records: keep only record ids bronze does not hold yet.
    new = pl.DataFrame(rows, schema=SCHEMA).join(known.select("record_id"), on="record_id", how="anti")
    commit = ctx.commit(LAYER, source.id, CODE_VERSION, upstream={})
    version = lake.append(LAYER, source.id, new, commit=commit)
    statuses = new.group_by("parse_status").len().sort("parse_status").rows()
    return PromotionResult(
        layer=LAYER,
        dataset=source.id,
        table_uri=lake.uri(LAYER, source.id),
        version=version,
        rows_total=known.height + new.height,
        rows_written=new.height,
        metadata={"files_read": files_read, "new_records_by_status": dict(statuses)},
    )
