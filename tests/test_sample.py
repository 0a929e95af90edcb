"""Tests for the deterministic sample-corpus generator (aquifer.sample)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from aquifer.sample import (
    CSV_HEADER,
    INSTRUCTION_PHRASES,
    MANIFEST_NAME,
    SOURCES,
    TS_FORMAT,
    Clock,
    generate,
    generate_increment,
    normalize_text,
)

AS_OF = dt.date(2026, 3, 20)
CATALOG = Path(__file__).resolve().parents[1] / "catalog"
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
SSN_RE = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
PHONE_RE = re.compile(r"\(\d{3}\) \d{3}-\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b|\+1 \d{3} \d{3} \d{4}")
ADDRESS_RE = re.compile(r"\d+ [A-Z][a-z]+ (St|Ave|Rd|Blvd|Ln|Dr|Ct|Way|Pl), [A-Za-z ]+, [A-Z]{2} \d{5}")
CARD_RE = re.compile(r"\b(?:\d{4} ){3}\d{4}\b|\b\d{16}\b")
MARKDOWN_SOURCES = [s for s, spec in SOURCES.items() if spec.fmt == "markdown"]
RUNBOOK_TITLES = ("Runbook: ", "Containment runbook: ")  # the titles of the "runbook" page kind
ACL_STATUSES = ("missing_acl", "invalid_acl")  # planted records, not files: several per source


class Record:
    """One record as a reader splitting the files would see it."""

    def __init__(self, uri: str, line: int | None, raw: bytes, data: dict[str, Any] | None) -> None:
        self.uri, self.line, self.raw, self.data = uri, line, raw, data


def _sha256_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(root)}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def parse_markdown(raw: bytes) -> tuple[dict[str, Any], str]:
    text = raw.decode("utf-8")
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def read_source(landing: Path, source_id: str) -> list[Record]:
    """Split a source's files into records; unreadable ones get data=None."""
    spec, out = SOURCES[source_id], []
    for path in _files(landing / source_id):
        uri, raw = path.relative_to(landing).as_posix(), path.read_bytes()
        if spec.fmt == "markdown":
            try:
                meta, body = parse_markdown(raw)
                out.append(Record(uri, None, raw, {**meta, "body": body}))
            except (UnicodeDecodeError, ValueError):
                out.append(Record(uri, None, raw, None))
        elif spec.fmt == "jsonl":
            for n, line in enumerate(raw.decode().splitlines(), 1):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                out.append(Record(uri, n, line.encode(), obj if isinstance(obj, dict) else None))
        else:
            rows = list(csv.reader(io.StringIO(raw.decode())))
            assert tuple(rows[0]) == CSV_HEADER
            for n, row in enumerate(rows[1:], 1):
                data = dict(zip(CSV_HEADER, row, strict=True)) if len(row) == len(CSV_HEADER) else None
                out.append(Record(uri, n, ",".join(row).encode(), data))
    return out


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    return sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits)) % 10 == 0


def record_id(source_id: str, rec: Record) -> str | None:
    if rec.data is None:
        return None
    key = {"hr_case_notes": "case_id", "support_tickets": "ticket_id", "finance_reports": "report_id"}
    return str(rec.data.get(key.get(source_id, "id")))


def record_text(rec: Record) -> str:
    assert rec.data is not None
    return " ".join(str(v) for v in rec.data.values())


def record_time(source_id: str, rec: Record) -> dt.datetime:
    assert rec.data is not None
    value = rec.data["published_at" if source_id == "finance_reports" else "updated_at"]
    return dt.datetime.fromisoformat(value)


def by_id(landing: Path, source_id: str) -> dict[str, list[Record]]:
    index: dict[str, list[Record]] = defaultdict(list)
    for rec in read_source(landing, source_id):
        rid = record_id(source_id, rec)
        if rid is not None:
            index[rid].append(rec)
    return index


def age_days(source_id: str, rec: Record) -> float:
    midnight = dt.datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=dt.UTC)
    return (midnight - record_time(source_id, rec)).total_seconds() / 86_400


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    landing = tmp_path_factory.mktemp("scale1") / "landing"
    return landing, generate(landing, scale=1, seed=7, as_of=AS_OF)


