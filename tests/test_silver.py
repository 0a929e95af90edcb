from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aquifer.catalog import Catalog, Classification
from aquifer.medallion import bronze, checks, silver
from aquifer.medallion.common import RunContext

# hr_case_notes requires a document ACL (catalog: document_acl: required); tests/test_acl_medallion.py covers ACLs
CASE = {
    "case_id": "c-1",
    "subject": "Leave request",
    "note": "Discussed leave.",
    "updated_at": "2026-11-01T09:00:00Z",
    "acl": {"groups": ["hr-leads"]},
}
ACL = '"acl": ["group:hr-leads"]'


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"note": None}, "missing_field", "note"),
        ({"note": "   "}, "missing_field", "note"),
        ({"case_id": None}, "missing_field", "case_id"),
        ({"subject": ["a"]}, "invalid_field_type", "subject"),
        ({"updated_at": "next tuesday"}, "invalid_timestamp", "updated_at"),
    ],
)
def test_normalise_rejects_with_reason_and_field(
    catalog: Catalog, change: dict[str, Any], reason: str, field: str
) -> None:
    with pytest.raises(silver.Rejected) as excinfo:
        silver.normalise(catalog.source("hr_case_notes"), {**CASE, **change}, "hr_case_notes/a.jsonl")
    assert excinfo.value.reason == reason
    assert repr(field) in str(excinfo.value)


def test_normalise_maps_catalog_fields(catalog: Catalog) -> None:
    doc = silver.normalise(catalog.source("hr_case_notes"), CASE, "hr_case_notes/a.jsonl")
    assert (doc.doc_id, doc.title, doc.body) == ("c-1", "Leave request", "Discussed leave.")
    assert doc.updated_at == dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
    assert doc.owner == "hr-cases@tidewater.example"  # catalog owner when the record names none
    assert doc.language == "en"


def test_markdown_without_id_or_title_falls_back_to_path_and_heading(catalog: Catalog) -> None:
    payload = {"updated_at": "2026-11-01", "body": "Intro\n\n# Getting started\n\ntext"}
    doc = silver.normalise(catalog.source("product_docs"), payload, "product_docs/guides/getting-started.md")
    assert (doc.doc_id, doc.title) == ("getting-started", "Getting started")
    assert doc.updated_at.tzinfo is not None


@pytest.mark.parametrize(
    ("default", "types", "expected"),
    [
        (Classification.INTERNAL, [], Classification.INTERNAL),
        (Classification.INTERNAL, ["email", "phone"], Classification.INTERNAL),
        (Classification.INTERNAL, ["email", "national_id"], Classification.CONFIDENTIAL),
        (Classification.PUBLIC, ["person"], Classification.INTERNAL),
        (Classification.RESTRICTED, ["credit_card"], Classification.RESTRICTED),
    ],
)
def test_classification_is_max_of_default_and_pii_floor(
    catalog: Catalog, default: Classification, types: list[str], expected: Classification
) -> None:
    assert silver.classify(default, types, catalog.vocabulary.pii_floor) is expected


