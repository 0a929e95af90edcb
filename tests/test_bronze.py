from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import yaml

from aquifer.catalog import Catalog
from aquifer.medallion import bronze, readers
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
    records = list(readers.read_records(catalog.source(source_id), Path(name), data))
    assert [r.status for r in records] == statuses
    for record in records:
        assert record.raw in data  # raw bytes are kept, even when unparseable
        assert (record.payload is None) == (record.status != "ok")
        if record.status != "ok":
            assert record.error and record.error.startswith(readers.PARSE_ERRORS[record.status])


DEEP = b"[" * 5000 + b"1" + b"]" * 5000
SMALL = readers.ReaderLimits(max_record_bytes=2000, max_line_bytes=1000, max_depth=8, max_nodes=400)
LAUGHS = b"---\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + (
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n---\nbody\n"
)


@pytest.mark.parametrize(
    ("source_id", "name", "data", "statuses"),
    [
        (
            "hr_case_notes",
            "deep9.jsonl",
            b'{"a": ' + b"[" * 8 + b"]" * 8 + b'}\n{"a": [[1]]}',
            ["nesting_too_deep", "ok"],
        ),
        ("hr_case_notes", "wide.jsonl", b'{"a": [' + b",".join([b"1"] * 450) + b"]}", ["expands_too_large"]),
        ("hr_case_notes", "long.jsonl", b'{"a": "' + b"x" * 1000 + b'"}\n{"b": 1}', ["line_too_long", "ok"]),
        ("product_docs", "big.md", b"# Big\n\n" + b"word " * 500, ["record_too_large"]),
        ("product_docs", "deep9.md", b"---\na: " + b"[" * 9 + b"]" * 9 + b"\n---\nbody", ["nesting_too_deep"]),
        ("product_docs", "laughs.md", LAUGHS, ["expands_too_large"]),
        (
            "support_tickets",
            "huge.csv",
            CSV_HEAD
            + b"T1,"
            + b"x" * 3000
            + b",c,A,a@b.c,low,open,2026-01-01,2026-01-02\n"
            + b"T2,b,c,B,b@b.c,low,open,2026-01-01,2026-01-02\n",
            ["record_too_large", "ok"],
        ),
        (
            "support_tickets",
            "cr.csv",
            CSV_HEAD + b"T1,a,c,A,a@b.c,low,open,2026-01-01,2026-01-02\n" + b"T2,carriage\rreturn,c\nT3,b,c\n",
            ["ok", "csv_malformed"],
        ),
    ],
)
def test_limits_quarantine_a_record_and_keep_reading(
    catalog: Catalog, source_id: str, name: str, data: bytes, statuses: list[str]
) -> None:
    """Each limit of ReaderLimits, one hostile record at a time: the record gets its code, its neighbours are read."""
    records = list(readers.read_records(catalog.source(source_id), Path(name), data, SMALL))
    assert [r.status for r in records] == statuses
    for record in records:
        assert record.raw in data
        if record.status != "ok":
            assert record.error and record.error.startswith(readers.PARSE_ERRORS[record.status])


@pytest.mark.parametrize(
    ("source_id", "name", "data", "statuses"),
    [
        # 5,000 deep: json.loads and PyYAML would raise RecursionError and stop the whole source
        (
            "hr_case_notes",
            "deep.jsonl",
            b'{"case_id": "1"}\n{"x": ' + DEEP + b'}\n{"case_id": "2"}',
            ["ok", "nesting_too_deep", "ok"],
        ),
        ("product_docs", "deep.md", b"---\na: " + DEEP + b"\n---\nbody", ["invalid_front_matter"]),
    ],
)
def test_json_and_yaml_nested_5000_deep_are_quarantined_at_the_default_limits(
    catalog: Catalog, source_id: str, name: str, data: bytes, statuses: list[str]
) -> None:
    records = list(readers.read_records(catalog.source(source_id), Path(name), data))
    assert [r.status for r in records] == statuses
    assert "level" in (records[-1 if name.endswith(".md") else 1].error or "")


