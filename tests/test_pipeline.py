"""The whole graph, materialized by real Dagster runs over the real sample corpus into a tmp_path lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from typer.testing import CliRunner

from aquifer import sample
from aquifer.catalog import Catalog
from aquifer.cli import app
from aquifer.lake import Lake
from aquifer.lineage import trace, verify
from pipelines.runs import RunSummary, materialize

pytestmark = pytest.mark.slow
LAYERS = ("bronze", "silver", "gold", "platinum")


def _versions(lake: Lake, catalog: Catalog) -> dict[str, int | None]:
    return {f"{layer}/{s.id}": lake.version(layer, s.id) for layer in (*LAYERS, "quarantine") for s in catalog}


def _all(lake: Lake, layer: str, catalog: Catalog) -> pl.DataFrame:
    return pl.concat([lake.read(layer, s.id) for s in catalog if lake.exists(layer, s.id)], how="vertical_relaxed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("data")
    manifest = sample.generate(data / "landing", scale=1, seed=7)
    return {"data": data, "manifest": manifest}


@pytest.fixture(scope="module")
def first_run(corpus: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AQUIFER_DATA_DIR", str(corpus["data"]))
    mp.setenv("DAGSTER_HOME", str(corpus["data"] / "dagster"))
    from aquifer.settings import get_settings

    get_settings.cache_clear()
    instance = dg.DagsterInstance.ephemeral()
    summary = materialize(instance=instance)
    lake = Lake(str(corpus["data"] / "lake"))
    yield {**corpus, "summary": summary, "lake": lake, "instance": instance}
    mp.undo()
    get_settings.cache_clear()


def test_first_run_materializes_every_layer_and_passes_every_check(first_run: dict[str, Any], catalog: Catalog) -> None:
    summary: RunSummary = first_run["summary"]
    assert summary.checks_failed == []
    assert summary.errors == []
    assert summary.success
    expected = [f"{layer}/{s.id}" for layer in LAYERS for s in catalog] + ["audit/decisions", "index/chunks"]
    assert sorted(summary.materialized) == sorted(expected)
    lake: Lake = first_run["lake"]
    for source in catalog:
        assert lake.read("platinum", source.id).height > 0, source.id


def test_conservation_is_exact(first_run: dict[str, Any], catalog: Catalog) -> None:
    lake: Lake = first_run["lake"]
    manifest = first_run["manifest"]
    for source in catalog:
        bronze = lake.read("bronze", source.id).height
        assert bronze == manifest["counts"][source.id]["records"], source.id
        docs = lake.read("silver", source.id)
        quarantined = lake.read("quarantine", source.id).height
        assert bronze == docs.height + quarantined + int(docs["upstream_ids"].list.len().sum()) - docs.height


def test_every_malformed_file_is_quarantined_with_its_reason(first_run: dict[str, Any], catalog: Catalog) -> None:
    lake: Lake = first_run["lake"]
    quarantine = _all(lake, "quarantine", catalog)
    found = {(r["uri"], r["reason"]) for r in quarantine.iter_rows(named=True)}
    expected = {(m["uri"], m["expected_status"]) for m in first_run["manifest"]["malformed"]}
    assert expected <= found
    assert quarantine["message"].str.len_chars().min() > 10  # a human-readable reason, not just a code


@pytest.mark.parametrize("planted", ["instruction_like", "superseded", "near_duplicates", "stale"])
def test_planted_problems_never_reach_platinum(first_run: dict[str, Any], catalog: Catalog, planted: str) -> None:
    lake: Lake = first_run["lake"]
    entries = first_run["manifest"][planted]
    assert entries, f"the sample corpus plants {planted}"
    served = _all(lake, "platinum", catalog)
    gold = _all(lake, "gold", catalog)
    for entry in entries:
        in_gold = gold.filter((pl.col("dataset") == entry["source_id"]) & (pl.col("doc_id") == entry["id"]))
        assert in_gold.height > 0, f"{entry} should still be in gold, flagged"
        if planted == "superseded":
            # the newest version stays certified; only the older one is held back
            old = in_gold.filter(pl.col("superseded_by").is_not_null())
            assert old.height > 0, entry
            assert old["chunk_id"].is_in(served["chunk_id"].implode()).sum() == 0
            continue
        leaked = in_gold["chunk_id"].is_in(served["chunk_id"].implode())
        if planted == "near_duplicates":
            pair = gold.filter(
                (pl.col("dataset") == entry["source_id"]) & pl.col("doc_id").is_in([entry["id"], entry["of"]])
            )
            assert pair["near_duplicate_of"].drop_nulls().len() > 0, f"{entry} not flagged"
            served_docs = pair.filter(pl.col("chunk_id").is_in(served["chunk_id"].implode()))["doc_id"].unique()
            assert served_docs.len() <= 1, f"both copies of {entry} reached platinum"
        elif planted == "instruction_like":
            untrusted = in_gold.filter(pl.col("untrusted"))
            assert untrusted.height > 0, f"{entry} not flagged untrusted"
            assert untrusted["chunk_id"].is_in(served["chunk_id"].implode()).sum() == 0
            assert untrusted["untrusted_pattern"].null_count() == 0
        else:
            assert leaked.sum() == 0, f"stale {entry} reached platinum"


def test_every_row_carries_lineage(first_run: dict[str, Any], catalog: Catalog) -> None:
    lake: Lake = first_run["lake"]
    run_id = first_run["summary"].run_id
    for layer in ("silver", "gold", "platinum"):
        rows = _all(lake, layer, catalog)
        assert rows["upstream_ids"].list.len().min() >= 1
        assert rows["upstream_version"].null_count() == 0
        assert set(rows["run_id"]) == {run_id}
        assert rows["code_version"].str.starts_with(layer).all()
    history = lake.history("platinum", "hr_case_notes")
    assert history[0]["aquifer.run_id"] == run_id
    assert json.loads(history[0]["aquifer.upstream_versions"]) == {"gold/hr_case_notes": 0}


def test_every_platinum_row_traces_and_verifies(first_run: dict[str, Any], catalog: Catalog) -> None:
    lake: Lake = first_run["lake"]
    ids = _all(lake, "platinum", catalog)["platinum_id"].to_list()
    nodes = trace(lake, ids, sorted(catalog.sources))
    assert [n.layer for n in nodes[0].leaves()] == ["bronze"]
    assert [n.layer for n in (nodes[0], nodes[0].upstream[0], nodes[0].upstream[0].upstream[0])] == [
        "platinum",
        "gold",
        "silver",
    ]
    assert verify(nodes, first_run["data"] / "landing") == []


def test_pii_detected_in_confidential_sources(first_run: dict[str, Any]) -> None:
    lake: Lake = first_run["lake"]
    notes = lake.read("silver", "hr_case_notes")
    found = set(notes["pii_types"].explode().drop_nulls())
    assert {"person", "email", "phone", "national_id", "address"} <= found
    assert (notes["classification"] == "confidential").all()
    public = lake.read("silver", "product_docs")
    assert public["pii_types"].list.len().sum() == 0


def test_second_run_writes_nothing(first_run: dict[str, Any], catalog: Catalog) -> None:
    lake: Lake = first_run["lake"]
    before = _versions(lake, catalog)
    summary = materialize(instance=first_run["instance"])
    assert summary.success and not summary.checks_failed
    assert _versions(lake, catalog) == before


def test_increment_processes_only_new_files(first_run: dict[str, Any], catalog: Catalog) -> None:
    lake: Lake = first_run["lake"]
    before = {s.id: lake.read("bronze", s.id).height for s in catalog}
    added = sample.generate_increment(first_run["data"] / "landing", fraction=0.02, seed=11, label="t1")
    summary = materialize(instance=first_run["instance"])
    assert summary.success and not summary.checks_failed
    new_bronze = _all(lake, "bronze", catalog).filter(pl.col("run_id") == summary.run_id)
    assert new_bronze.height == added["records"]
    assert set(new_bronze["uri"]) <= set(added["files"])
    assert sum(lake.read("bronze", s.id).height for s in catalog) == sum(before.values()) + added["records"]
    new_silver = _all(lake, "silver", catalog).filter(pl.col("run_id") == summary.run_id)
    assert 0 < new_silver.height <= added["records"]


def test_a_malformed_file_dropped_in_is_quarantined_while_the_run_succeeds(
    first_run: dict[str, Any], catalog: Catalog
) -> None:
    lake: Lake = first_run["lake"]
    landing: Path = first_run["data"] / "landing"
    (landing / "finance_reports" / "dropped-in.jsonl").write_bytes(b'{"report_id": "fin-x", "title": "cut\n\xff\xfe')
    summary = materialize(instance=first_run["instance"])
    assert summary.success and not summary.checks_failed
    quarantine = lake.read("quarantine", "finance_reports").filter(pl.col("uri") == "finance_reports/dropped-in.jsonl")
    assert sorted(quarantine["reason"]) == ["invalid_json", "invalid_utf8"]


def test_a_json_line_nested_5000_deep_is_quarantined_while_the_rest_of_its_source_promotes(
    first_run: dict[str, Any], catalog: Catalog
) -> None:
    lake: Lake = first_run["lake"]
    landing: Path = first_run["data"] / "landing"
    good = json.dumps(
        {
            "report_id": "fin-deep-ok",
            "title": "Q3 travel spend",
            "published_at": "2026-11-28T09:00:00Z",
            "commentary": "Travel spend fell by four percent in the third quarter of 2026.",
        }
    )
    deep = '{"report_id": "fin-deep", "commentary": ' + "[" * 5000 + '"x"' + "]" * 5000 + "}"
    (landing / "finance_reports" / "deep.jsonl").write_text(f"{good}\n{deep}\n")
    summary = materialize(instance=first_run["instance"])
    assert summary.success and not summary.checks_failed
    quarantine = lake.read("quarantine", "finance_reports").filter(pl.col("uri") == "finance_reports/deep.jsonl")
    assert quarantine["reason"].to_list() == ["nesting_too_deep"]
    silver = lake.read("silver", "finance_reports").filter(pl.col("doc_id") == "fin-deep-ok")
    assert silver.height == 1, "the well-formed record of the same file promoted"


def test_cli_status_and_lineage(first_run: dict[str, Any], catalog: Catalog) -> None:
    runner = CliRunner()
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    rows = json.loads(status.output)
    assert {(r["layer"], r["dataset"]) for r in rows} >= {(layer, s.id) for layer in LAYERS for s in catalog}
    quarantine = next(r for r in rows if r["layer"] == "quarantine" and r["dataset"] == "hr_case_notes")
    assert sum(quarantine["quarantined_by_reason"].values()) == quarantine["rows"] > 0

    lake: Lake = first_run["lake"]
    platinum_id = lake.read("platinum", "support_tickets")["platinum_id"][0]
    result = runner.invoke(app, ["lineage", platinum_id, "--json", "--verify"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["verified"] is True
    hop = payload["lineage"]
    for layer in LAYERS[::-1]:
        assert hop["layer"] == layer
        assert isinstance(hop["delta_version"], int)
        hop = hop["upstream"][0] if hop["upstream"] else hop
    assert hop["uri"].startswith("support_tickets/") and len(hop["file_sha256"]) == 64

    everything = runner.invoke(app, ["lineage", "--all-platinum", "--verify"])
    assert everything.exit_code == 0, everything.output
    assert "verified" in everything.output

    unknown = runner.invoke(app, ["lineage", "plt_doesnotexist"])
    assert unknown.exit_code == 1 and "not found" in unknown.output


def test_policy_explain_on_real_chunks(first_run: dict[str, Any], catalog: Catalog) -> None:
    runner = CliRunner()
    lake: Lake = first_run["lake"]
    case = lake.read("platinum", "hr_case_notes").filter(pl.col("pii_types").list.len() > 0).row(0, named=True)
    base = ["policy", "explain", "--purpose", "hr_casework", "--model", "local_smollm2", "--chunk", case["chunk_id"]]
    # every case note's ACL names the HR leads (the sample's manifest), so an HR lead may read this one
    hr_lead = ["--user", "hana.kim", "--group", "hr-leads"]
    alone = runner.invoke(app, [*base, "--agent", "hr_case_assistant"])
    assert "user_token_required" in alone.output, alone.output
    hr = runner.invoke(app, [*base, "--agent", "hr_case_assistant", *hr_lead, "--json"])
    assert hr.exit_code == 0, hr.output
    decision = json.loads(hr.output)["decision"]
    assert decision["allow"] is True and decision["obligations"]["redact"] == [], "a pii_reader for hr_casework"
    support = runner.invoke(app, [*base, "--agent", "support_assistant"])
    assert support.exit_code == 0, support.output
    assert "DENY" in support.output
    assert "purpose_not_allowed: agent support_assistant may act only for customer_support" in support.output
    assert "clearance_below_classification: agent support_assistant is cleared for internal data" in support.output
    ticket = lake.read("platinum", "support_tickets").filter(pl.col("pii_types").list.len() > 0).row(0, named=True)
    support_args = ["--agent", "support_assistant", "--purpose", "customer_support", "--model", "local_smollm2"]
    redacted = runner.invoke(app, ["policy", "explain", *support_args, "--chunk", ticket["platinum_id"]])
    assert "ALLOW" in redacted.output and "redacted before serving" in redacted.output
    untrusted = next(
        row
        for s in catalog
        for row in lake.read("gold", s.id).filter(pl.col("untrusted")).head(1).iter_rows(named=True)
    )
    finance = runner.invoke(
        app,
        [
            "policy",
            "explain",
            "--agent",
            "finance_analyst",
            "--purpose",
            "financial_analysis",
            "--model",
            "local_smollm2",
            "--chunk",
            untrusted["chunk_id"],
            "--user",
            "erin.walsh",
            "--group",
            "finance",
            "--json",
        ],
    )
    doc = json.loads(finance.output)
    assert doc["resource"]["layer"] == "gold" and "untrusted_content" in doc["decision"]["reasons"]
    missing = runner.invoke(app, [*base, "--agent", "hr_case_assistant", "--chunk", "gld_nope"])
    assert missing.exit_code == 1 and "in no platinum or gold table" in missing.output


def test_audit_asset_compacts_the_decision_log(first_run: dict[str, Any]) -> None:
    from aquifer.audit import DecisionLog, read_records

    log = DecisionLog(first_run["data"] / "decisions")
    explained = [r for r in read_records(log.directory) if r["kind"] == "explain"]
    assert len(explained) >= 4, "policy explain logs each decision it makes (previous test)"
    assert {r["agent"] for r in explained} >= {"hr_case_assistant", "support_assistant", "finance_analyst"}
    for i in range(5):
        log.append(
            {
                "kind": "test",
                "agent": "support_assistant",
                "purpose": "customer_support",
                "model": "local_smollm2",
                "locality": "local",
                "revision": "r",
                "request_allow": True,
                "request_reasons": [],
                "resources": [],
                "alerts": [],
                "n": i,
            }
        )
    total = len(list(read_records(log.directory)))
    summary = materialize(["audit/decisions"], instance=first_run["instance"])
    assert summary.success and summary.checks_failed == []
    lake: Lake = first_run["lake"]
    assert sorted(lake.read("audit", "decisions")["seq"].to_list()) == list(range(1, total + 1))
    again = materialize(["audit/decisions"], instance=first_run["instance"])
    assert again.success
    assert lake.read("audit", "decisions").height == total
    proof = CliRunner().invoke(
        app, ["audit", "prove", "--classification", "confidential", "--locality", "local", "--since", "1d", "--json"]
    )
    assert proof.exit_code == 0, "an explained chunk was decided, not served: no violation"
    doc = json.loads(proof.output)
    assert doc["decisions_scanned"] == total and doc["resources_served"] == 0


def test_verify_fails_when_a_landing_file_changes(first_run: dict[str, Any]) -> None:
    lake: Lake = first_run["lake"]
    row = lake.read("platinum", "hr_handbook").row(0, named=True)
    (node,) = trace(lake, [row["platinum_id"]], ["hr_handbook"])
    leaf = node.leaves()[0]
    path = first_run["data"] / "landing" / leaf.detail["uri"]
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\ntampered\n")
        problems = verify([node], first_run["data"] / "landing")
        assert problems and "the file changed" in problems[0]
        result = CliRunner().invoke(app, ["lineage", row["platinum_id"], "--verify"])
        assert result.exit_code == 1
        path.unlink()
        assert "missing" in verify([node], first_run["data"] / "landing")[0]
    finally:
        path.write_bytes(original)
