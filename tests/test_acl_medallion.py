"""Per-document ACLs through the medallion: read from each format, normalised in silver, quarantined when missing
(required) or malformed (always), carried unchanged to every gold chunk and platinum row, re-promoted when they
change, shown in lineage; and the sample corpus lands the ACLs its manifest says."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pytest

from aquifer import sample
from aquifer.catalog import Catalog, Source
from aquifer.lake import Lake
from aquifer.lineage import trace
from aquifer.medallion import bronze, checks, gold, platinum, silver
from aquifer.medallion.common import RunContext

Mode = Literal["none", "optional", "required"]
UPDATED = "2026-11-01T09:00:00Z"  # fresh at the ctx fixture's now (2026-11-27) for every source's SLA
# ~400 tokens: every valid document below is several gold chunks, so "every chunk carries the ACL" is tested
LONG = " ".join(f"Step {i}: rotate the signing key of tenant {i} and confirm the audit entry." for i in range(40))
ABSENT = object()

# format -> (catalog source, a valid ACL as that format writes it, the principals silver must make of it)
VALID: dict[str, tuple[str, Any, list[str]]] = {
    "markdown": ("security_runbooks", {"groups": ["oncall", "auditors", "oncall"]}, ["group:auditors", "group:oncall"]),
    "jsonl": (
        "hr_case_notes",
        {"groups": ["hr-partners-north", "hr-leads"], "users": ["ben.okafor"]},
        ["group:hr-leads", "group:hr-partners-north", "user:ben.okafor"],
    ),
    "jsonl_list": ("hr_case_notes", ["user:erin.walsh", "group:finance"], ["group:finance", "user:erin.walsh"]),
    "csv": (
        "support_tickets",
        " group:support-tier2 ; user:dev.patel;group:support-tier2;",
        ["group:support-tier2", "user:dev.patel"],
    ),
}
# ACLs silver must refuse (invalid_acl) under optional and required alike; what each one gets wrong
MALFORMED_OBJECTS: dict[str, Any] = {
    "a word, not a principal": "everyone",
    "a number": 42,
    "a boolean": True,
    "unknown key": {"teams": ["hr-leads"]},
    "names not in a list": {"groups": "oncall"},
    "a name with a space": {"groups": ["on call"]},
    "a principal where a name belongs": {"groups": ["group:oncall"]},
    "an agent that is no identifier": {"agents": ["Support-Bot"]},
    "an object that lists nobody": {"groups": [], "users": None},
    "an empty object": {},
    "a list that lists nobody": [],
    "a list entry that is not text": ["group:finance", 7],
    "a list entry without a kind": ["finance"],
    "an unknown kind": ["role:admin"],
    "nested lists": [["group:finance"]],
}
MALFORMED_TEXT: dict[str, str] = {  # what a CSV column (or any text value) can get wrong
    "a name with a space": "group:bad name",
    "no kind": "support-tier2",
    "an unknown kind": "team:support",
    "only separators": " ; ;",
    "a comma list": "group:a,group:b",
    "a control character": "group:ok\x07",
}


def _source(catalog: Catalog, source_id: str, mode: Mode) -> Source:
    return catalog.source(source_id).model_copy(update={"document_acl": mode})


def _payload(source: Source, doc_id: str, acl: Any, body: str = LONG) -> dict[str, Any]:
    """A record of ``source`` as its reader's payload would hold it (for silver.normalise)."""
    f = source.fields
    payload = {f.id: doc_id, f.title: f"Document {doc_id}", f.body: body, f.updated_at: UPDATED}
    return payload if acl is ABSENT else {**payload, f.acl: acl}


