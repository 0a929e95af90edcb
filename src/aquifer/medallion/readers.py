"""How landing bytes become records, one reader per source format (:data:`READERS`).

A record is a Markdown file, a JSON line, or a CSV data row. Whatever cannot be read (an empty file, invalid UTF-8,
binary content, a truncated JSON line, a CSV row with the wrong column count) is still a record, with its raw bytes
and a status saying why; silver quarantines it. So is whatever passes a limit (:class:`ReaderLimits`: file size,
record size, JSON line length, nesting depth and expanded size): one hostile record never stops its source, and no
parser is asked to recurse without bound. Parsed records carry a uniform JSON ``payload`` (front matter + body for
Markdown, the object for JSON lines, header -> value for CSV), so silver normalises every format the same way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from aquifer.catalog import Source
    from aquifer.settings import Settings

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
    "file_too_large": "the file is larger than bronze reads (AQUIFER_BRONZE_MAX_FILE_BYTES); its head is kept",
    "record_too_large": "the record is larger than bronze reads (AQUIFER_BRONZE_MAX_RECORD_BYTES)",
    "line_too_long": "the JSON line is longer than bronze reads (AQUIFER_BRONZE_MAX_LINE_BYTES)",
    "nesting_too_deep": "the value nests deeper than bronze reads (AQUIFER_BRONZE_MAX_DEPTH)",
    "expands_too_large": "the value expands to more than bronze reads (YAML aliases; AQUIFER_BRONZE_MAX_NODES)",
    "csv_malformed": "the CSV text cannot be parsed from here on",
}


@dataclass(frozen=True)
class ReaderLimits:
    """How much one landing file may ask of the readers; past a limit the file or record is quarantined with its
    code. Settings: ``AQUIFER_BRONZE_MAX_*``."""

    max_file_bytes: int = 128 * 2**20
    max_record_bytes: int = 16 * 2**20
    max_line_bytes: int = 2**20
    max_depth: int = 64
    max_nodes: int = 200_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ReaderLimits:
        return cls(
            max_file_bytes=settings.bronze_max_file_bytes,
            max_record_bytes=settings.bronze_max_record_bytes,
            max_line_bytes=settings.bronze_max_line_bytes,
            max_depth=settings.bronze_max_depth,
            max_nodes=settings.bronze_max_nodes,
        )


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
    digest: str | None = None  # the content sha256 when raw is not the whole content (a file over the size limit)


def _failed(raw: bytes, status: str, detail: str | None = None, ordinal: int = 0) -> Record:
    message = PARSE_ERRORS[status] + (f": {detail}" if detail else "")
    return Record(ordinal=ordinal, raw=raw, payload=None, status=status, error=message)


def _shape_error(value: Any, limits: ReaderLimits) -> tuple[str, str] | None:
    """(status, detail) when a parsed value nests deeper than ``max_depth`` or expands (YAML aliases share nodes,
    which JSON then writes out in full) to more than ``max_nodes`` values; None when it is within both. Iterative:
    the check itself never recurses."""
    stack, seen = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > limits.max_nodes:
            return "expands_too_large", f"more than {limits.max_nodes:,} values"
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limits.max_depth:
            return "nesting_too_deep", f"deeper than {limits.max_depth} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


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
    except RecursionError:
        return "the front matter nests too deeply to parse"
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return f"front matter is a {type(meta).__name__}, not a mapping"
    body_start = text.find("\n", end + 4)
    body = text[body_start + 1 :] if body_start >= 0 else ""
    # YAML turns ISO timestamps into datetimes; keep everything JSON-serialisable and as written.
    return {str(k): (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in meta.items()}, body


def _markdown_records(data: bytes, limits: ReaderLimits) -> Iterator[Record]:
    if len(data) > limits.max_record_bytes:
        yield _failed(data, "record_too_large", f"{len(data):,} bytes, at most {limits.max_record_bytes:,}")
        return
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
    shape = _shape_error(meta, limits)
    if shape:
        yield _failed(data, shape[0], f"front matter {shape[1]}")
        return
    yield Record(ordinal=0, raw=data, payload={**meta, "body": body}, status=OK)


def _jsonl_records(data: bytes, limits: ReaderLimits) -> Iterator[Record]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue  # blank separator lines are not records
        if len(line) > limits.max_line_bytes:
            detail = f"line {number}: {len(line):,} bytes, at most {limits.max_line_bytes:,}"
            yield _failed(line, "line_too_long", detail, number)
            continue
        try:
            value = json.loads(line.decode("utf-8"))  # decode first: json.loads(bytes) guesses UTF-16/32 from BOMs
        except UnicodeDecodeError as exc:
            yield _failed(line, "invalid_utf8", f"line {number}, byte {exc.start}", number)
            continue
        except json.JSONDecodeError as exc:
            yield _failed(line, "invalid_json", f"line {number}: {exc.msg} at column {exc.colno}", number)
            continue
        except RecursionError:  # deeper than the interpreter's stack: far past max_depth
            yield _failed(line, "nesting_too_deep", f"line {number}: deeper than {limits.max_depth} levels", number)
            continue
        if not isinstance(value, dict):
            yield _failed(line, "not_an_object", f"line {number} holds a {type(value).__name__}", number)
            continue
        shape = _shape_error(value, limits)
        if shape:
            yield _failed(line, shape[0], f"line {number}: {shape[1]}", number)
            continue
        yield Record(ordinal=number, raw=line, payload=value, status=OK)


def _csv_records(data: bytes, limits: ReaderLimits) -> Iterator[Record]:
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
    # The csv module refuses fields over 128 KiB (a process-wide setting) by raising, which would end the file:
    # lift it to the file limit and let record_too_large speak instead.
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_file_bytes))
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:  # the reader cannot resume: the rest of the file is one quarantined record
            rest = "".join(lines[previous_line:]).encode()
            yield _failed(rest, "csv_malformed", f"line {previous_line + 1}: {exc}", previous_line + 1)
            return
        if row is None:
            return
        # Rows may span lines (quoted newlines): the raw bytes are the lines this row consumed.
        raw = "".join(lines[previous_line : reader.line_num]).encode()
        number = reader.line_num
        previous_line = reader.line_num
        if not row:
            continue
        if len(raw) > limits.max_record_bytes:
            detail = f"line {number}: {len(raw):,} bytes, at most {limits.max_record_bytes:,}"
            yield _failed(raw, "record_too_large", detail, number)
            continue
        if len(row) != len(header):
            detail = f"line {number}: {len(row)} columns, header has {len(header)}"
            yield _failed(raw, "csv_column_count", detail, number)
            continue
        yield Record(ordinal=number, raw=raw, payload=dict(zip(header, row, strict=True)), status=OK)


@dataclass(frozen=True)
class Reader:
    """One source format: the file extensions it accepts, how its bytes become records, and what a record is.

    ``whole_file``: a file is one document, so its id may come from its path and its title from its first heading
    (Markdown); otherwise each record names its own (a JSON line, a CSV row)."""

    format: str
    extensions: tuple[str, ...]
    read: Callable[[bytes, ReaderLimits], Iterator[Record]]
    whole_file: bool = False


READERS: dict[str, Reader] = {
    r.format: r
    for r in (
        Reader("markdown", (".md", ".markdown"), _markdown_records, whole_file=True),
        Reader("jsonl", (".jsonl", ".ndjson"), _jsonl_records),
        Reader("csv", (".csv",), _csv_records),
    )
}
"""The registry: a new source format is one entry here (the catalog's ``format`` accepts exactly these names)."""


def read_records(source: Source, path: Path, data: bytes, limits: ReaderLimits | None = None) -> Iterator[Record]:
    """Split one landing file into records. Never raises on bad content: failures are records too."""
    limits = limits or ReaderLimits()
    if not data:
        yield _failed(data, "empty_file")
        return
    if b"\x00" in data[:8192]:
        yield _failed(data, "binary_content")
        return
    if path.suffix.lower() not in source.extensions:
        yield _failed(data, "unsupported_extension", f"{path.suffix or 'no extension'} in a {source.format} source")
        return
    yield from READERS[source.format].read(data, limits)
