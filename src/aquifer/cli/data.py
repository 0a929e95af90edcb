"""Commands over the lake: ``aquifer sample``, ``materialize``, ``status``, ``lineage``."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aquifer.settings import get_settings

if TYPE_CHECKING:
    pass

from aquifer.cli._common import app, console, err, fail


@app.command()
def sample(
    scale: Annotated[int, typer.Option(min=1, help="Multiplier: 1 gives ~1,000 documents, 1000 ~1,000,000.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed, scale and date give identical files.")] = 7,
    as_of: Annotated[
        str | None, typer.Option(help="Date the corpus is generated for (YYYY-MM-DD; default today).")
    ] = None,
    increment: Annotated[
        float | None,
        typer.Option(help="Add new files holding this fraction of the current records (e.g. 0.01)."),
    ] = None,
    label: Annotated[str | None, typer.Option(help="Folder name for an increment (default: the next inc<N>).")] = None,
) -> None:
    """Generate the sample landing zone of the fictional company Tidewater."""
    from aquifer import sample as generator

    landing = get_settings().landing_dir
    try:
        as_of_date = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise fail(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    try:
        if increment is not None:
            if not 0 < increment <= 1:
                raise fail("--increment must be in (0, 1]")
            taken = {p.name for p in landing.glob("*/inc*") if p.is_dir()}
            label = label or next(f"inc{n}" for n in itertools.count(1) if f"inc{n}" not in taken)
            added = generator.generate_increment(landing, fraction=increment, seed=seed, label=label, as_of=as_of_date)
            console.print(f"added {added['records']} records in {len(added['files'])} new files under {landing}")
            return
        manifest = generator.generate(landing, scale=scale, seed=seed, as_of=as_of_date)
    except (FileExistsError, ValueError) as exc:
        raise fail(str(exc)) from None
    records = sum(c["records"] for c in manifest["counts"].values())
    console.print(f"wrote {records} records from {len(manifest['counts'])} sources to {landing}")


@app.command()
def materialize(
    select: Annotated[
        list[str] | None,
        typer.Option("--select", "-s", help="A layer (silver), an asset (gold/hr_case_notes) or *."),
    ] = None,
    executor: Annotated[
        str, typer.Option(help="in_process (fast) or multiprocess (one process per step).")
    ] = "in_process",
) -> None:
    """Run the pipelines: promote new landing data through bronze, silver, gold and platinum."""
    from pipelines.runs import materialize as run

    if executor not in ("in_process", "multiprocess"):
        raise fail(f"--executor {executor!r}: choose in_process or multiprocess")
    try:
        summary = run(select, executor=executor)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"run {summary.run_id}: {len(summary.materialized)} assets materialized, {summary.checks_passed} checks passed"
    )
    for failed in summary.checks_failed:
        err.print(f"[red]check failed[/] {failed}")
    for skipped in summary.skipped:
        err.print(f"[yellow]skipped[/] {skipped} (an upstream blocking check failed)")
    for error in summary.errors:
        err.print(f"[red]step failed[/] {error}")
    if not summary.success or summary.checks_failed:
        raise typer.Exit(1)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every table of every source: layer, dataset, path, rows, Delta version, last run, quarantine."""
    from aquifer.catalog import load_catalog
    from aquifer.lake import Lake
    from aquifer.status import table_status

    settings = get_settings()
    rows = table_status(Lake.from_settings(settings), load_catalog(settings.catalog_dir))
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table("dataset", "layer", "rows", "version", "last run", "last commit (UTC)", "quarantined by reason")
    for row in sorted(rows, key=lambda r: r["dataset"]):
        reasons = ", ".join(f"{k}={v}" for k, v in row.get("quarantined_by_reason", {}).items())
        exists = row["exists"]
        table.add_row(
            row["dataset"],
            row["layer"],
            str(row["rows"]) if exists else "-",
            str(row["delta_version"]) if exists else "-",
            (row["last_run_id"] or "-")[:8],
            (row["last_commit_at"] or "-")[:19],
            reasons,
        )
    console.print(f"lake: {settings.lake_root}  (tables at <lake>/<layer>/<dataset>)")
    console.print(table)


def _print_tree(node: dict[str, object], indent: int = 0) -> None:
    pad = "  " * indent
    head = (
        f"{pad}{node['layer']:<8} {node['id']}  {node['table']}@v{node['delta_version']}  run {str(node['run_id'])[:8]}"
    )
    console.print(head, highlight=False)
    for key in ("uri", "file_sha256", "doc_id", "title", "classification", "pii_types", "acl", "parse_status"):
        if node.get(key) not in (None, []):
            console.print(f"{pad}         {key}: {node[key]}", highlight=False)
    for upstream in node["upstream"]:  # type: ignore[attr-defined]
        _print_tree(upstream, indent + 1)


@app.command()
def lineage(
    record_id: Annotated[str | None, typer.Argument(help="A platinum, gold, silver or bronze id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    verify: Annotated[
        bool, typer.Option(help="Re-hash the landing files; exit 1 on a mismatch or missing file.")
    ] = False,
    all_platinum: Annotated[bool, typer.Option("--all-platinum", help="Trace every platinum row.")] = False,
) -> None:
    """Walk an id back through every layer to the landing file it came from."""
    from aquifer.catalog import load_catalog
    from aquifer.lake import Lake
    from aquifer.lineage import LineageError, trace
    from aquifer.lineage import verify as verify_nodes
    from aquifer.medallion.layers import Layer

    settings = get_settings()
    lake = Lake.from_settings(settings)
    datasets = sorted(load_catalog(settings.catalog_dir).sources)
    if all_platinum == (record_id is not None):
        raise fail("give one id, or --all-platinum")
    ids = (
        [record_id]
        if record_id
        else [
            i
            for d in datasets
            if lake.exists(Layer.PLATINUM, d)
            for i in lake.read(Layer.PLATINUM, d, columns=[Layer.PLATINUM.key])[Layer.PLATINUM.key]
        ]
    )
    try:
        nodes = trace(lake, ids, datasets)
    except LineageError as exc:
        raise fail(str(exc)) from None
    problems = verify_nodes(nodes, settings.landing_dir) if verify else []
    if as_json:
        payload = [n.as_dict() for n in nodes]
        print(
            json.dumps(
                {
                    "lineage": payload[0] if record_id else payload,
                    "verified": verify and not problems,
                    "problems": problems,
                },
                indent=2,
                default=str,
            )
        )
    elif record_id:
        _print_tree(nodes[0].as_dict())
    else:
        console.print(f"traced {len(nodes)} platinum rows to {sum(len(n.leaves()) for n in nodes)} bronze records")
    if verify:
        for problem in problems:
            err.print(f"[red]verify failed[/] {problem}")
        if problems:
            raise typer.Exit(1)
        if not as_json:
            console.print("[green]verified[/]: every landing file matches the sha256 recorded at ingestion")
