"""The ``aquifer`` command line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from aquifer.settings import get_settings

if TYPE_CHECKING:
    from aquifer.catalog import Catalog
    from aquifer.policy import BatchDecision, PolicyEngine, Resource

app = typer.Typer(
    help="Aquifer: governed, traceable context for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(width=160) if not sys.stdout.isatty() else Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


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
        raise _fail(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    try:
        if increment is not None:
            if not 0 < increment <= 1:
                raise _fail("--increment must be in (0, 1]")
            taken = {p.name for p in landing.glob("*/inc*") if p.is_dir()}
            label = label or next(f"inc{n}" for n in itertools.count(1) if f"inc{n}" not in taken)
            added = generator.generate_increment(landing, fraction=increment, seed=seed, label=label, as_of=as_of_date)
            console.print(f"added {added['records']} records in {len(added['files'])} new files under {landing}")
            return
        manifest = generator.generate(landing, scale=scale, seed=seed, as_of=as_of_date)
    except (FileExistsError, ValueError) as exc:
        raise _fail(str(exc)) from None
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
        raise _fail(f"--executor {executor!r}: choose in_process or multiprocess")
    try:
        summary = run(select, executor=executor)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _fail(str(exc)) from None
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
    for key in ("uri", "file_sha256", "doc_id", "title", "classification", "pii_types", "parse_status"):
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

    settings = get_settings()
    lake = Lake.from_settings(settings)
    datasets = sorted(load_catalog(settings.catalog_dir).sources)
    if all_platinum == (record_id is not None):
        raise _fail("give one id, or --all-platinum")
    ids = (
        [record_id]
        if record_id
        else [
            i
            for d in datasets
            if lake.exists("platinum", d)
            for i in lake.read("platinum", d, columns=["platinum_id"])["platinum_id"]
        ]
    )
    try:
        nodes = trace(lake, ids, datasets)
    except LineageError as exc:
        raise _fail(str(exc)) from None
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the governed retrieval API (POST /v1/context; docs at /docs) with uvicorn."""
    import uvicorn

    from aquifer.service.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level=log_level)


@app.command("serve-model")
def serve_model(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port (catalog/models/local_smollm2.yaml).")] = 8080,
) -> None:
    """Serve the local model (SmolLM2-135M-Instruct on llama.cpp, OpenAI-compatible) in the foreground."""
    from aquifer.local_model import server_argv

    try:
        argv = server_argv(port=port)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    os.execv(argv[0], argv)


