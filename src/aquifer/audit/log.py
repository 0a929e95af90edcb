"""The decision log: every decision batch, appended durably before its answer leaves.

Write-ahead JSON lines in ``<decisions_dir>/segment-<first seq>.jsonl``. Each record carries

- ``seq``: 1, 2, 3, ... with no hole, across segments;
- ``prev``: the SHA-256 of the previous record's line (the genesis record's ``prev`` is the log id);
- ``log``: the id the log was created with, so a wiped and restarted log is told apart from a continued one.

So a missing, reordered or edited record breaks the chain, and :mod:`aquifer.audit.prove` fails loudly on it.

An append takes an exclusive ``flock`` on ``.lock`` (several processes may write), writes one line with a single
``write``, and ``fsync``s before returning. A process killed mid-write leaves at most a torn last line with no
newline; the next writer moves those bytes to ``<segment>.torn`` (kept, never silently dropped) and truncates
the segment back to its last whole record. A torn record was never acknowledged, so no answer depended on it.
Segments rotate at ``segment_bytes``; closed segments are never written again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aquifer.medallion.common import utcnow

SEGMENT_GLOB = "segment-*.jsonl"


def _segment_name(first_seq: int) -> str:
    return f"segment-{first_seq:012d}.jsonl"


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass(frozen=True)
class Appended:
    seq: int
    decision_id: str
    hash: str
    segment: str


class DecisionLog:
    """Append-only, fsync'd, hash-chained decision records.

    >>> import tempfile
    >>> log = DecisionLog(Path(tempfile.mkdtemp()))
    >>> log.append({"agent": "a", "resources": []}).seq
    1
    >>> [r["seq"] for r in read_records(log.directory)]
    [1]
    """

    def __init__(self, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024, fsync: bool = True) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_path = directory / ".lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(self, record: dict[str, Any]) -> Appended:
        """Write ``record`` (plus ``seq``, ``prev``, ``log``, ``decision_id`` and ``time`` when absent) durably."""
        with self._locked():
            segment, last = self._tail()
            if last is None:
                seq, prev, log_id = 1, None, f"log_{uuid.uuid4().hex}"
            else:
                seq, prev, log_id = last["seq"] + 1, last["_hash"], last["log"]
            body = {
                "seq": seq,
                "prev": prev or log_id,
                "log": log_id,
                "decision_id": record.get("decision_id") or f"dec_{uuid.uuid4().hex}",
                "time": record.get("time") or utcnow().isoformat(timespec="microseconds"),
                **{k: v for k, v in record.items() if k not in ("seq", "prev", "log", "decision_id", "time")},
            }
            line = (json.dumps(body, separators=(",", ":"), sort_keys=True, default=str) + "\n").encode()
            if segment is None or segment.stat().st_size + len(line) > self.segment_bytes:
                segment = self.directory / _segment_name(seq)
                self._write(segment, line, new=True)
            else:
                self._write(segment, line, new=False)
            return Appended(seq, body["decision_id"], line_hash(line), segment.name)

    def _write(self, segment: Path, line: bytes, *, new: bool) -> None:
        fd = os.open(segment, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, line)
            if written != len(line):
                msg = f"{segment}: short write ({written} of {len(line)} bytes)"
                raise OSError(msg)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if new and self.fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _tail(self) -> tuple[Path | None, dict[str, Any] | None]:
        """The active segment and its last whole record (with ``_hash``), repairing a torn tail first."""
        segments = segments_of(self.directory)
        while segments:
            segment = segments[-1]
            repair_torn_tail(segment)
            last = _last_line(segment)
            if last is not None:
                record = json.loads(last)
                record["_hash"] = line_hash(last)
                return segment, record
            if len(segments) == 1:
                return segment, None
            # An empty newest segment (created, then killed before its first line): continue the previous one.
            segment.unlink()
            segments = segments[:-1]
        return None, None


def segments_of(directory: Path) -> list[Path]:
    return sorted(directory.glob(SEGMENT_GLOB))


def repair_torn_tail(segment: Path) -> int:
    """Move bytes after the last newline to ``<segment>.torn`` and truncate. Returns the bytes moved."""
    size = segment.stat().st_size
    if size == 0:
        return 0
    with segment.open("rb+") as fh:
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # scan back for the last newline
        pos, chunk = size, 65536
        cut = 0
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            block = fh.read(pos - start)
            idx = block.rfind(b"\n")
            if idx >= 0:
                cut = start + idx + 1
                break
            pos = start
        fh.seek(cut)
        torn = fh.read()
        with open(f"{segment}.torn", "ab") as keep:
            keep.write(torn + b"\n")
            keep.flush()
            os.fsync(keep.fileno())
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
        return len(torn)


def _last_line(segment: Path) -> bytes | None:
    size = segment.stat().st_size
    if size == 0:
        return None
    with segment.open("rb") as fh:
        pos, chunk, buf = size, 65536, b""
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            buf = fh.read(pos - start) + buf
            idx = buf.rstrip(b"\n").rfind(b"\n")
            if idx >= 0:
                return buf[idx + 1 :].rstrip(b"\n") + b"\n"
            pos = start
        return buf.rstrip(b"\n") + b"\n"


def read_records(directory: Path, *, after_seq: int = 0) -> Iterator[dict[str, Any]]:
    """Every whole record with ``seq > after_seq``, in order, each with its ``hash`` and ``segment``.

    A torn last line (a writer killed mid-append) is not a record and is skipped, not repaired: readers never
    modify the log.
    """
    segments = segments_of(directory)
    starts = [int(p.stem.split("-")[1]) for p in segments]
    for i, segment in enumerate(segments):
        next_start = starts[i + 1] if i + 1 < len(segments) else None
        if next_start is not None and next_start <= after_seq + 1:
            continue
        with segment.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                record = json.loads(line)
                if record["seq"] <= after_seq:
                    continue
                record["hash"] = line_hash(line)
                record["segment"] = segment.name
                yield record


def last_record(directory: Path) -> dict[str, Any] | None:
    """The log's last whole record (with ``hash`` and ``segment``), read backwards from the end of the newest
    non-empty segment: a few KiB whatever the log's size (the export lag gauge reads it on every scrape). Read-only,
    like :func:`read_records`: a torn last line is not a record, the one before it is.

    >>> import tempfile
    >>> log = DecisionLog(Path(tempfile.mkdtemp()))
    >>> _ = [log.append({"agent": "a"}) for _ in range(3)]
    >>> last_record(log.directory)["seq"]
    3
    """
    for segment in reversed(segments_of(directory)):
        try:
            line = _last_whole_line(segment)
        except FileNotFoundError:  # an empty newest segment a writer just removed
            continue
        if line is not None:
            record: dict[str, Any] = json.loads(line)
            record["hash"] = line_hash(line)
            record["segment"] = segment.name
            return record
    return None


def _last_whole_line(segment: Path) -> bytes | None:
    """The last newline-terminated line of ``segment`` (bytes after the last newline are a torn write)."""
    with segment.open("rb") as fh:
        pos, buf = fh.seek(0, os.SEEK_END), b""
        while pos > 0:
            start = max(0, pos - 65536)
            fh.seek(start)
            buf = fh.read(pos - start) + buf
            pos = start
            end = buf.rfind(b"\n")
            if end < 0:
                continue
            begin = buf.rfind(b"\n", 0, end)
            if begin >= 0 or pos == 0:
                return buf[begin + 1 : end + 1]
        return None