@pytest.fixture(scope="module")
def corpus2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    landing = tmp_path_factory.mktemp("scale2") / "landing"
    return landing, generate(landing, scale=2, seed=3, as_of=AS_OF)


def test_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate(tmp_path / "a" / "landing", as_of=AS_OF)
    second = generate(tmp_path / "b" / "landing", as_of=AS_OF)
    assert first == second
    assert _sha256_tree(tmp_path / "a") == _sha256_tree(tmp_path / "b")
    generate(tmp_path / "c" / "landing", seed=8, as_of=AS_OF)
    assert _sha256_tree(tmp_path / "c") != _sha256_tree(tmp_path / "a")


def test_parallel_generation_matches_sequential(tmp_path: Path) -> None:
    sequential = generate(tmp_path / "a" / "landing", scale=2, as_of=AS_OF, workers=1)
    parallel = generate(tmp_path / "b" / "landing", scale=2, as_of=AS_OF, workers=2)
    assert sequential == parallel
    assert _sha256_tree(tmp_path / "a") == _sha256_tree(tmp_path / "b")


def test_fast_timestamps_match_strftime() -> None:
    clock = Clock(AS_OF)
    for seconds in (1, 59, 3600, 86_399, 86_400, 86_401, 10_000_000, 123_456_789):
        assert clock.ts(seconds) == clock.ago(seconds).strftime(TS_FORMAT)


