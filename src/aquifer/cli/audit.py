"""``aquifer audit``: evidence from the decision log."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

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
    classification: Annotated[str | None, typer.Option(help="public, internal, confidential or restricted.")] = None,
    locality: Annotated[str | None, typer.Option(help="local, sovereign_cloud or external.")] = None,
    user: Annotated[
        str | None, typer.Option(help="A user as records name them: <issuer id>:<subject> (catalog/identity.yaml).")
    ] = None,
    document: Annotated[
        str | None, typer.Option(help="A source document: <dataset>/<doc id> (the record's id field).")
    ] = None,
    since: Annotated[str, typer.Option(help="Window start: a duration back from now (30d, 12h) or a date.")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Did anything matching the options reach an agent: any CLASSIFICATION resource a LOCALITY model, USER a chunk
    of DOCUMENT, or any mix? Exit 0: proven none; 1: found; 2: the log has a gap."""
    from aquifer.audit import prove
    from aquifer.catalog import Classification, Locality
    from aquifer.lake import Lake

    if classification is not None and classification not in {c.value for c in Classification}:
        raise fail(f"--classification must be one of {', '.join(c.value for c in Classification)}")
    if locality is not None and locality not in {loc.value for loc in Locality}:
        raise fail(f"--locality must be one of {', '.join(loc.value for loc in Locality)}")
    if user is not None and ":" not in user:
        raise fail(f"--user: {user!r} is not <issuer id>:<subject> (e.g. tidewater_dev_idp:amira.haddad)")
    if document is not None and "/" not in document:
        raise fail(f"--document: {document!r} is not <dataset>/<doc id> (e.g. hr_case_notes/case-0001)")
    if not any((classification, locality, user, document)):
        raise fail("ask about something: --classification, --locality, --user or --document (or several)")
    settings = get_settings()
    proof = prove(
        Lake.from_settings(settings),
        settings.decisions_dir,
        classification=classification,
        locality=locality,
        user=user,
        document=document,
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
                f"  [red]served[/] {v['resource']} ({v['dataset']}/{v['doc_id']}) to {v['agent']}"
                + (f" for {escape(v['user'])}" if v.get("user") else "")
                + f" via {v['model']} at {v['time']}, decision {v['decision_id']}",
                highlight=False,
            )
        verdict = {
            "none": "[bold green]PROVEN[/]: nothing of the kind was served in the window",
            "found": f"[bold red]FOUND[/]: {len(proof.violations)} served",
            "unproven": "[bold red]UNPROVEN[/]: the decision log has a gap, so nothing can be proven",
        }
        console.print(verdict[proof.verdict])
    raise typer.Exit({"none": 0, "found": 1, "unproven": 2}[proof.verdict])


@app.command("ship-decisions")
def ship_decisions(
    once: Annotated[
        bool, typer.Option("--once", help="Ship what the log holds now, then exit with a summary.")
    ] = False,
    attempts: Annotated[
        int, typer.Option(min=1, help="With --once: give up (exit 3) after this many failed exports in a row.")
    ] = 5,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Ship the decision log to an OpenTelemetry collector or SIEM: each record an OTLP/HTTP log record, at least
    once, in seq order, resuming from its cursor. The endpoint is OTEL_EXPORTER_OTLP_LOGS_ENDPOINT (or
    OTEL_EXPORTER_OTLP_ENDPOINT); without --once it follows the log until SIGTERM or Ctrl-C (docs/decision-export.md).
    """
    import logging
    import signal
    import sys
    import threading

    from pydantic import ValidationError

    from aquifer.export.decisions import ExportConfigError, Shipper

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise fail(f"--log-level {log_level!r}: give debug, info, warning or error")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
        shipper = Shipper.from_settings(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "AQUIFER_" + "_".join(str(p) for p in first["loc"]).upper()
        raise fail(f"{where}: {first['msg'].removeprefix('Value error, ')}", 2) from None
    except ExportConfigError as exc:
        raise fail(str(exc), 2) from None
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    logging.getLogger("aquifer.export.decisions").info(
        "shipping %s to %s%s", settings.decisions_dir, shipper.config.endpoint, "" if once else " (following)"
    )
    try:
        summary = shipper.run(follow=not once, stop=stop, attempts=attempts if once else None)
    finally:
        shipper.close()
    err.print(summary.line(), highlight=False, soft_wrap=True)
    raise typer.Exit(summary.exit_code)