def _land(landing: Path, source: Source, docs: dict[str, Any], name: str = "batch") -> None:
    """Write ``docs`` (doc id -> ACL value, or ABSENT) as landing files of ``source``'s format."""
    folder = landing / source.landing_path
    folder.mkdir(parents=True, exist_ok=True)
    if source.format == "markdown":
        for doc_id, acl in docs.items():
            front = ["---", f"id: {doc_id}", f'title: "Runbook {doc_id}"', f'updated_at: "{UPDATED}"']
            front += [] if acl is ABSENT else [f"acl: {json.dumps(acl)}"]  # JSON is valid YAML flow
            path = folder / f"{doc_id}.md"
            path.write_text("\n".join([*front, "---", "", f"# Runbook {doc_id}", "", LONG, ""]))
            os.utime(path, ns=(path.stat().st_mtime_ns + 1_000_000, path.stat().st_mtime_ns + 1_000_000))
    elif source.format == "jsonl":
        lines = [json.dumps(_payload(source, doc_id, acl)) for doc_id, acl in docs.items()]
        (folder / f"{name}.jsonl").write_text("".join(f"{line}\n" for line in lines))
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["ticket_id", "subject", "description", "updated_at", "acl"])
        for doc_id, acl in docs.items():
            writer.writerow([doc_id, f"Ticket {doc_id}", LONG, UPDATED, "" if acl is ABSENT else acl])
        (folder / f"{name}.csv").write_text(buf.getvalue())


def _promote(source: Source, ctx: RunContext, catalog: Catalog, landing: Path) -> None:
    bronze.promote_to_bronze(source, ctx, landing_root=landing)
    silver.promote_to_silver(source, ctx, catalog=catalog)
    gold.promote_to_gold(source, ctx, catalog=catalog)
    platinum.promote_to_platinum(source, ctx)


def _acl_by_doc(lake: Lake, layer: str, source: Source) -> dict[str, list[list[str] | None]]:
    """doc id -> the distinct ACLs its rows of ``layer`` carry."""
    rows = lake.read(layer, source.id).select("doc_id", "acl").unique(maintain_order=True)
    found: dict[str, list[list[str] | None]] = {}
    for doc_id, acl in rows.iter_rows():
        found.setdefault(doc_id, []).append(acl)
    return found


# ----------------------------------------------------------------------------------------------------------------
# silver.normalise: the shapes, one record at a time
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["optional", "required"])
@pytest.mark.parametrize("shape", sorted(VALID))
def test_a_valid_acl_is_normalised_to_sorted_unique_principals(catalog: Catalog, shape: str, mode: Mode) -> None:
    source_id, acl, expected = VALID[shape]
    source = _source(catalog, source_id, mode)
    doc = silver.normalise(source, _payload(source, "d-1", acl), f"{source_id}/a")
    assert doc.acl == tuple(expected)


@pytest.mark.parametrize("source_id", ["security_runbooks", "hr_case_notes", "support_tickets"])
@pytest.mark.parametrize("absent", [ABSENT, None, "", "   "])
def test_an_absent_acl_is_missing_under_required_and_null_under_optional(
    catalog: Catalog, source_id: str, absent: Any
) -> None:
    required = _source(catalog, source_id, "required")
    with pytest.raises(silver.Rejected) as excinfo:
        silver.normalise(required, _payload(required, "d-1", absent), f"{source_id}/a")
    assert excinfo.value.reason == "missing_acl"
    assert "'acl'" in str(excinfo.value) and source_id in str(excinfo.value)
    optional = _source(catalog, source_id, "optional")
    assert silver.normalise(optional, _payload(optional, "d-1", absent), f"{source_id}/a").acl is None


@pytest.mark.parametrize("mode", ["optional", "required"])
@pytest.mark.parametrize(
    ("what", "acl"), [*MALFORMED_OBJECTS.items(), *MALFORMED_TEXT.items()], ids=[*MALFORMED_OBJECTS, *MALFORMED_TEXT]
)
def test_a_malformed_acl_is_invalid_under_optional_and_required(
    catalog: Catalog, what: str, acl: Any, mode: Mode
) -> None:
    source = _source(catalog, "hr_case_notes", mode)
    with pytest.raises(silver.Rejected) as excinfo:
        silver.normalise(source, _payload(source, "d-1", acl), "hr_case_notes/a.jsonl")
    assert excinfo.value.reason == "invalid_acl", what
    assert str(excinfo.value).startswith("field 'acl' (acl) "), "the message names the field"


