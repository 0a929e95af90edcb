from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aquifer.cli import app

runner = CliRunner()


def test_sample_writes_once_then_refuses_and_adds_increments(data_dir: Path) -> None:
    first = runner.invoke(app, ["sample", "--as-of", "2026-11-27"])
    assert first.exit_code == 0, first.output
    manifest = json.loads((data_dir / "sample_manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-27"
    again = runner.invoke(app, ["sample"])
    assert again.exit_code == 1 and "not empty" in again.output
    for expected in ("inc1", "inc2"):
        added = runner.invoke(app, ["sample", "--increment", "0.01", "--seed", expected[-1]])
        assert added.exit_code == 0, added.output
        assert any((data_dir / "landing").glob(f"*/{expected}"))


def test_bad_parameters_are_named(data_dir: Path) -> None:
    bad_date = runner.invoke(app, ["sample", "--as-of", "tomorrow"])
    assert bad_date.exit_code == 1 and "--as-of 'tomorrow'" in bad_date.output
    bad_fraction = runner.invoke(app, ["sample", "--increment", "2"])
    assert bad_fraction.exit_code == 1 and "--increment" in bad_fraction.output
    bad_select = runner.invoke(app, ["materialize", "--select", "diamond"])
    assert bad_select.exit_code == 1 and "--select 'diamond' matches no asset" in bad_select.output
    bad_executor = runner.invoke(app, ["materialize", "--executor", "threads"])
    assert bad_executor.exit_code == 1 and "--executor 'threads'" in bad_executor.output
    no_id = runner.invoke(app, ["lineage"])
    assert no_id.exit_code == 1 and "give one id" in no_id.output
    not_an_id = runner.invoke(app, ["lineage", "hello"])
    assert not_an_id.exit_code == 1 and "not an Aquifer id" in not_an_id.output


def test_status_on_an_empty_lake_lists_every_table_as_absent(data_dir: Path) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 7 * 5 and not any(r["exists"] for r in rows)