@app.command()
def up(
    ui_port: Annotated[int, typer.Option(help="Dagster UI port.")] = 3000,
    api_port: Annotated[int, typer.Option(help="Aquifer API port.")] = 8000,
    model_port: Annotated[int, typer.Option(help="Local model port (catalog/models/local_smollm2.yaml).")] = 8080,
    model: Annotated[bool, typer.Option(help="Also serve the local model (llama.cpp).")] = True,
) -> None:
    """Run the Dagster UI, the Aquifer API and the local model together (Ctrl-C stops all, leaving no process)."""
    import httpx

    from aquifer.local_model import SERVED_NAME, server_argv
    from aquifer.up import aquifer_services, run

    model_argv = None
    if model:
        try:
            model_argv = server_argv(port=model_port)
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from None
    data_dir = get_settings().data_dir
    services = aquifer_services(
        data_dir, ui_port=ui_port, api_port=api_port, model_port=model_port, model_argv=model_argv
    )

    def announce() -> None:
        from aquifer.credentials import CredentialStore, development_token

        console.print(f"\n[bold]Dagster UI[/]  http://127.0.0.1:{ui_port}")
        console.print(f"[bold]API docs[/]    http://127.0.0.1:{api_port}/docs")
        if model:
            console.print(f"[bold]Local model[/] http://127.0.0.1:{model_port}/v1 ({SERVED_NAME}, llama.cpp)")
        try:
            ready = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5).json()
            for component, problem in ready.get("problems", {}).items():
                console.print(f"[yellow]API not ready[/]: {component}: {escape(problem)}", highlight=False)
        except (httpx.HTTPError, ValueError):
            pass
        dev = [
            (c.agent, t)
            for c in CredentialStore(get_settings().credentials_file).load().values()
            if (t := development_token(c))
        ]
        if dev:
            console.print("demo agents' development-only tokens (refused when AQUIFER_ENVIRONMENT=production):")
            for agent, token in dev:
                console.print(f"  {agent:<22} {token}", highlight=False)
        aquifer = os.path.relpath(Path(sys.executable).parent / "aquifer")
        logged = [s.log for s in services if s.log]
        if logged:
            where = os.path.relpath(logged[0].parent)
            where = str(logged[0].parent.resolve()) if where.startswith("..") else where
            names = ", ".join(p.name for p in logged)
            console.print(f"logs: {names} in {where}/", highlight=False, soft_wrap=True)
        console.print(f'try: [bold]{aquifer} ask --agent support_assistant "How do refunds work?"[/]', highlight=False)
        console.print("Ctrl-C stops everything.\n")

    raise typer.Exit(run(services, on_ready=announce))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    agent: Annotated[str, typer.Option("--agent", "-a", help="Agent id (catalog/agents).")],
    purpose: Annotated[str | None, typer.Option(help="Default: the agent's first purpose.")] = None,
    model: Annotated[str | None, typer.Option(help="Registered model id. Default: the agent's default model.")] = None,
    url: Annotated[str, typer.Option(help="Aquifer's OpenAI-compatible base URL.")] = "http://127.0.0.1:8000/v1",
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Longest answer, in model tokens.")] = 256,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print the answer as it is generated.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="The answer and its aquifer member, as JSON.")] = False,
) -> None:
    """Ask AGENT's question through the governed gateway: the answer on the agent's model, its sources [n] with
    receipts, and what the policy withheld. The token is AQUIFER_TOKEN, or the demo agent's development token."""
    from aquifer.ask import AskError, show
    from aquifer.ask import ask as ask_gateway

    def echo(piece: str) -> None:
        console.print(piece, end="", markup=False, highlight=False, soft_wrap=True)

    stream = stream and not as_json
    try:
        answer = ask_gateway(
            question,
            agent=agent,
            base_url=url,
            purpose=purpose,
            model=model,
            max_tokens=max_tokens,
            on_text=echo if stream else None,
        )
    except AskError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps(dataclasses.asdict(answer), indent=2, ensure_ascii=False))
        return
    if stream:
        console.print()
    show(answer, console, text=not stream)


# -- policy -------------------------------------------------------------------------------------------------------