def test_an_invalid_acl_message_names_the_reason_without_dumping_the_value(catalog: Catalog) -> None:
    source = _source(catalog, "hr_case_notes", "required")
    hostile = ["group:ok"] * 3 + ["group:" + "x" * 5000 + " tail"]
    with pytest.raises(silver.Rejected) as excinfo:
        silver.normalise(source, _payload(source, "d-1", hostile), "hr_case_notes/a.jsonl")
    message = str(excinfo.value)
    assert "entry 4" in message and "is not a principal" in message
    assert len(message) < 300 and "tail" not in message
    unknown = {"groups": ["ok"], "k" * 1000: ["x"]}
    with pytest.raises(silver.Rejected, match="unknown key") as excinfo:
        silver.normalise(source, _payload(source, "d-1", unknown), "hr_case_notes/a.jsonl")
    assert len(str(excinfo.value)) < 300


def test_more_principals_than_the_limit_are_invalid(catalog: Catalog) -> None:
    source = _source(catalog, "hr_case_notes", "optional")
    many = {"users": [f"user{i}" for i in range(silver.MAX_ACL_PRINCIPALS + 1)]}
    with pytest.raises(silver.Rejected, match="more than") as excinfo:
        silver.normalise(source, _payload(source, "d-1", many), "hr_case_notes/a.jsonl")
    assert excinfo.value.reason == "invalid_acl"
    at_limit = {"users": many["users"][:-1]}
    assert len(silver.normalise(source, _payload(source, "d-1", at_limit), "a").acl or ()) == silver.MAX_ACL_PRINCIPALS


@pytest.mark.parametrize("acl", [ABSENT, "everyone", {"teams": ["x"]}, ["group:finance"]])
def test_document_acl_none_ignores_the_acl_field(catalog: Catalog, acl: Any) -> None:
    source = _source(catalog, "hr_case_notes", "none")
    assert silver.normalise(source, _payload(source, "d-1", acl), "hr_case_notes/a.jsonl").acl is None


# ----------------------------------------------------------------------------------------------------------------
# Through real Delta tables, per format
# ----------------------------------------------------------------------------------------------------------------


FORMAT_CASES = {  # format -> (valid shapes landed, malformed ACLs landed, as that format can write them)
    "markdown": (["markdown"], [{"groups": "oncall"}, "everyone", {"roles": ["oncall"]}]),
    "jsonl": (["jsonl", "jsonl_list"], [{"teams": ["hr-leads"]}, [], "group:bad name", 5]),
    "csv": (["csv"], ["group:bad name", ";", "support-tier2"]),
}


@pytest.mark.parametrize("mode", ["optional", "required"])
@pytest.mark.parametrize("fmt", sorted(FORMAT_CASES))
def test_acls_reach_every_chunk_and_bad_ones_are_quarantined(
    catalog: Catalog, ctx: RunContext, tmp_path: Path, fmt: str, mode: Mode
) -> None:
    shapes, malformed = FORMAT_CASES[fmt]
    source = _source(catalog, VALID[shapes[0]][0], mode)
    docs: dict[str, Any] = {f"ok-{i}": VALID[shape][1] for i, shape in enumerate(shapes)}
    docs["absent"] = ABSENT
    docs |= {f"bad-{i}": acl for i, acl in enumerate(malformed)}
    landing = tmp_path / "landing"
    _land(landing, source, docs)
    _promote(source, ctx, catalog, landing)
    lake = ctx.lake

    quarantine = {
        row["uri"].rsplit("/", 1)[-1]: row for row in lake.read("quarantine", source.id).iter_rows(named=True)
    }
    reasons = lake.read("quarantine", source.id)["reason"].to_list()
    expected_reasons = ["invalid_acl"] * len(malformed) + (["missing_acl"] if mode == "required" else [])
    assert sorted(reasons) == sorted(expected_reasons)
    assert all("'acl' (acl)" in r["message"] for r in quarantine.values())

    expected = {f"ok-{i}": VALID[shape][2] for i, shape in enumerate(shapes)}
    if mode == "optional":
        expected["absent"] = None  # governed by the dataset rules alone
    for layer in ("silver", "gold", "platinum"):
        found = _acl_by_doc(lake, layer, source)
        assert found == {doc_id: [acl] for doc_id, acl in expected.items()}, layer
    chunks = lake.read("platinum", source.id)
    assert chunks.filter(pl.col("doc_id") == "ok-0")["chunk_count"][0] > 1, "a multi-chunk document"
    assert chunks.height == lake.read("gold", source.id).height, "every chunk certified, each with its ACL"
    assert lake.read("silver", source.id).schema["acl"] == pl.List(pl.String)
    assert lake.read("platinum", source.id).schema["acl"] == pl.List(pl.String)
    assert lake.read("silver", source.id)["acl"].list.len().min() != 0, "never an empty list"

    outcome = checks.conservation(lake, source.id)
    assert outcome.passed, outcome.description
    assert outcome.metadata["quarantined"] == len(expected_reasons)
    acl_check = checks.document_acls(lake, source)
    assert acl_check.passed, acl_check.description
    assert acl_check.metadata["with_acl"] == len(shapes)
    assert checks.certified_only(lake, source, now=ctx.now).passed


