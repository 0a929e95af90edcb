"""Prove a negative from the decision log: did anything matching a question reach an agent? The question combines
any of: a classification, a model locality, a user (``<issuer id>:<subject>``), a source document
(``<dataset>/<doc id>``) - "did any confidential resource reach an external model?", "did user U ever receive a
chunk of document D?".

The answer is only as good as the log's completeness, so the proof first checks the hash chain over the whole
window (plus the record just before it): one log id, ``seq`` without holes, each ``prev`` equal to the hash of
the record before. Any break is a gap, and a gap makes the proof fail - loudly - whatever the records say.

Sources: the compacted table ``audit/decisions`` and the log records not compacted yet, so a proof is current.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from aquifer.audit.chain import chain_gaps_of
from aquifer.audit.compact import LAYER, TABLE, table_max_seq
from aquifer.audit.log import read_records
from aquifer.audit.records import SCHEMA, SERVING_KINDS, to_frame
from aquifer.lake import Lake


@dataclass
class Proof:
    classification: str | None
    locality: str | None
    since: dt.datetime
    until: dt.datetime
    user: str | None = None
    document: str | None = None
    decisions_scanned: int = 0
    resources_scanned: int = 0
    resources_served: int = 0
    first_record: dt.datetime | None = None
    last_record: dt.datetime | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    revisions: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``none``: proven that nothing reached; ``found``: it did; ``unproven``: the log has a gap."""
        if self.gaps:
            return "unproven"
        return "found" if self.violations else "none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "verdict": self.verdict,
            "decisions_scanned": self.decisions_scanned,
            "resources_scanned": self.resources_scanned,
            "resources_served": self.resources_served,
            "covered": {
                "first_record": self.first_record.isoformat() if self.first_record else None,
                "last_record": self.last_record.isoformat() if self.last_record else None,
                "first_seq": self.first_seq,
                "last_seq": self.last_seq,
            },
            "revisions": self.revisions,
            "gaps": self.gaps,
            "violations": self.violations,
        }

    @property
    def question(self) -> str:
        what = f"any {self.classification + ' ' if self.classification else ''}resource"
        if self.document:
            what = f"any {self.classification + ' ' if self.classification else ''}chunk of document {self.document}"
        whom = f"user {self.user}" if self.user else "an agent"
        where = f" on {_article(self.locality)} {self.locality} model" if self.locality else ""
        window = f"between {self.since.isoformat(timespec='seconds')} and {self.until.isoformat(timespec='seconds')}"
        return f"did {what} reach {whom}{where} {window}?"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def load_decisions(lake: Lake, directory: Path) -> pl.LazyFrame:
    """Every decision record: the compacted table, then the log's records beyond it."""
    parts: list[pl.LazyFrame] = []
    if lake.exists(LAYER, TABLE):
        table = lake.scan(LAYER, TABLE)
        present = set(table.collect_schema().names())
        # a table compacted before a column existed (e.g. channel) reads it as null until the next compaction
        missing = [pl.lit(None, dtype).alias(name) for name, dtype in SCHEMA.items() if name not in present]
        parts.append(table.with_columns(missing).select(list(SCHEMA)))
    tail = list(read_records(directory, after_seq=table_max_seq(lake))) if directory.exists() else []
    if tail:
        parts.append(to_frame(tail).lazy())
    if not parts:
        return pl.DataFrame(schema=SCHEMA).lazy()
    return pl.concat(parts, how="vertical_relaxed")


def prove(
    lake: Lake,
    directory: Path,
    *,
    classification: str | None = None,
    locality: str | None = None,
    user: str | None = None,
    document: str | None = None,
    since: dt.datetime,
    until: dt.datetime | None = None,
) -> Proof:
    """``document`` is ``<dataset>/<doc id>``; ``user`` is ``<issuer id>:<subject>`` as records name users."""
    if not any((classification, locality, user, document)):
        msg = "ask about a classification, a locality, a user or a document (or several)"
        raise ValueError(msg)
    until = until or dt.datetime.now(dt.UTC)
    proof = Proof(classification, locality, since, until, user, document)
    decisions = load_decisions(lake, directory)
    window = decisions.filter(pl.col("time").is_between(since, until)).sort("seq").collect()
    chain_cols = ["seq", "log", "prev", "hash", "time"]
    if window.is_empty():
        # Nothing in the window: still check that the log is whole up to now, or silence proves nothing.
        proof.gaps.extend(chain_gaps_of(decisions.select(chain_cols).sort("seq").collect(), None))
        return proof
    first_seq = int(window["seq"][0])
    before = decisions.filter(pl.col("seq") == first_seq - 1).select(chain_cols).collect()
    after = decisions.filter(pl.col("seq") > int(window["seq"][-1])).select(chain_cols).sort("seq").collect()
    chain = pl.concat([before, window.select(chain_cols), after])
    proof.gaps.extend(chain_gaps_of(chain, first_seq))

    proof.decisions_scanned = window.height
    proof.first_record, proof.last_record = window["time"][0], window["time"][-1]
    proof.first_seq, proof.last_seq = first_seq, int(window["seq"][-1])
    revisions = (
        window.group_by("revision")
        .agg(pl.len().alias("decisions"), pl.col("time").min().alias("first"), pl.col("time").max().alias("last"))
        .sort("first")
    )
    proof.revisions = [
        {
            "revision": r["revision"],
            "decisions": r["decisions"],
            "first": r["first"].isoformat(),
            "last": r["last"].isoformat(),
        }
        for r in revisions.iter_rows(named=True)
    ]
    resources = window.select("decision_id", "time", "kind", "agent", "user", "model", "locality", "resources")
    resources = resources.explode("resources").filter(pl.col("resources").is_not_null()).unnest("resources")
    proof.resources_scanned = resources.height
    served = resources.filter(pl.col("allow") & pl.col("served").fill_null(True) & pl.col("kind").is_in(SERVING_KINDS))
    proof.resources_served = served.height
    match = pl.lit(True)
    if classification:
        match &= pl.col("classification") == classification
    if locality:
        match &= pl.col("locality") == locality
    if user:
        match &= pl.col("user") == user
    if document:
        dataset, _, doc_id = document.partition("/")
        match &= (pl.col("dataset") == dataset) & (pl.col("doc_id") == doc_id)
    hits = served.filter(match)
    columns = ["decision_id", "time", "agent", "user", "model", "id", "dataset", "doc_id"]
    proof.violations = [
        {
            "decision_id": r["decision_id"],
            "time": r["time"].isoformat(),
            "agent": r["agent"],
            "user": r["user"],
            "model": r["model"],
            "resource": r["id"],
            "dataset": r["dataset"],
            "doc_id": r["doc_id"],
        }
        for r in hits.select(columns).iter_rows(named=True)
    ]
    return proof