def _jsonl(landing: Path, name: str, *lines: str) -> None:
    path = landing / "hr_case_notes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def test_silver_accounts_for_every_bronze_record(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    good = (
        f'{{"case_id": "c-1", "subject": "Leave", "note": "Mail jane@example.com", "updated_at": "2026-11-01", {ACL}}}'
    )
    other = f'{{"case_id": "c-2", "subject": "Move", "note": "Relocation", "updated_at": "2026-11-02", {ACL}}}'
    _jsonl(
        landing,
        "a.jsonl",
        good,
        other,
        f'{{"case_id": "c-3", "note": "x", "updated_at": "2026-11-01", {ACL}}}',
        "{trunc",
    )
    _jsonl(landing, "b.jsonl", good)  # exact duplicate in another file
    source = catalog.source("hr_case_notes")
    bronze.promote_to_bronze(source, ctx, landing_root=landing)
    result = silver.promote_to_silver(source, ctx, catalog=catalog)

    docs = ctx.lake.read("silver", source.id).sort("doc_id")
    assert docs["doc_id"].to_list() == ["c-1", "c-2"]
    assert docs["upstream_ids"].list.len().to_list() == [2, 1]
    quarantine = ctx.lake.read("quarantine", source.id).sort("reason")
    assert quarantine["reason"].to_list() == ["invalid_json", "missing_field"]
    assert all(m.startswith("hr_case_notes/a.jsonl: ") for m in quarantine["message"])
    outcome = checks.conservation(ctx.lake, source.id)
    assert outcome.passed, outcome.description
    assert outcome.metadata == {
        "bronze_records": 5,
        "silver_documents": 2,
        "quarantined": 2,
        "collapsed_duplicates": 1,
    }
    assert result.metadata["duplicates_collapsed_now"] == 1

    first = docs.filter(pl.col("doc_id") == "c-1").row(0, named=True)
    assert first["classification"] == "confidential"  # the catalog default wins over the email floor
    assert first["upstream_table"] == "bronze/hr_case_notes" and first["upstream_version"] == 0
    assert first["run_id"] == "run-1" and first["code_version"] == silver.CODE_VERSION

    # a later duplicate extends the existing document instead of adding one; a rerun writes nothing
    _jsonl(landing, "c.jsonl", good)
    bronze.promote_to_bronze(source, ctx, landing_root=landing)
    silver.promote_to_silver(source, ctx, catalog=catalog)
    docs = ctx.lake.read("silver", source.id).sort("doc_id")
    assert docs["upstream_ids"].list.len().to_list() == [3, 1]
    assert checks.conservation(ctx.lake, source.id).passed
    version = ctx.lake.version("silver", source.id)
    silver.promote_to_silver(source, ctx, catalog=catalog)
    assert ctx.lake.version("silver", source.id) == version


def test_conservation_fails_when_a_record_is_lost(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _jsonl(landing, "a.jsonl", f'{{"case_id": "c-1", "subject": "s", "note": "n", "updated_at": "2026-11-01", {ACL}}}')
    source = catalog.source("hr_case_notes")
    bronze.promote_to_bronze(source, ctx, landing_root=landing)
    _jsonl(landing, "b.jsonl", f'{{"case_id": "c-2", "subject": "s", "note": "n", "updated_at": "2026-11-01", {ACL}}}')
    silver.promote_to_silver(source, ctx, catalog=catalog)
    bronze.promote_to_bronze(source, ctx, landing_root=landing)  # bronze grew after silver ran
    outcome = checks.conservation(ctx.lake, source.id)
    assert not outcome.passed
    assert "1 bronze records are unaccounted for" in outcome.description


@pytest.mark.parametrize(
    ("status", "payload", "accepted", "reason"),
    [
        ("ok", CASE, 1, None),
        ("ok", {**CASE, "note": ""}, 0, "missing_field"),
        ("invalid_json", None, 0, "invalid_json"),
        ("nesting_too_deep", None, 0, "nesting_too_deep"),
    ],
)
def test_triage_keeps_what_normalises_and_quarantines_the_rest_with_its_reason(
    catalog: Catalog, status: str, payload: dict[str, Any] | None, accepted: int, reason: str | None
) -> None:
    import json

    pending = pl.DataFrame(
        [
            {
                "record_id": "brz_1",
                "uri": "hr_case_notes/a.jsonl",
                "record_ordinal": 3,
                "payload": json.dumps(payload) if payload else None,
                "parse_status": status,
                "parse_error": "bad",
            }
        ]
    )
    kept, rejects = silver.triage(pending, catalog.source("hr_case_notes"), {"run_id": "r"})
    assert len(kept) == accepted
    assert [r["reason"] for r in rejects] == ([reason] if reason else [])
    assert all(r["message"].startswith("hr_case_notes/a.jsonl: ") and r["run_id"] == "r" for r in rejects)


@pytest.mark.parametrize(
    ("second", "documents"),
    [({}, 1), ({"updated_at": "2026-11-02T09:00:00Z"}, 2), ({"note": "Another note."}, 2), ({"case_id": "c-2"}, 2)],
)
def test_exact_duplicates_collapse_into_one_document(catalog: Catalog, second: dict[str, str], documents: int) -> None:
    source = catalog.source("hr_case_notes")
    first = silver.normalise(source, CASE, "a.jsonl")
    other = silver.normalise(source, {**CASE, **second}, "b.jsonl")
    docs = silver.collapse_duplicates([("brz_1", first), ("brz_2", other)], source)
    assert len(docs) == documents
    assert sum(len(d["upstream_ids"]) for d in docs) == 2, "every bronze record is accounted for"