@pytest.mark.parametrize("fmt", sorted(FORMAT_CASES))
def test_document_acl_none_promotes_every_document_with_a_null_acl(
    catalog: Catalog, ctx: RunContext, tmp_path: Path, fmt: str
) -> None:
    shapes, malformed = FORMAT_CASES[fmt]
    source = _source(catalog, VALID[shapes[0]][0], "none")
    docs = {"ok": VALID[shapes[0]][1], "absent": ABSENT, "bad": malformed[0]}
    _land(tmp_path / "landing", source, docs)
    _promote(source, ctx, catalog, tmp_path / "landing")
    assert ctx.lake.read("quarantine", source.id).height == 0
    for layer in ("silver", "gold", "platinum"):
        assert _acl_by_doc(ctx.lake, layer, source) == {"ok": [None], "absent": [None], "bad": [None]}, layer
    assert checks.document_acls(ctx.lake, source).passed


def test_document_acls_check_fails_on_a_table_that_breaks_the_contract(
    catalog: Catalog, ctx: RunContext, tmp_path: Path
) -> None:
    source = _source(catalog, "hr_case_notes", "optional")
    _land(tmp_path / "landing", source, {"a": ["group:finance"], "b": ABSENT})
    _promote(source, ctx, catalog, tmp_path / "landing")
    assert checks.document_acls(ctx.lake, source).passed
    required = _source(catalog, "hr_case_notes", "required")
    outcome = checks.document_acls(ctx.lake, required)
    assert not outcome.passed and "1 documents have no ACL" in outcome.description
    none = _source(catalog, "hr_case_notes", "none")
    assert "carry an ACL" in checks.document_acls(ctx.lake, none).description
    # platinum never certifies a chunk without an ACL for a source that requires one (the second lock)
    certifiable = platinum.certifiable(
        ctx.lake.scan("gold", source.id), freshness=source.freshness, now=ctx.now, acl_required=True
    ).collect()
    assert set(certifiable["doc_id"]) == {"a"}


# ----------------------------------------------------------------------------------------------------------------
# An ACL change takes effect on the next materialization
# ----------------------------------------------------------------------------------------------------------------

CHANGES: dict[str, tuple[Any, list[str], Any, list[str] | None]] = {
    # format -> (first ACL, its principals, the changed ACL, its principals)
    "markdown": (
        {"groups": ["oncall"]},
        ["group:oncall"],
        {"groups": ["oncall"], "users": ["farid.nouri"]},
        ["group:oncall", "user:farid.nouri"],
    ),
    "jsonl": (
        {"groups": ["hr-partners-north", "hr-leads"]},
        ["group:hr-leads", "group:hr-partners-north"],
        ["group:hr-leads"],
        ["group:hr-leads"],
    ),
    # optional: the ACL is lifted, the ticket is left to the dataset rules
    "csv": ("group:support-tier2", ["group:support-tier2"], ABSENT, None),
}


