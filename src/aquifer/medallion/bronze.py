"""Bronze: every landing file becomes one row per record, raw bytes kept, nothing dropped.

A record is a Markdown file, a JSON line, or a CSV data row. Whatever cannot be read (an empty file, invalid
UTF-8, binary content, a truncated JSON line, a CSV row with the wrong column count) is still a bronze row, with
its raw bytes and a ``parse_status`` saying why; silver quarantines it. Parsed records carry a uniform JSON
``payload`` (front matter + body for Markdown, the object for JSON lines, header -> value for CSV), so silver
normalises every format the same way.

Ingestion is incremental and idempotent: a file whose (uri, size, mtime) or sha256 was seen is not read again,
and a record is keyed by (source, uri, content sha256, occurrence), so re-ingesting unchanged content adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from aquifer.catalog import Source
from aquifer.medallion.common import PromotionResult, RunContext, stable_id

CODE_VERSION = "bronze-1"
LAYER = "bronze"

OK = "ok"
# Stable parse status codes; silver copies them into quarantine as reason codes.
PARSE_ERRORS = {
    "empty_file": "the file is empty",
    "binary_content": "the file holds binary data (NUL bytes), not text",
    "invalid_utf8": "the bytes are not valid UTF-8",
    "invalid_json": "the line is not valid JSON",
    "not_an_object": "the JSON value is not an object",
    "csv_column_count": "the CSV row has a different number of columns than the header",
    "csv_no_header": "the CSV file has no header row",
    "invalid_front_matter": "the Markdown front matter is not a YAML mapping",
    "unsupported_extension": "the file extension does not match the source format",
}

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

try:  # libyaml's loader is ~10x faster on front matter; fall back where the wheel lacks it
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader


@dataclass(frozen=True)
class Record:
    ordinal: int  # 1-based line or row number; 0 for a whole-file record
    raw: bytes
    payload: dict[str, Any] | None
    status: str
    error: str | None = None


def _failed(raw: bytes, status: str, detail: str | None = None, ordinal: int = 0) -> Record:
    message = PARSE_ERRORS[status] + (f": {detail}" if detail else "")
    return Record(ordinal=ordinal, raw=raw, payload=None, status=status, error=message)


def _split_front_matter(text: str) -> tuple[dict[str, Any], str] | str:
    """Return (front matter, body), or an error message when the front matter is not a mapping."""
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return "front matter opened with '---' but never closed"
    try:
        meta = yaml.load(text[3:end], Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        return str(exc).splitlines()[0]
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return f"front matter is a {type(meta).__name__}, not a mapping"
    body_start = text.find("\n", end + 4)
    body = text[body_start + 1 :] if body_start >= 0 else ""
    # YAML turns ISO timestamps into datetimes; keep everything JSON-serialisable and as written.
    return {str(k): (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in meta.items()}, body


def _markdown_records(data: bytes) -> Iterator[Record]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield _failed(data, "invalid_utf8", f"byte {exc.start}")
        return
    parsed = _split_front_matter(text)
    if isinstance(parsed, str):
        yield _failed(data, "invalid_front_matter", parsed)
        return
    meta, body = parsed
    yield Record(ordinal=0, raw=data, payload={**meta, "body": body}, status=OK)


def _jsonl_records(data: bytes) -> Iterator[Record]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue  # blank separator lines are not records
        try:
            value = json.loads(line.decode("utf-8"))  # decode first: json.loads(bytes) guesses UTF-16/32 from BOMs
        except UnicodeDecodeError as exc:
            yield _failed(line, "invalid_utf8", f"line {number}, byte {exc.start}", number)
            continue
        except json.JSONDecodeError as exc:
            yield _failed(line, "invalid_json", f"line {number}: {exc.msg} at column {exc.colno}", number)
            continue
        if not isinstance(value, dict):
            yield _failed(line, "not_an_object", f"line {number} holds a {type(value).__name__}", number)
            continue
        yield Record(ordinal=number, raw=line, payload=value, status=OK)


def _csv_records(data: bytes) -> Iterator[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield _failed(data, "invalid_utf8", f"byte {exc.start}")
        return
    lines = text.splitlines(keepends=True)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        yield _failed(data, "csv_no_header")
        return
    previous_line = reader.line_num
    for row in reader:
        # Rows may span lines (quoted newlines): the raw bytes are the lines this row consumed.
        raw = "".join(lines[previous_line : reader.line_num]).encode()
        number = reader.line_num
        previous_line = reader.line_num
        if not row:
            continue
        if len(row) != len(header):
            detail = f"line {number}: {len(row)} columns, header has {len(header)}"
            yield _failed(raw, "csv_column_count", detail, number)
            continue
        yield Record(ordinal=number, raw=raw, payload=dict(zip(header, row, strict=True)), status=OK)


_READERS = {"markdown": _markdown_records, "jsonl": _jsonl_records, "csv": _csv_records}


def read_records(source: Source, path: Path, data: bytes) -> Iterator[Record]:
    """Split one landing file into records. Never raises on bad content: failures are records too."""
    if not data:
        yield _failed(data, "empty_file")
        return
    if b"\x00" in data[:8192]:
        yield _failed(data, "binary_content")
        return
    if path.suffix.lower() not in source.extensions:
        yield _failed(data, "unsupported_extension", f"{path.suffix or 'no extension'} in a {source.format} source")
        return
    yield from _READERS[source.format](data)


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


def ingest_file(source: Source, uri: str, data: bytes, stat: os.stat_result, ctx: RunContext) -> list[dict[str, Any]]:
    file_sha = hashlib.sha256(data).hexdigest()
    seen: Counter[str] = Counter()
    rows = []
    for record in read_records(source, Path(uri), data):
        content_sha = hashlib.sha256(record.raw).hexdigest()
        occurrence = seen[content_sha]
        seen[content_sha] += 1
        rows.append(
            {
                "record_id": stable_id(LAYER, source.id, uri, content_sha, occurrence),
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


def promote_to_bronze(source: Source, landing_root: Path, ctx: RunContext) -> PromotionResult:
    """Ingest new or changed landing files of ``source`` into ``bronze/<source.id>``."""
    lake = ctx.lake
    known = lake.read(
        LAYER,
        source.id,
        columns=["uri", "file_sha256", "file_size", "file_mtime_ns", "record_id"],
        schema=SCHEMA,
    )
    seen_stat = set(known.select("uri", "file_size", "file_mtime_ns").unique().iter_rows())
    seen_sha = set(known.select("uri", "file_sha256").unique().iter_rows())

    rows: list[dict[str, Any]] = []
    files_read = 0
    for uri, stat in landing_files(landing_root, source):
        if (uri, stat.st_size, stat.st_mtime_ns) in seen_stat:
            continue
        data = (landing_root / uri).read_bytes()
        if (uri, hashlib.sha256(data).hexdigest()) in seen_sha:
            continue  # touched but unchanged
        files_read += 1
        rows.extend(ingest_file(source, uri, data, stat, ctx))

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