def test_refuses_to_write_into_a_non_empty_landing_zone(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        generate(tmp_path / "landing", as_of=AS_OF)


def test_source_specs_match_the_catalog() -> None:
    durations = {"P90D": 90, "P180D": 180, "P365D": 365, "P400D": 400, "P730D": 730}
    for path in sorted((CATALOG / "sources").glob("*.yaml")):
        entry = yaml.safe_load(path.read_text())
        spec = SOURCES[entry["id"]]
        assert (entry["format"], entry["landing_path"]) == (spec.fmt, spec.source_id)
        assert durations[entry["freshness_sla"]] == spec.freshness_days
    assert len(list((CATALOG / "sources").glob("*.yaml"))) == len(SOURCES)


def test_manifest_file_and_counts_match_disk(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    assert json.loads((landing.parent / MANIFEST_NAME).read_text()) == manifest
    assert (manifest["seed"], manifest["scale"], manifest["as_of"]) == (7, 1, "2026-03-20")
    for source_id, spec in SOURCES.items():
        counts = manifest["counts"][source_id]
        assert counts["files"] == len(_files(landing / source_id))
        assert counts["records"] == len(read_source(landing, source_id))
        assert spec.per_unit <= counts["records"] <= spec.per_unit + 3
    assert 950 <= sum(c["records"] for c in manifest["counts"].values()) <= 1050


def test_layout_and_chunking(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, _ = corpus
    for source_id in MARKDOWN_SOURCES:
        assert {p.parent.name for p in _files(landing / source_id)} == {"p0000"}
    assert [p.name for p in _files(landing / "hr_case_notes")] == [f"cases-000{i}.jsonl" for i in range(1, 5)]
    assert [p.name for p in _files(landing / "support_tickets")] == [f"tickets-000{i}.csv" for i in range(1, 8)]
    for path in _files(landing / "support_tickets"):
        assert sum(1 for _ in csv.reader(io.StringIO(path.read_text()))) == 51  # header + 50 rows


def test_markdown_documents_are_well_formed(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    bad = {m["uri"] for m in manifest["malformed"]}
    for source_id in MARKDOWN_SOURCES:
        for rec in read_source(landing, source_id):
            if rec.uri in bad:
                continue
            assert rec.data is not None, rec.uri
            assert set(rec.data) - {"owner", "language", "acl"} == {"id", "title", "updated_at", "body"}
            # only containment runbooks carry an ACL (security_runbooks reads it: document_acl optional)
            restricted = source_id == "security_runbooks" and rec.data["title"].startswith(RUNBOOK_TITLES)
            assert rec.data.get("acl") == ({"groups": ["oncall"]} if restricted else None), rec.uri
            assert re.fullmatch(r"[a-z]+-\d{4}", rec.data["id"])
            dt.datetime.strptime(rec.data["updated_at"], TS_FORMAT)
            assert rec.data.get("language", "en") == "en"
            body = rec.data["body"]
            assert body.startswith(f"\n# {rec.data['title']}\n"), rec.uri
            assert "\n## " in body or "\n**" in body
            assert 80 <= len(body.split()) <= 400, rec.uri


def test_ids_are_unique_apart_from_planted_duplicates(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    allowed = {(d["source_id"], d["id"]) for key in ("exact_duplicates", "superseded") for d in manifest[key]}
    for source_id in SOURCES:
        for rid, recs in by_id(landing, source_id).items():
            assert len(recs) == 1 or (source_id, rid) in allowed, (source_id, rid)


def test_timestamps_are_fresh_except_planted_stale(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    stale = {(s["source_id"], s["id"]) for s in manifest["stale"]}
    bad = {(m["uri"], m["line"]) for m in manifest["malformed"]}
    for source_id, spec in SOURCES.items():
        ages = []
        for rec in read_source(landing, source_id):
            if rec.data is None or (rec.uri, rec.line) in bad:
                continue
            age = age_days(source_id, rec)
            ages.append(age)
            assert age > 0, rec.uri  # nothing dated on or after as_of
            if (source_id, record_id(source_id, rec)) in stale:
                assert age > spec.freshness_days
            else:
                assert age <= spec.freshness_days, (rec.uri, rec.line)
        assert min(ages) <= 3, source_id


def test_malformed_files_fail_as_declared(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    statuses = {m["expected_status"] for m in manifest["malformed"]}
    assert statuses == {
        "invalid_utf8",
        "invalid_json",
        "csv_column_count",
        "empty_file",
        "binary_content",
        "not_an_object",
        "missing_field",
        "invalid_timestamp",
        *ACL_STATUSES,
    }
    file_level = [
        m
        for m in manifest["malformed"]
        if m["expected_status"] not in ("missing_field", "invalid_timestamp", *ACL_STATUSES)
    ]
    assert len({m["source_id"] for m in file_level}) == len(file_level)
    hostile = {(m["source_id"], m["expected_status"]) for m in manifest["malformed"] if "acl_variant" in m}
    assert hostile == {
        ("hr_case_notes", "missing_acl"),
        ("hr_case_notes", "invalid_acl"),
        ("support_tickets", "invalid_acl"),
        ("security_runbooks", "invalid_acl"),
    }
    for entry in manifest["malformed"]:
        raw = (landing / entry["uri"]).read_bytes()
        _check_malformed(entry["expected_status"], raw, entry["line"], entry["source_id"])


def _check_malformed(status: str, raw: bytes, line: int | None, source_id: str) -> None:
    if status in ACL_STATUSES:
        _check_hostile_acl(status, raw, line, source_id)
        return
    if status in ("invalid_utf8", "empty_file", "binary_content"):
        assert line is None
        if status == "empty_file":
            assert raw == b""
        elif status == "binary_content":
            assert raw.startswith(b"\x89PNG") and b"\x00" in raw
        else:
            raw.replace(b"\x96", b"-").decode("utf-8")  # the only bad byte is the planted one
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
        return
    assert line is not None
    if status == "csv_column_count":
        rows = list(csv.reader(io.StringIO(raw.decode())))[1:]
        assert [n for n, row in enumerate(rows, 1) if len(row) != len(CSV_HEADER)] == [line]
        return
    lines = raw.decode().splitlines()
    target = lines[line - 1]
    if status == "invalid_json":
        assert line == len(lines) and not raw.endswith(b"\n")
        with pytest.raises(json.JSONDecodeError):
            json.loads(target)
        assert all(isinstance(json.loads(other), dict) for other in lines[:-1])
    elif status == "not_an_object":
        assert not isinstance(json.loads(target), dict)
    elif status == "missing_field":
        assert "note" not in json.loads(target)
    else:
        with pytest.raises(ValueError):
            dt.datetime.fromisoformat(json.loads(target)["updated_at"])


def _check_hostile_acl(status: str, raw: bytes, line: int | None, source_id: str) -> None:
    """A planted ACL record is well-formed in every other way, and silver rejects its ACL with ``status``."""
    from aquifer.catalog import load_catalog
    from aquifer.medallion import silver

    source = load_catalog(CATALOG).source(source_id)
    if SOURCES[source_id].fmt == "markdown":
        assert line is None
        meta, body = parse_markdown(raw)
        payload = {**meta, "body": body}
    elif SOURCES[source_id].fmt == "jsonl":
        assert line is not None
        payload = json.loads(raw.decode().splitlines()[line - 1])
    else:
        assert line is not None
        payload = dict(zip(CSV_HEADER, list(csv.reader(io.StringIO(raw.decode())))[line], strict=True))
    silver.normalise(source.model_copy(update={"document_acl": "none"}), payload, "x")  # nothing else is wrong
    with pytest.raises(silver.Rejected) as excinfo:
        silver.normalise(source, payload, "x")
    assert excinfo.value.reason == status and "'acl'" in str(excinfo.value)


def _record_acl(source_id: str, rec: Record) -> list[str] | None:
    """The principals of a record's ACL, read from the landing file independently of silver."""
    assert rec.data is not None
    value = rec.data.get("acl")
    if not value:
        return None
    if isinstance(value, str):  # a CSV column
        return sorted(value.split(";"))
    kinds = {"groups": "group", "users": "user", "agents": "agent"}
    return sorted(f"{kinds[k]}:{name}" for k, names in value.items() for name in names)


def test_document_acls_are_where_the_manifest_says(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    documents = {(d["source_id"], d["id"]): d["acl"] for d in manifest["documents"]}
    assert len(documents) == len(manifest["documents"]), "one entry per document"
    hostile = {(m["uri"], m["line"]) for m in manifest["malformed"]}
    summary = manifest["acl_summary"]
    for source_id in SOURCES:
        listed = {doc_id: acl for (src, doc_id), acl in documents.items() if src == source_id}
        assert summary[source_id]["documents"] == len(listed)
        assert summary[source_id]["with_acl"] == sum(acl is not None for acl in listed.values())
        on_disk = {
            record_id(source_id, rec): _record_acl(source_id, rec)
            for rec in read_source(landing, source_id)
            if rec.data is not None and (rec.uri, rec.line) not in hostile
        }
        assert on_disk == listed, source_id  # every accepted record is listed with its ACL, nothing else is
    users = json.loads((Path(__file__).resolve().parents[1] / "src/aquifer/sample/users.json").read_text())["users"]
    groups = set(yaml.safe_load((CATALOG / "identity.yaml").read_text())["groups"])
    for acl in filter(None, documents.values()):
        assert all(p.split(":", 1)[1] in (groups if p.startswith("group:") else users) for p in acl), acl
    hr = summary["hr_case_notes"]
    assert hr["with_acl"] == hr["documents"] == hr["principals"]["group:hr-leads"]  # required: every case has one
    north, south = hr["principals"]["group:hr-partners-north"], hr["principals"]["group:hr-partners-south"]
    assert north + south == hr["documents"] and 0.35 <= north / hr["documents"] <= 0.65
    assert 0 < hr["principals"]["user:amira.haddad"] + hr["principals"]["user:ben.okafor"] <= 0.1 * hr["documents"]
    tickets, runbooks = summary["support_tickets"], summary["security_runbooks"]
    assert 0.1 <= tickets["with_acl"] / tickets["documents"] <= 0.2
    assert tickets["principals"]["group:support-tier2"] == tickets["with_acl"]
    assert 0.2 <= runbooks["with_acl"] / runbooks["documents"] <= 0.45
    assert runbooks["principals"] == {"group:oncall": runbooks["with_acl"]}
    for source_id in ("product_docs", "engineering_wiki", "hr_handbook", "finance_reports"):
        assert summary[source_id]["with_acl"] == 0, source_id


def test_exact_duplicates_are_identical_records(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    assert {d["source_id"] for d in manifest["exact_duplicates"]} == {
        "product_docs",
        "hr_case_notes",
        "support_tickets",
    }
    for dup in manifest["exact_duplicates"]:
        recs = by_id(landing, dup["source_id"])[dup["id"]]
        assert sorted(r.uri for r in recs) == sorted(dup["uris"])
        assert len(set(dup["uris"])) == 2
        assert recs[0].raw == recs[1].raw


def _title_body(rec: Record) -> str:
    assert rec.data is not None
    return normalize_text(f"{rec.data['title']}\n{rec.data['body']}")


def test_near_duplicates_collapse_and_normal_documents_do_not(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    assert len(manifest["near_duplicates"]) >= 3
    _check_near_duplicates(landing, manifest)


def _check_near_duplicates(landing: Path, manifest: dict[str, Any]) -> None:
    expected = {(n["source_id"], frozenset((n["id"], n["of"]))) for n in manifest["near_duplicates"]}
    found = set()
    for source_id in MARKDOWN_SOURCES:
        groups: dict[str, set[str]] = defaultdict(set)
        for rid, recs in by_id(landing, source_id).items():
            for rec in recs:
                groups[_title_body(rec)].add(rid)
        found |= {(source_id, frozenset(ids)) for ids in groups.values() if len(ids) > 1}
    assert found == expected
    for near in manifest["near_duplicates"]:
        index = by_id(landing, near["source_id"])
        copy, original = index[near["id"]][0], index[near["of"]][0]
        assert copy.raw != original.raw and copy.data != original.data
        assert record_time(near["source_id"], copy) > record_time(near["source_id"], original)


def test_superseded_versions(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    assert len(manifest["superseded"]) >= 2
    for sup in manifest["superseded"]:
        source_id = sup["source_id"]
        versions = {r.uri: r for r in by_id(landing, source_id)[sup["id"]]}
        assert set(versions) == {sup["older_uri"], sup["newer_uri"]}
        older, newer = versions[sup["older_uri"]], versions[sup["newer_uri"]]
        assert record_time(source_id, older) < record_time(source_id, newer)
        assert older.data != newer.data


def test_stale_documents(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    assert len(manifest["stale"]) >= 5
    for stale in manifest["stale"]:
        (rec,) = by_id(landing, stale["source_id"])[stale["id"]]
        assert age_days(stale["source_id"], rec) > SOURCES[stale["source_id"]].freshness_days


def test_instruction_like_text(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    planted = manifest["instruction_like"]
    assert len(planted) >= 4
    assert {p["phrase"] for p in planted} == {phrases[0] for phrases in INSTRUCTION_PHRASES.values()} | {
        INSTRUCTION_PHRASES["support_tickets"][1]
    }
    planted_ids = {(p["source_id"], p["id"]) for p in planted}
    for entry in planted:
        (rec,) = by_id(landing, entry["source_id"])[entry["id"]]
        assert entry["phrase"] in record_text(rec)
    every_phrase = {p.casefold() for phrases in INSTRUCTION_PHRASES.values() for p in phrases}
    for source_id in SOURCES:
        for rid, recs in by_id(landing, source_id).items():
            text = record_text(recs[0]).casefold()
            if (source_id, rid) not in planted_ids:
                assert not any(p in text for p in every_phrase), (source_id, rid)


def test_pii_is_where_the_manifest_says(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus
    checks = {
        "email": EMAIL_RE,
        "phone": PHONE_RE,
        "national_id": SSN_RE,
        "address": ADDRESS_RE,
        "credit_card": CARD_RE,
    }
    entries = {(p["source_id"], p["id"]): p["types"] for p in manifest["pii"]}
    assert {s for s, _ in entries} == {"hr_case_notes", "support_tickets"}
    assert sum("credit_card" in types for types in entries.values()) >= 2
    for source_id in ("hr_case_notes", "support_tickets"):
        index = by_id(landing, source_id)
        assert len([k for k in entries if k[0] == source_id]) >= len(index) - 3
        for (src, rid), types in entries.items():
            if src != source_id:
                continue
            rec = index[rid][0]
            assert rec.data is not None
            text = rec.data.get("note") or rec.data["description"]
            assert "person" in types
            if source_id == "support_tickets":
                assert rec.data["customer_name"] in text and rec.data["customer_email"] in text
            for kind, pattern in checks.items():
                assert bool(pattern.search(text)) == (kind in types), (rid, kind, text)
            if "credit_card" in types:
                card = CARD_RE.search(text)
                assert card is not None and luhn_valid(card.group())


def test_no_pii_in_markdown_sources(corpus: tuple[Path, dict[str, Any]]) -> None:
    landing, _ = corpus
    for source_id in MARKDOWN_SOURCES:
        whole_file = source_id in ("product_docs", "security_runbooks")
        for rec in read_source(landing, source_id):
            if rec.data is None:
                continue
            # Internal pages carry a team alias as `owner`; public and restricted ones must have no "@" at all.
            text = rec.raw.decode() if whole_file else rec.data["body"]
            assert "@" not in text, rec.uri
            for pattern in (SSN_RE, PHONE_RE, CARD_RE, ADDRESS_RE):
                assert not pattern.search(text), (rec.uri, pattern.pattern)


def test_increment_adds_only_new_files_and_ids(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    manifest = generate(landing, as_of=AS_OF)
    before = _sha256_tree(landing)
    old_ids = {s: set(by_id(landing, s)) for s in SOURCES}
    result = generate_increment(landing, fraction=0.02, as_of=AS_OF)
    after = _sha256_tree(landing)
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == result["files"]
    assert all(uri.split("/")[1] == "inc1" for uri in result["files"])
    total = sum(c["records"] for c in manifest["counts"].values())
    assert 0.015 * total <= result["records"] <= 0.03 * total
    new_records = 0
    for source_id in SOURCES:
        new = [r for r in read_source(landing, source_id) if r.uri in result["files"]]
        assert new and all(r.data is not None for r in new)
        assert not {record_id(source_id, r) for r in new} & old_ids[source_id]
        assert len({record_id(source_id, r) for r in new}) == len(new)
        assert all(0 < age_days(source_id, r) <= 2 for r in new)
        new_records += len(new)
    assert new_records == result["records"]
    with pytest.raises(FileExistsError):
        generate_increment(landing, as_of=AS_OF)
    second = generate_increment(landing, label="inc2", as_of=AS_OF)
    assert not set(second["files"]) & set(result["files"])


def test_scale_two_repeats_planted_anomalies(corpus2: tuple[Path, dict[str, Any]]) -> None:
    landing, manifest = corpus2
    for source_id, spec in SOURCES.items():
        assert 2 * spec.per_unit <= manifest["counts"][source_id]["records"] <= 2 * spec.per_unit + 6
        assert manifest["counts"][source_id]["records"] == len(read_source(landing, source_id))
    # 8 malformed files and records + 10 hostile ACL records (4 HR cases, 3 tickets, 3 runbooks), all planted once
    # per corpus whatever the scale
    assert len(manifest["malformed"]) == 8 + 10
    assert [len(manifest[k]) for k in ("exact_duplicates", "near_duplicates", "superseded", "stale")] == [6, 6, 6, 12]
    assert len(manifest["instruction_like"]) == 8
    for entry in manifest["malformed"]:
        raw = (landing / entry["uri"]).read_bytes()
        _check_malformed(entry["expected_status"], raw, entry["line"], entry["source_id"])
    for dup in manifest["exact_duplicates"]:
        recs = by_id(landing, dup["source_id"])[dup["id"]]
        assert len({r.raw for r in recs}) == 1 and len({r.uri for r in recs}) == 2
    _check_near_duplicates(landing, manifest)