@pytest.mark.parametrize("fmt", sorted(CHANGES))
def test_an_acl_change_on_unchanged_content_repromotes_the_document(
    catalog: Catalog, ctx: RunContext, tmp_path: Path, fmt: str
) -> None:
    first, first_principals, changed, principals = CHANGES[fmt]
    source_id = VALID[fmt][0]
    source = _source(catalog, source_id, "optional")
    landing = tmp_path / "landing"
    _land(landing, source, {"doc": first, "other": first}, name="a")
    _promote(source, ctx, catalog, landing)
    lake = ctx.lake
    before = lake.read("platinum", source.id).filter(pl.col("doc_id") == "doc")
    assert before.height > 1 and before["acl"].to_list() == [first_principals] * before.height
    old_ids = set(before["platinum_id"])

    # the source system changes who may read "doc"; text and updated_at stay as they were
    if fmt == "jsonl":
        _land(landing, source, {"doc": changed}, name="b")  # a later export line
    else:
        _land(landing, source, {"doc": changed, "other": first}, name="a")  # the page or the export rewritten
    later = RunContext(lake=lake, run_id="run-2", now=ctx.now + dt.timedelta(hours=1))
    _promote(source, later, catalog, landing)

    current = lake.read("platinum", source.id)
    doc = current.filter(pl.col("doc_id") == "doc")
    assert doc.height == before.height, "every chunk re-certified"
    assert doc["acl"].to_list() == [principals] * doc.height
    assert not set(doc["platinum_id"]) & old_ids, "new rows; the old ACL's rows are gone from the current version"
    assert set(doc["run_id"]) == {"run-2"}
    untouched = current.filter(pl.col("doc_id") == "other")
    assert set(untouched["run_id"]) == {"run-1"}, "the other document was not re-promoted"
    versions = lake.read("gold", source.id).filter(pl.col("doc_id") == "doc").unique("silver_id")
    assert versions.height == 2 and versions["superseded_by"].null_count() == 1
    assert lake.read("silver", source.id).filter(pl.col("doc_id") == "doc").height == 2
    assert checks.conservation(lake, source.id).passed
    # lineage shows the ACL at every layer above bronze
    (node,) = trace(lake, [sorted(doc["platinum_id"])[0]], [source.id])
    assert [n.detail["acl"] for n in (node, node.upstream[0], node.upstream[0].upstream[0])] == [principals] * 3


def test_an_acl_edited_back_to_an_earlier_value_takes_effect(catalog: Catalog, ctx: RunContext, tmp_path: Path) -> None:
    source = _source(catalog, "security_runbooks", "optional")
    landing = tmp_path / "landing"
    for hour, acl in enumerate([{"groups": ["oncall"]}, {"groups": ["oncall", "employees"]}, {"groups": ["oncall"]}]):
        _land(landing, source, {"doc": acl})  # the page's front matter edited in place
        later = RunContext(lake=ctx.lake, run_id=f"run-{hour}", now=ctx.now + dt.timedelta(hours=hour))
        _promote(source, later, catalog, landing)
    assert ctx.lake.read("platinum", source.id)["acl"].unique().to_list() == [["group:oncall"]]


def test_lineage_still_traces_a_table_version_written_before_acls(
    catalog: Catalog, ctx: RunContext, tmp_path: Path
) -> None:
    from deltalake import write_deltalake

    source = _source(catalog, "hr_case_notes", "optional")
    _land(tmp_path / "landing", source, {"a": ["group:finance"]})
    bronze.promote_to_bronze(source, ctx, landing_root=tmp_path / "landing")
    silver.promote_to_silver(source, ctx, catalog=catalog)
    (node,) = trace(ctx.lake, [ctx.lake.read("silver", source.id)["silver_id"][0]], [source.id])
    assert node.detail["acl"] == ["group:finance"] and node.as_dict()["acl"] == ["group:finance"]
    legacy = ctx.lake.read("silver", source.id).drop("acl")  # the table as silver wrote it before ACLs
    uri = ctx.lake.uri("silver", source.id)
    write_deltalake(uri, legacy.to_arrow(), mode="overwrite", schema_mode="overwrite")
    (node,) = trace(ctx.lake, [legacy["silver_id"][0]], [source.id])
    assert "acl" not in node.detail and node.detail["doc_id"] == "a"
    assert [n.layer for n in node.leaves()] == ["bronze"]


