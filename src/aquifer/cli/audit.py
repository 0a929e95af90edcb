"""``aquifer audit``: evidence from the decision log."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated

import typer

from aquifer.settings import get_settings

if TYPE_CHECKING:
    pass

from aquifer.cli._common import app, console, err, fail

audit_app = typer.Typer(help="Evidence from the decision log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _parse_since(value: str) -> dt.datetime:
    import re

    now = dt.datetime.now(dt.UTC)
    match = re.fullmatch(r"(\d+)([dhm])", value)
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match[2]]
        return now - dt.timedelta(**{unit: int(match[1])})
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--since {value!r}: give a duration (30d, 12h, 15m) or an ISO date/time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@audit_app.command("prove")
def audit_prove(
    classification: Annotated[str, typer.Option(help="public, internal, confidential or restricted.")],
    locality: Annotated[str, typer.Option(help="local, sovereign_cloud or external.")],
    since: Annotated[str, typer.Option(help="Window start: a duration back from now (30d, 12h) or a date.")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Did any CLASSIFICATION resource reach a LOCALITY model? Exit 0: proven none; 1: found; 2: the log has a gap."""
    from aquifer.audit import prove
    from aquifer.catalog import Classification, Locality
    from aquifer.lake import Lake

    if classification not in {c.value for c in Classification}:
        raise fail(f"--classification must be one of {', '.join(c.value for c in Classification)}")
    if locality not in {loc.value for loc in Locality}:
        raise fail(f"--locality must be one of {', '.join(loc.value for loc in Locality)}")
    settings = get_settings()
    proof = prove(
        Lake.from_settings(settings),
        settings.decisions_dir,
        classification=classification,
        locality=locality,
        since=_parse_since(since),
    )
    doc = proof.as_dict()
    if as_json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        console.print(doc["question"], highlight=False)
        cov = doc["covered"]
        if proof.decisions_scanned:
            console.print(
                f"  decisions scanned: {proof.decisions_scanned} (seq {cov['first_seq']}..{cov['last_seq']}, "
                f"{cov['first_record']} .. {cov['last_record']})",
                highlight=False,
            )
        else:
            console.print("  decisions scanned: 0 (no decision was made in the window)")
        console.print(f"  resources decided: {proof.resources_scanned}, served: {proof.resources_served}")
        for rev in proof.revisions:
            console.print(
                f"  policy revision {rev['revision']}: {rev['decisions']} decisions, {rev['first']} .. {rev['last']}",
                highlight=False,
            )
        for gap in proof.gaps:
            err.print(f"[bold red]GAP[/] {gap}")
        for v in proof.violations[:50]:
            console.print(
                f"  [red]served[/] {v['resource']} ({v['dataset']}) to {v['agent']} via {v['model']} "
                f"at {v['time']}, decision {v['decision_id']}",
                highlight=False,
            )
        verdict = {
            "none": "[bold green]PROVEN[/]: none reached such a model in the window",
            "found": f"[bold red]FOUND[/]: {len(proof.violations)} served",
            "unproven": "[bold red]UNPROVEN[/]: the decision log has a gap, so nothing can be proven",
        }
        console.print(verdict[proof.verdict])
    raise typer.Exit({"none": 0, "found": 1, "unproven": 2}[proof.verdict])
