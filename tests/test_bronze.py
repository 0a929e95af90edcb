from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from aquifer.catalog import Catalog
from aquifer.medallion import bronze
from aquifer.medallion.common import RunContext

MD = b"---\nid: pd-1\ntitle: SSO setup\nupdated_at: 2026-11-20T10:00:00Z\n---\n# SSO setup\n\nConfigure SAML.\n"
CSV_HEAD = b"ticket_id,subject,description,customer_name,customer_email,priority,status,created_at,updated_at\n"


@pytest.mark.parametrize(
    ("source_id", "name", "data", "statuses"),
    [
        ("product_docs", "a.md", MD, ["ok"]),
        ("product_docs", "empty.md", b"", ["empty_file"]),
        ("product_docs", "bad.md", b"---\nid: x\n---\nbody \xff\xfe", ["invalid_utf8"]),
        ("security_runbooks", "diagram.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["binary_content"]),
        ("product_docs", "list.md", b"---\n- a\n- b\n---\nbody", ["invalid_front_matter"]),
        ("product_docs", "notes.txt", b"hello", ["unsupported_extension"]),
        (
            "hr_case_notes",
            "c.jsonl",
            b'{"case_id": "1"}\n\n[1, 2]\n{"case_id": "2", "no',
            ["ok", "not_an_object", "invalid_json"],
        ),
        (
            "support_tickets",
            "t.csv",
            CSV_HEAD
            + b'T1,Refund,"Line one\nline two, with comma",A,a@b.c,low,open,2026-01-01,2026-01-02\nT2,short,row\n',
            ["ok", "csv_column_count"],
        ),
        ("support_tickets", "none.csv", b"\n", ["csv_no_header"]),
    ],
)
def test_read_records_classifies_every_record(
    catalog: Catalog, source_id: str, name: str, data: bytes, statuses: list[str]
) -> None:
    records = list(bronze.read_records(catalog.source(source_id), Path(name), data))
    assert [r.status for r in records] == statuses
    for record in records:
        assert record.raw in data  # raw bytes are kept, even when unparseable
        assert (record.payload is None) == (record.status != "ok")
        if record.status != "ok":
            assert record.error and record.error.startswith(bronze.PARSE_ERRORS[record.status])


def test_csv_record_keeps_its_own_raw_lines(catalog: Catalog) -> None:
    data = (
        CSV_HEAD
        + b'T1,a,"multi\nline",A,a@b.c,low,open,2026-01-01,2026-01-02\nT2,b,c,B,b@b.c,low,open,2026-01-01,2026-01-02\n'
    )
    first, second = bronze.read_records(catalog.source("support_tickets"), Path("t.csv"), data)
    assert first.raw == b'T1,a,"multi\nline",A,a@b.c,low,open,2026-01-01,2026-01-02\n'
    assert first.payload is not None and first.payload["description"] == "multi\nline"
    assert second.raw.startswith(b"T2,")


def test_markdown_front_matter_becomes_payload(catalog: Catalog) -> None:
    (record,) = bronze.read_records(catalog.source("product_docs"), Path("a.md"), MD)
    assert record.payload == {
        "id": "pd-1", "title": "SSO setup", "updated_at": "2026-11-20T10:00:00+00:00",
        "body": "# SSO setup\n\nConfigure SAML.\n",
    }  # fmt: skip


def _land(landing: Path, rel: str, data: bytes) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_reingesting_unchanged_files_adds_nothing(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    source = catalog.source("hr_case_notes")
    path = _land(landing, "hr_case_notes/a.jsonl", b'{"case_id": "1"}\n{"case_id": "2"}\n')
    first = bronze.promote_to_bronze(source, landing, ctx)
    assert (first.rows_written, first.version) == (2, 0)

    assert bronze.promote_to_bronze(source, landing, ctx).version == 0  # same stat: file not even read
    os.utime(path, ns=(1, 1))  # touched, same bytes: read, hashed, skipped
    again = bronze.promote_to_bronze(source, landing, ctx)
    assert (again.rows_written, again.version) == (0, 0)

    path.write_bytes(b'{"case_id": "1"}\n{"case_id": "2"}\n{"case_id": "3"}\n')  # appended a record
    grown = bronze.promote_to_bronze(source, landing, ctx)
    assert (grown.rows_written, grown.version, grown.rows_total) == (1, 1, 3)
    table = ctx.lake.read("bronze", "hr_case_notes")
    assert table["record_id"].n_unique() == 3
    assert set(table["parse_status"]) == {"ok"}


def test_identical_lines_in_one_file_are_distinct_records(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _land(landing, "hr_case_notes/a.jsonl", b'{"case_id": "1"}\n{"case_id": "1"}\n')
    result = bronze.promote_to_bronze(catalog.source("hr_case_notes"), landing, ctx)
    assert result.rows_written == 2
    table = ctx.lake.read("bronze", "hr_case_notes")
    assert table["record_id"].n_unique() == 2 and table["content_sha256"].n_unique() == 1


def test_nothing_is_dropped(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _land(landing, "product_docs/a.md", MD)
    _land(landing, "product_docs/empty.md", b"")
    _land(landing, "product_docs/bin.md", b"\x00\x01")
    _land(landing, "product_docs/.DS_Store", b"junk")
    bronze.promote_to_bronze(catalog.source("product_docs"), landing, ctx)
    table = ctx.lake.read("bronze", "product_docs").sort("uri")
    assert table["uri"].to_list() == ["product_docs/a.md", "product_docs/bin.md", "product_docs/empty.md"]
    assert table.filter(pl.col("uri") == "product_docs/bin.md")["raw"].item() == b"\x00\x01"
    assert table.schema == pl.Schema(bronze.SCHEMA)