# ----------------------------------------------------------------------------------------------------------------
# The sample corpus: its manifest says who may see what
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> dict[str, Any]:
    """The scale-1 sample's ACL-bearing sources, promoted to platinum (as_of: the ctx fixture's day)."""
    root = tmp_path_factory.mktemp("acl_sample")
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    manifest = sample.generate(root / "landing", scale=1, seed=7, as_of=now.date())
    ctx = RunContext(lake=Lake(str(root / "lake")), run_id="sample", now=now)
    for source_id in ACL_SOURCES:
        _promote(catalog.source(source_id), ctx, catalog, root / "landing")
    return {"manifest": manifest, "lake": ctx.lake, "now": now}


ACL_SOURCES = ("hr_case_notes", "security_runbooks", "support_tickets")


@pytest.mark.parametrize("source_id", ACL_SOURCES)
def test_the_sample_lands_the_acls_and_quarantines_its_manifest_lists(
    sample_lake: dict[str, Any], catalog: Catalog, source_id: str
) -> None:
    manifest, lake = sample_lake["manifest"], sample_lake["lake"]
    source = catalog.source(source_id)
    assert source.document_acl == ("required" if source_id == "hr_case_notes" else "optional")
    expected = {d["id"]: d["acl"] for d in manifest["documents"] if d["source_id"] == source_id}
    summary = manifest["acl_summary"][source_id]
    assert summary["documents"] == len(expected)

    silver_docs = lake.read("silver", source_id).unique("doc_id")
    assert dict(silver_docs.select("doc_id", "acl").iter_rows()) == expected, "every document, with its ACL"
    served = lake.read("platinum", source_id)
    for doc_id, acl in served.select("doc_id", "acl").iter_rows():
        assert acl == expected[doc_id], doc_id
    with_acl = served.filter(pl.col("acl").is_not_null())["doc_id"].n_unique() / served["doc_id"].n_unique()
    share = summary["with_acl"] / summary["documents"]
    assert abs(with_acl - share) < 0.1, "platinum serves the manifest's share of restricted documents"

    hostile = {(m["uri"], m["expected_status"]) for m in manifest["malformed"] if "acl_variant" in m}
    hostile = {h for h in hostile if h[0].startswith(f"{source_id}/")}
    quarantine = lake.read("quarantine", source_id)
    acl_rejects = quarantine.filter(pl.col("reason").is_in(["missing_acl", "invalid_acl"]))
    assert set(acl_rejects.select("uri", "reason").iter_rows()) == hostile
    assert acl_rejects.height == len(
        [m for m in manifest["malformed"] if m.get("acl_variant") and m["source_id"] == source_id]
    )
    expected_reasons = {m["expected_status"] for m in manifest["malformed"] if m["source_id"] == source_id}
    assert set(quarantine["reason"]) == expected_reasons, "nothing else is quarantined"
    assert checks.conservation(lake, source_id).passed
    assert checks.document_acls(lake, source).passed


def test_the_sample_acl_shares(sample_lake: dict[str, Any]) -> None:
    summary = sample_lake["manifest"]["acl_summary"]
    hr = summary["hr_case_notes"]
    assert hr["with_acl"] == hr["documents"]
    north, south = hr["principals"]["group:hr-partners-north"], hr["principals"]["group:hr-partners-south"]
    assert north + south == hr["documents"] and 0.4 <= north / hr["documents"] <= 0.6, "each case has one region"
    assert 0.12 <= summary["support_tickets"]["with_acl"] / summary["support_tickets"]["documents"] <= 0.18
    assert 0.25 <= summary["security_runbooks"]["with_acl"] / summary["security_runbooks"]["documents"] <= 0.4
