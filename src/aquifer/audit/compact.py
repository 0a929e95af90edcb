"""Compaction: the decision log's records become rows of the Delta table ``audit/decisions``.

Idempotent and safe under a writer and under a kill: the table itself is the watermark (its highest ``seq``); only
whole records with a higher ``seq`` are read, and they land in one Delta commit, which either happens entirely or
not at all. A kill before the commit leaves the table as it was and the next run redoes the work; a kill after it
leaves nothing to redo. Two compactions on one host are serialised by a lock file, so none appends a record twice.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from aquifer.audit.chain import chain_gaps_of
from aquifer.audit.log import read_records
from aquifer.audit.records import SCHEMA, to_frame
from aquifer.checks import CheckOutcome
from aquifer.lake import CommitInfo, Lake

LAYER, TABLE = "audit", "decisions"


@dataclass(frozen=True)
class Compaction:
    appended: int
    first_seq: int | None
    last_seq: int | None
    version: int | None


def table_max_seq(lake: Lake) -> int:
    if not lake.exists(LAYER, TABLE):
        return 0
    value = lake.scan(LAYER, TABLE, columns=["seq"]).select(pl.col("seq").max()).collect().item()
    return int(value or 0)


def compact(lake: Lake, directory: Path, *, commit: CommitInfo, batch: int = 500_000) -> Compaction:
    """Append every log record not yet in ``audit/decisions``."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".compact.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        appended, first, last = 0, None, None
        while True:
            after = table_max_seq(lake)
            records = []
            for record in read_records(directory, after_seq=after):
                records.append(record)
                if len(records) >= batch:
                    break
            if not records:
                break
            lake.append(LAYER, TABLE, to_frame(records), commit=commit, merge_schema=True)
            appended += len(records)
            first = records[0]["seq"] if first is None else first
            last = records[-1]["seq"]
        if not lake.exists(LAYER, TABLE):
            lake.append(LAYER, TABLE, pl.DataFrame(schema=SCHEMA), commit=commit)
        return Compaction(appended, first, last, lake.version(LAYER, TABLE))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def chain_gaps(lake: Lake, *, from_seq: int = 1) -> list[str]:
    """Breaks in the table's hash chain from ``from_seq`` on (the check after each compaction)."""
    if not lake.exists(LAYER, TABLE):
        return []
    chain = (
        lake.scan(LAYER, TABLE, columns=["seq", "log", "prev", "hash", "time"])
        .filter(pl.col("seq") >= from_seq)
        .sort("seq")
        .collect()
    )
    gaps = chain_gaps_of(chain, None)
    if chain.height and from_seq == 1 and int(chain["seq"][0]) != 1:
        gaps.insert(0, f"records 1..{int(chain['seq'][0]) - 1} are missing")
    return gaps


def chain_intact(lake: Lake, from_seq: int) -> CheckOutcome:
    """The audit table's gate: the compacted decisions form one unbroken hash chain from ``from_seq`` on."""
    gaps = chain_gaps(lake, from_seq=from_seq)
    return CheckOutcome(
        passed=not gaps,
        description="hash chain intact" if not gaps else f"{len(gaps)} gap(s) in the decision chain",
        metadata={"gaps": gaps[:20], "checked_from_seq": from_seq},
    )
