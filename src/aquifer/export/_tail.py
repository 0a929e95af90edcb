"""What the decision-log shipper (:mod:`aquifer.export.decisions`) keeps and reads: its durable cursor, and the log
as it grows (:class:`LogTail`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aquifer.audit.log import line_hash, read_records, segments_of


class CursorError(ValueError):
    """A cursor file that is not one (the message names it)."""


# -- the cursor ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """The last acknowledged record: its log id, seq and line hash (seq 0: nothing of ``log`` acknowledged yet)."""

    log: str | None
    seq: int
    hash: str | None


def read_cursor(path: Path) -> Cursor | None:
    """The cursor at ``path``, None if there is none. A file that is not a cursor raises :class:`CursorError`
    (never taken as "start again" silently: remove it to ship the whole log again)."""
    try:
        doc = json.loads(path.read_bytes())
        cursor = Cursor(doc["log"], int(doc["seq"]), doc["hash"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path}: not a decision-export cursor ({exc}); remove it to ship the whole log again"
        raise CursorError(msg) from None
    if cursor.seq < 0 or not isinstance(cursor.log, str | None) or not isinstance(cursor.hash, str | None):
        raise CursorError(f"{path}: not a decision-export cursor; remove it to ship the whole log again")
    return cursor


def write_cursor(path: Path, cursor: Cursor, **info: Any) -> None:
    """Replace the cursor atomically: a temporary file, fsync'd, renamed over it, the directory fsync'd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": 1, "log": cursor.log, "seq": cursor.seq, "hash": cursor.hash, **info}
    doc["written_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(doc, indent=1).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- reading the log -------------------------------------------------------------------------------------------------


class LogTail:
    """The records after a seq, read as the log grows: the segment and byte offset reached are kept, so following a
    64 MiB segment costs only its new lines. Like :func:`aquifer.audit.log.read_records` it skips a torn last line
    (a writer mid-append: read again next time) and never modifies the log; a segment replaced under it (the log
    wiped) sets :attr:`replaced`; every chain break (a seq not following, a ``prev`` not the last hash) is put in
    :attr:`breaks`."""

    def __init__(self, directory: Path, *, after_seq: int = 0, last_hash: str | None = None) -> None:
        self.directory = directory
        self.breaks: list[str] = []
        self.replaced = False
        self.error: str | None = None
        self.seek(after_seq, last_hash)

    def seek(self, after_seq: int, last_hash: str | None = None) -> None:
        self.after, self.last_hash = after_seq, last_hash
        self._segment: Path | None = None
        self._offset, self._inode = 0, 0

    def read(self, limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self.error = None
        while len(out) < limit:
            if self._segment is None and not self._locate():
                break
            if self._read_segment(out, limit):
                break
            following = self._following()
            # a later segment holds a record, so this one is closed: what was appended to it between reading its end
            # and seeing the later one is read first (skipping to the next segment at once would lose it)
            if following is None or self._read_segment(out, limit):
                break
            self._segment, self._offset, self._inode = following
        return out

    def _locate(self) -> bool:
        segments = segments_of(self.directory)
        if not segments:
            return False
        starts = [int(p.stem.split("-")[1]) for p in segments]
        index = max([i for i, s in enumerate(starts) if s <= self.after + 1] or [0])
        self._segment, self._offset = segments[index], 0
        try:
            self._inode = self._segment.stat().st_ino
        except FileNotFoundError:
            self._segment = None
            return False
        return True

    def _read_segment(self, out: list[dict[str, Any]], limit: int) -> bool:
        """Append the segment's new records to ``out``; True when ``out`` is full or reading must stop here."""
        segment = self._segment
        assert segment is not None
        try:
            stat = segment.stat()
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self.replaced, self._segment = True, None
                return True
            with segment.open("rb") as fh:
                fh.seek(self._offset)
                for line in fh:
                    if not line.endswith(b"\n"):
                        return True  # a torn or unfinished last line: not a record (yet)
                    record = json.loads(line)
                    seq = int(record["seq"])
                    self._offset += len(line)
                    if seq <= self.after:
                        continue
                    record["hash"], record["segment"] = line_hash(line), segment.name
                    self._check_chain(record)
                    self.after, self.last_hash = record["seq"], record["hash"]
                    out.append(record)
                    if len(out) >= limit:
                        return True
        except FileNotFoundError:
            self.replaced, self._segment = True, None
            return True
        except (ValueError, KeyError, TypeError) as exc:  # a line spliced by a concurrent repair: read it again
            self.error = f"{segment.name} at byte {self._offset}: {exc}"
            return True
        return False

    def _check_chain(self, record: dict[str, Any]) -> None:
        if self.after and record["seq"] != self.after + 1:
            self.breaks.append(f"seq {record['seq']} follows seq {self.after} in {record['segment']}")
        elif self.last_hash is not None and record.get("prev") != self.last_hash:
            self.breaks.append(f"seq {record['seq']}: prev {record.get('prev')} is not the hash of seq {self.after}")

    def _following(self) -> tuple[Path, int, int] | None:
        """The next segment once it holds a record (an empty newest one may yet be removed by a writer): its path,
        offset 0 and inode."""
        later = [p for p in segments_of(self.directory) if self._segment is not None and p.name > self._segment.name]
        for segment in later[:1]:
            with contextlib.suppress(FileNotFoundError):
                stat = segment.stat()
                if stat.st_size > 0:
                    return segment, 0, stat.st_ino
        return None


def record_at(directory: Path, seq: int) -> dict[str, Any] | None:
    """The record with ``seq`` (streamed from its segment), None if the log has none."""
    if seq < 1:
        return None
    records = read_records(directory, after_seq=seq - 1)
    with contextlib.closing(records):  # type: ignore[type-var]  # a generator: closing it closes its segment
        first = next(records, None)
    return first if first is not None and first["seq"] == seq else None