def test_a_file_over_the_size_limit_is_one_record_with_its_head_and_hash(catalog: Catalog, tmp_path: Path) -> None:
    from aquifer.lake import Lake

    landing = tmp_path / "landing"
    (landing / "hr").mkdir(parents=True)
    big = b'{"case_id": "1"}\n' * 100_000
    (landing / "hr" / "big.jsonl").write_bytes(big)
    source = catalog.source("hr_case_notes").model_copy(update={"landing_path": "hr"})
    ctx = RunContext(lake=Lake(str(tmp_path / "lake")), run_id="r1")
    result = bronze.promote_to_bronze(
        source, ctx, landing_root=landing, limits=readers.ReaderLimits(max_file_bytes=1_000_000)
    )
    rows = ctx.lake.read("bronze", source.id)
    assert result.rows_written == 1 and rows["parse_status"].to_list() == ["file_too_large"]
    import hashlib

    assert rows["file_sha256"][0] == hashlib.sha256(big).hexdigest() == rows["content_sha256"][0]
    assert rows["raw"][0] == big[: bronze.HEAD_BYTES]
    (landing / "hr" / "big.jsonl").write_bytes(big + b'{"case_id": "2"}\n')
    again = bronze.promote_to_bronze(
        source, ctx, landing_root=landing, limits=readers.ReaderLimits(max_file_bytes=1_000_000)
    )
    assert again.rows_written == 1, "a changed file over the limit is a new record (its hash changed)"


def test_the_limits_are_settings() -> None:
    from aquifer.settings import Settings

    limits = readers.ReaderLimits.from_settings(Settings(bronze_max_depth=7, bronze_max_line_bytes=99))
    assert (limits.max_depth, limits.max_line_bytes) == (7, 99)
    assert readers.ReaderLimits.from_settings(Settings()) == readers.ReaderLimits()


def test_csv_record_keeps_its_own_raw_lines(catalog: Catalog) -> None:
    data = (
        CSV_HEAD
        + b'T1,a,"multi\nline",A,a@b.c,low,open,2026-01-01,2026-01-02\nT2,b,c,B,b@b.c,low,open,2026-01-01,2026-01-02\n'
    )
    first, second = readers.read_records(catalog.source("support_tickets"), Path("t.csv"), data)
    assert first.raw == b'T1,a,"multi\nline",A,a@b.c,low,open,2026-01-01,2026-01-02\n'
    assert first.payload is not None and first.payload["description"] == "multi\nline"
    assert second.raw.startswith(b"T2,")


def test_markdown_front_matter_becomes_payload(catalog: Catalog) -> None:
    (record,) = readers.read_records(catalog.source("product_docs"), Path("a.md"), MD)
    assert record.payload == {
        "id": "pd-1",
        "title": "SSO setup",
        "updated_at": "2026-11-20T10:00:00+00:00",
        "body": "# SSO setup\n\nConfigure SAML.\n",
    }