policy_app = typer.Typer(help="Write, test and question the Rego access policy.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _engine() -> PolicyEngine:
    from aquifer.policy import PolicyEngine

    settings = get_settings()
    return PolicyEngine.from_settings(settings.model_copy(update={"policy_reload_interval_s": 0.0}))


@policy_app.command("test")
def policy_test(
    run: Annotated[str | None, typer.Option("--run", "-r", help="Only tests whose data path matches a regex.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose/--quiet", "-v/-q", help="Print passes too.")] = True,
) -> None:
    """Run every Rego test under policies/ on the embedded engine (like `opa test -v`); exit 1 on a failure."""
    from aquifer.policy import PolicyEngineUnavailable
    from aquifer.policy.rego_tests import run as run_tests

    policy_dir = get_settings().policy_dir
    passed = failed = 0
    current_file = None
    try:
        for result in run_tests(policy_dir, pattern=run):
            if result.passed:
                passed += 1
            else:
                failed += 1
            if verbose or not result.passed:
                if result.test.file != current_file:
                    current_file = result.test.file
                    console.print(f"{policy_dir.name}/{current_file}:", highlight=False)
                status = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
                console.print(f"{result.test.ref}: {status} ({result.seconds * 1000:.1f}ms)", highlight=False)
                if result.error:
                    console.print(f"  {result.error}", highlight=False, markup=False)
    except PolicyEngineUnavailable as exc:
        raise _fail(str(exc), 2) from None
    console.print("-" * 80)
    total = passed + failed
    if total == 0:
        raise _fail(f"no Rego tests (test_* rules in *_test.rego) under {policy_dir}")
    if failed:
        console.print(f"[red]FAIL[/]: {failed}/{total}")
        raise typer.Exit(1)
    console.print(f"[green]PASS[/]: {passed}/{total}")


@policy_app.command("eval")
def policy_eval(
    input_file: Annotated[Path, typer.Option("--input", "-i", help="JSON (or YAML) input document.")],
    entrypoint: Annotated[
        str | None,
        typer.Option(help="request, decision or decisions (default: by the input: resources, resource, neither)."),
    ] = None,
) -> None:
    """Evaluate the policy for one input document and print the decision (with the policy revision)."""
    import yaml

    from aquifer.policy import PolicyEngineUnavailable
    from aquifer.policy.source import ENTRYPOINTS

    try:
        doc = yaml.safe_load(input_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"{input_file}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise _fail(f"{input_file}: not valid JSON or YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise _fail(f"{input_file}: the input must be an object with agent, purpose, model (and resource(s))")
    chosen = entrypoint or ("decisions" if "resources" in doc else "decision" if "resource" in doc else "request")
    if chosen not in ENTRYPOINTS:
        raise _fail(f"--entrypoint must be one of {', '.join(ENTRYPOINTS)}, got {chosen!r}")
    engine = _engine()
    try:
        result = engine.evaluate(chosen, doc)
    except PolicyEngineUnavailable as exc:
        raise _fail(f"policy_engine_unavailable: {exc}", 2) from None
    print(
        json.dumps(
            {
                "entrypoint": f"data.aquifer.context.{chosen}",
                "revision": engine.revision,
                "engine": engine.backend.name,
                "result": result,
            },
            indent=2,
        )
    )


@policy_app.command("explain")
def policy_explain(
    agent: Annotated[str, typer.Option(help="Agent id (catalog/agents).")],
    purpose: Annotated[str, typer.Option(help="The purpose the agent acts for.")],
    model: Annotated[str, typer.Option(help="Model id (catalog/models).")],
    chunk: Annotated[str | None, typer.Option(help="A chunk id or platinum id; without it, the request only.")] = None,
    action: Annotated[str, typer.Option(help="The action asked for (read_context, chat, read_lineage).")] = (
        "read_context"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Say whether the policy lets this agent see this chunk through this model, and which rules decided."""
    from aquifer.ids import is_identifier
    from aquifer.lake import Lake
    from aquifer.lineage import find_chunk
    from aquifer.policy import PolicyEngineUnavailable, RequestContext

    for option, value in (("--agent", agent), ("--purpose", purpose), ("--model", model), ("--action", action)):
        if not is_identifier(value):
            raise _fail(f"{option}: {value!r} is not an identifier (lower-case letters, digits and _, 2-63 long)")

    engine = _engine()
    try:
        catalog = engine.catalog
    except PolicyEngineUnavailable as exc:
        raise _fail(str(exc), 2) from None
    resources: list[Resource] = []
    row = None
    if chunk:
        found = find_chunk(Lake.from_settings(get_settings()), catalog, chunk)
        if found is None:
            raise _fail(f"chunk {chunk!r} is in no platinum or gold table (see `aquifer status`)")
        row, resource = found
        resources = [resource]
    batch = engine.decide(RequestContext(agent, purpose, model, action=action), resources)
    decision = batch.resources[0] if resources else batch.request
    _log_explain(batch, catalog, resources, row)
    if as_json:
        print(
            json.dumps(
                {
                    "revision": batch.revision,
                    "engine": engine.backend.name,
                    "request": {"action": action, "agent": agent, "purpose": purpose, "model": model},
                    "resource": resources[0].as_input() if resources else None,
                    "decision": decision.model_dump(),
                },
                indent=2,
            )
        )
        return
    locality = catalog.models[model].locality.value if model in catalog.models else "unregistered"
    console.print(f"agent [bold]{agent}[/], purpose [bold]{purpose}[/], model [bold]{model}[/] ({locality})")
    if row is not None:
        r = resources[0]
        console.print(
            f"chunk [bold]{row['chunk_id']}[/] of {r.dataset} ({r.layer}): {row.get('title')!r}, "
            f"{r.classification}, PII {', '.join(r.pii_types) or 'none'}" + (", untrusted" if r.untrusted else "")
        )
    if decision.allow:
        console.print("[bold green]ALLOW[/]")
        if decision.obligations.redact:
            console.print(f"  on condition that {', '.join(decision.obligations.redact)} are redacted before serving")
        elif resources and resources[0].pii_types:
            console.print(
                f"  with its PII ({', '.join(resources[0].pii_types)}) unredacted: the agent is a pii_reader "
                "acting for a purpose the dataset allows PII for"
            )
        if decision.obligations.label:
            console.print(f"  labelled {decision.obligations.label}")
    else:
        console.print("[bold red]DENY[/]")
        for code, text in zip(decision.reasons, decision.explanations, strict=False):
            console.print(f"  {code}: {escape(text)}", highlight=False)
    console.print(f"policy revision {batch.revision} ({engine.backend.name} engine)", style="dim")


def _log_explain(
    batch: BatchDecision, catalog: Catalog, resources: list[Resource], row: dict[str, object] | None
) -> None:
    """A reviewer's question is a decision too: logged (kind ``explain``, nothing served) like every other."""
    from aquifer.audit import DecisionLog, decision_record

    settings = get_settings()
    model = catalog.models.get(batch.context.model) if batch.context.model else None
    ids = [str(row.get("platinum_id") or row["chunk_id"])] if row else []
    lineage = [[str(row[k]) for k in ("chunk_id", "silver_id") if row.get(k)]] if row else []
    record = decision_record(
        batch,
        kind="explain",
        locality=model.locality.value if model else None,
        resources=resources,
        ids=ids,
        lineage=lineage,
    )
    DecisionLog(settings.decisions_dir, segment_bytes=settings.decision_log_segment_bytes).append(record)


# -- agents -------------------------------------------------------------------------------------------------------

agents_app = typer.Typer(help="Agent identities and their tokens.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


@agents_app.command("list")
def agents_list() -> None:
    """Registered agents, what they may do, and their tokens (key ids only)."""
    from aquifer.catalog import load_catalog
    from aquifer.credentials import CredentialStore

    settings = get_settings()
    catalog = load_catalog(settings.catalog_dir)
    tokens = CredentialStore(settings.credentials_file).load().values()
    table = Table("agent", "roles", "clearance", "purposes", "models", "tokens")
    for a in catalog.agents.values():
        keys = [t.key_id + (" (dev)" if t.development_only else "") for t in tokens if t.agent == a.id]
        table.add_row(
            a.id, ", ".join(a.roles), a.clearance.value, ", ".join(a.purposes), ", ".join(a.models), ", ".join(keys)
        )
    console.print(table)


@agents_app.command("issue-token")
def agents_issue_token(
    agent: Annotated[str, typer.Argument(help="Agent id (catalog/agents).")],
    note: Annotated[str, typer.Option(help="Why and for whom the token was issued.")] = "",
    expires_days: Annotated[int | None, typer.Option(min=1, help="Expire after this many days.")] = None,
) -> None:
    """Print a new token for AGENT once, and store only its hash."""
    from aquifer.catalog import load_catalog
    from aquifer.credentials import CredentialStore

    settings = get_settings()
    store = CredentialStore(settings.credentials_file)
    try:
        token = store.issue(
            agent,
            catalog=load_catalog(settings.catalog_dir),
            note=note,
            expires_in=dt.timedelta(days=expires_days) if expires_days else None,
        )
    except (KeyError, ValueError) as exc:
        raise _fail(str(exc).strip('"')) from None
    err.print(f"token for {agent} (shown once; only its hash is kept in {store.path}):")
    print(token)


@agents_app.command("revoke-token")
def agents_revoke_token(key_id: Annotated[str, typer.Argument(help="The key id (aq_<key id>_...).")]) -> None:
    """Revoke a token; the service refuses it from its next request."""
    from aquifer.credentials import CredentialStore

    try:
        cred = CredentialStore(get_settings().credentials_file).revoke(key_id)
    except KeyError as exc:
        raise _fail(str(exc).strip('"')) from None
    console.print(f"revoked {cred.key_id} of {cred.agent}")


# -- audit --------------------------------------------------------------------------------------------------------

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
        raise _fail(f"--since {value!r}: give a duration (30d, 12h, 15m) or an ISO date/time") from None
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
        raise _fail(f"--classification must be one of {', '.join(c.value for c in Classification)}")
    if locality not in {loc.value for loc in Locality}:
        raise _fail(f"--locality must be one of {', '.join(loc.value for loc in Locality)}")
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


def main() -> None:  # pragma: no cover
    sys.exit(app())
