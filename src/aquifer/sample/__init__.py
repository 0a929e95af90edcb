"""Deterministic sample corpus for the Tidewater landing zone.

`generate` writes the seven catalog sources under ``landing_dir/<source_id>/`` with planted anomalies
(duplicates, stale and superseded documents, instruction-like text, malformed files, hostile ACLs, PII) and a
manifest listing every planted instance and every document with its ACL principals (``documents``, ``acl_summary``;
see ``acls``), so pipeline tests can check what the governance layer caught and who may see what.
`generate_increment` adds new files with new ids on top of an existing landing zone.

Same (scale, seed, as_of) gives byte-identical files: every random draw comes from a `random.Random`
seeded per source, and Faker is only used (seeded) to fill small pools up front, because calling Faker
per record is far too slow for a million records.

Modules: ``spec`` (sources and output shapes), ``banks`` (the content, as data files), ``text`` (values and
documents), ``acls`` (who may see what), ``writers`` (manifest and files), ``markdown`` and ``records`` (the
generators per format)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import multiprocessing
import os
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aquifer.sample.banks import INSTRUCTION_PHRASES
from aquifer.sample.markdown import MarkdownSource, _markdown
from aquifer.sample.records import _GENERATORS, case_record, finance_record, ticket_row
from aquifer.sample.spec import _DAY, CSV_HEADER, MANIFEST_NAME, MAX_RECORDS_PER_FILE, SOURCES, TS_FORMAT, SourceSpec
from aquifer.sample.text import Clock, build_pools, normalize_text
from aquifer.sample.writers import Manifest, Run, write_csv, write_jsonl

__all__ = [
    "CSV_HEADER",
    "INSTRUCTION_PHRASES",
    "MANIFEST_NAME",
    "SOURCES",
    "TS_FORMAT",
    "Clock",
    "generate",
    "generate_increment",
    "normalize_text",
]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def generate(
    landing_dir: Path,
    *,
    scale: int = 1,
    seed: int = 7,
    as_of: dt.date | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the landing zone; return the manifest, also written to landing_dir.parent / "sample_manifest.json".

    `scale` multiplies every record count (scale=1 is about 1,000 records); planted anomalies repeat per
    scale unit except the malformed files, which appear once. landing_dir must be missing or empty.
    `workers` processes generate sources in parallel (default: one per CPU from scale 10 up); the output
    does not depend on it.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    landing = Path(landing_dir)
    if landing.exists() and any(landing.iterdir()):
        raise FileExistsError(f"{landing} is not empty; generate() only writes into a fresh landing zone")
    landing.mkdir(parents=True, exist_ok=True)
    as_of = as_of or _today()
    if workers is None:
        workers = 1 if scale < 10 else min(len(SOURCES), os.cpu_count() or 1)
    jobs = [(landing, scale, seed, as_of, source_id) for source_id in SOURCES]
    manifest = Manifest()
    if workers <= 1:
        parts = [_generate_source(*job) for job in jobs]
    else:
        # spawn, not fork: callers such as Dagster may hold threads and locks that fork would copy.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = list(pool.map(_generate_source, *zip(*jobs, strict=True)))
    for part in parts:  # merged in catalog order, so the manifest is the same for any worker count
        manifest.merge(part)
    result = manifest.to_dict(seed, scale, as_of)
    text = json.dumps(result, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    (landing.parent / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return result


def _generate_source(landing: Path, scale: int, seed: int, as_of: dt.date, source_id: str) -> Manifest:
    run = Run(landing, scale, seed, Clock(as_of), build_pools(seed), Manifest())
    _GENERATORS.get(source_id, _markdown)(run, SOURCES[source_id])
    return run.manifest


@dataclass
class SourceState:
    """What an increment needs to know about a source already on disk."""

    records: int = 0
    max_id: int = 0
    quarter_counters: dict[str, int] = field(default_factory=dict)


_ID_PATTERNS: dict[str, re.Pattern[bytes]] = {
    "hr_case_notes": re.compile(rb'"case_id": "case-(\d+)"'),
    "support_tickets": re.compile(rb"(?m)^T-(\d+),"),
    "finance_reports": re.compile(rb'"report_id": "(fin-\d{4}-Q\d)-(\d+)"'),
}


def scan_source(landing: Path, spec: SourceSpec) -> SourceState:
    """Count records the way the manifest does and find the highest id in use."""
    state = SourceState()
    for path in sorted(p for p in (landing / spec.source_id).rglob("*") if p.is_file()):
        if spec.fmt == "markdown":
            # Every markdown file is named after its id, which is cheaper than parsing 100k front matters.
            name = re.match(rf"{re.escape(spec.id_prefix)}-(\d+)", path.name)
            state.records += 1
            state.max_id = max(state.max_id, int(name.group(1)) if name else 0)
        else:
            _scan_records(path.read_bytes(), spec, state)
    return state


def _scan_records(data: bytes, spec: SourceSpec, state: SourceState) -> None:
    if spec.fmt == "csv":
        state.records += sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8", "replace")))) - 1
    else:
        state.records += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    for found in _ID_PATTERNS[spec.source_id].finditer(data):
        if spec.source_id == "finance_reports":
            key = found.group(1).decode()
            state.quarter_counters[key] = max(state.quarter_counters.get(key, 0), int(found.group(2)))
        else:
            state.max_id = max(state.max_id, int(found.group(1)))


def _increment_source(run: Run, spec: SourceSpec, label: str, count: int, state: SourceState) -> list[str]:
    """Write `count` clean, fresh records with ids above everything on disk, under <source>/<label>/."""
    rng, rel_dir = run.rng(f"{label}/{spec.source_id}"), f"{spec.source_id}/{label}"

    def recent(_: int) -> int:
        return rng.randrange(3600, 2 * _DAY)

    first = state.max_id
    if spec.fmt == "markdown":
        return MarkdownSource(spec, run, rng, rel_dir).write_normal(first, count, recent)
    if spec.source_id == "hr_case_notes":
        lines = [
            json.dumps(case_record(rng, run.pools, f"case-{first + i + 1:06d}", run.clock.ts(recent(i)))[0])
            for i in range(count)
        ]
        return write_jsonl(run.landing, rel_dir, "cases", lines, MAX_RECORDS_PER_FILE)
    if spec.source_id == "support_tickets":
        rows: list[Sequence[str] | str] = [
            ticket_row(rng, run.pools, f"T-{first + i + 1:06d}", recent(i), run.clock)[0] for i in range(count)
        ]
        return write_csv(run.landing, rel_dir, "tickets", rows, MAX_RECORDS_PER_FILE)
    counters = dict(state.quarter_counters)
    lines = [json.dumps(finance_record(rng, run.clock, recent(i), counters)) for i in range(count)]
    return write_jsonl(run.landing, rel_dir, "reports", lines, MAX_RECORDS_PER_FILE)


def generate_increment(
    landing_dir: Path,
    *,
    fraction: float = 0.01,
    seed: int = 8,
    label: str = "inc1",
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """Add NEW files only (never modify existing files) holding about `fraction` x the current record count.

    Every source gets at least one record, in new files under ``<source_id>/<label>/``, with ids above
    the highest id already on disk; the records are clean and updated within two days before as_of.
    Returns {"files": [uris relative to landing_dir], "records": n}.
    """
    landing = Path(landing_dir)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", label):
        raise ValueError(f"label must be a plain folder name, got {label!r}")
    clashes = [s for s in SOURCES if (landing / s / label).exists()]
    if clashes:
        raise FileExistsError(f"increment {label!r} already exists for {clashes}")
    run = Run(landing, 1, seed, Clock(as_of or _today()), build_pools(seed, size=500), Manifest())
    files: list[str] = []
    records = 0
    for spec in SOURCES.values():
        state = scan_source(landing, spec)
        count = max(1, round(fraction * state.records))
        files += _increment_source(run, spec, label, count, state)
        records += count
    return {"files": sorted(files), "records": records}