def _land(landing: Path, rel: str, data: bytes) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_reingesting_unchanged_files_adds_nothing(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    source = catalog.source("hr_case_notes")
    path = _land(landing, "hr_case_notes/a.jsonl", b'{"case_id": "1"}\n{"case_id": "2"}\n')
    first = bronze.promote_to_bronze(source, ctx, landing_root=landing)
    assert (first.rows_written, first.version) == (2, 0)

    assert bronze.promote_to_bronze(source, ctx, landing_root=landing).version == 0  # same stat: file not even read
    os.utime(path, ns=(1, 1))  # touched, same bytes: read, hashed, skipped
    again = bronze.promote_to_bronze(source, ctx, landing_root=landing)
    assert (again.rows_written, again.version) == (0, 0)

    path.write_bytes(b'{"case_id": "1"}\n{"case_id": "2"}\n{"case_id": "3"}\n')  # appended a record
    grown = bronze.promote_to_bronze(source, ctx, landing_root=landing)
    assert (grown.rows_written, grown.version, grown.rows_total) == (1, 1, 3)
    table = ctx.lake.read("bronze", "hr_case_notes")
    assert table["record_id"].n_unique() == 3
    assert set(table["parse_status"]) == {"ok"}


def test_a_file_edited_back_to_earlier_content_is_read_again(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    """A -> B -> A: the third read is a new observation (new record ids, a later ingested_at), so the content the
    landing zone holds now reaches silver; reading A once more after that adds nothing."""
    source, landing = catalog.source("hr_case_notes"), tmp_path / "landing"
    a, b = b'{"case_id": "1", "note": "narrow"}\n', b'{"case_id": "1", "note": "wide"}\n'
    written = []
    for n, content in enumerate([a, b, a, a]):
        path = _land(landing, "hr_case_notes/a.jsonl", content)
        os.utime(path, ns=(n + 10, n + 10))  # a new mtime each time, as an edit gives
        later = RunContext(lake=ctx.lake, run_id=f"run-{n}", now=ctx.now + dt.timedelta(hours=n))
        written.append(bronze.promote_to_bronze(source, later, landing_root=landing).rows_written)
    assert written == [1, 1, 1, 0]
    table = ctx.lake.read("bronze", "hr_case_notes").sort("ingested_at")
    assert table["record_id"].n_unique() == 3
    assert table["content_sha256"].to_list()[0] == table["content_sha256"].to_list()[2], "the same bytes, seen again"


def test_identical_lines_in_one_file_are_distinct_records(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _land(landing, "hr_case_notes/a.jsonl", b'{"case_id": "1"}\n{"case_id": "1"}\n')
    result = bronze.promote_to_bronze(catalog.source("hr_case_notes"), ctx, landing_root=landing)
    assert result.rows_written == 2
    table = ctx.lake.read("bronze", "hr_case_notes")
    assert table["record_id"].n_unique() == 2 and table["content_sha256"].n_unique() == 1


def test_nothing_is_dropped(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _land(landing, "product_docs/a.md", MD)
    _land(landing, "product_docs/empty.md", b"")
    _land(landing, "product_docs/bin.md", b"\x00\x01")
    _land(landing, "product_docs/.DS_Store", b"junk")
    bronze.promote_to_bronze(catalog.source("product_docs"), ctx, landing_root=landing)
    table = ctx.lake.read("bronze", "product_docs").sort("uri")
    assert table["uri"].to_list() == ["product_docs/a.md", "product_docs/bin.md", "product_docs/empty.md"]
    assert table.filter(pl.col("uri") == "product_docs/bin.md")["raw"].item() == b"\x00\x01"
    assert table.schema == pl.Schema(bronze.SCHEMA)


def test_a_new_source_format_is_one_reader_entry(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tab-separated format, added as one entry of the registry: the catalog accepts the name, bronze reads it,
    silver normalises its records, with no other change."""
    from aquifer.catalog import load_catalog
    from aquifer.lake import Lake
    from aquifer.medallion import silver
    from aquifer.settings import PROJECT_ROOT

    def tsv(data: bytes, limits: readers.ReaderLimits) -> Iterator[readers.Record]:
        header, *rows = data.decode().splitlines()
        names = header.split("\t")
        for number, row in enumerate(rows, start=2):
            yield readers.Record(number, row.encode(), dict(zip(names, row.split("\t"), strict=True)), readers.OK)

    monkeypatch.setitem(readers.READERS, "tsv", readers.Reader("tsv", (".tsv",), tsv))
    root = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "catalog", root)
    entry = yaml.safe_load((root / "sources" / "hr_case_notes.yaml").read_text())
    (root / "sources" / "hr_case_notes.yaml").write_text(yaml.safe_dump({**entry, "format": "tsv"}))
    tsv_catalog = load_catalog(root)
    source = tsv_catalog.source("hr_case_notes")
    landing = tmp_path / "landing"
    (landing / source.landing_path).mkdir(parents=True)
    (landing / source.landing_path / "cases.tsv").write_text(  # hr_case_notes requires an ACL: a principals column
        "case_id\tsubject\tnote\tupdated_at\tacl\nc-1\tLeave\tDiscussed leave.\t2026-11-01\tgroup:hr-leads\n"
    )
    ctx = RunContext(lake=Lake(str(tmp_path / "lake")), run_id="r1")
    assert bronze.promote_to_bronze(source, ctx, landing_root=landing).rows_written == 1
    silver.promote_to_silver(source, ctx, catalog=tsv_catalog)
    assert ctx.lake.read("silver", source.id)["doc_id"].to_list() == ["c-1"]
    assert ctx.lake.read("silver", source.id)["acl"].to_list() == [["group:hr-leads"]]
    with pytest.raises(Exception, match="not a source format Aquifer reads"):
        monkeypatch.delitem(readers.READERS, "tsv")
        load_catalog(root)
