"""``aquifer policy``: write, test and question the Rego access policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aquifer.settings import get_settings

if TYPE_CHECKING:
    from aquifer.policy import PolicyEngine, Resource

from aquifer.cli._common import app, console, fail

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
        raise fail(str(exc), 2) from None
    console.print("-" * 80)
    total = passed + failed
    if total == 0:
        raise fail(f"no Rego tests (test_* rules in *_test.rego) under {policy_dir}")
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
        raise fail(f"{input_file}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise fail(f"{input_file}: not valid JSON or YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise fail(f"{input_file}: the input must be an object with agent, purpose, model (and resource(s))")
    chosen = entrypoint or ("decisions" if "resources" in doc else "decision" if "resource" in doc else "request")
    if chosen not in ENTRYPOINTS:
        raise fail(f"--entrypoint must be one of {', '.join(ENTRYPOINTS)}, got {chosen!r}")
    engine = _engine()
    try:
        result = engine.evaluate(chosen, doc)
    except PolicyEngineUnavailable as exc:
        raise fail(f"policy_engine_unavailable: {exc}", 2) from None
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
    user: Annotated[
        str | None, typer.Option(help="The user the agent acts for (the subject claim's value, e.g. a username).")
    ] = None,
    group: Annotated[list[str] | None, typer.Option(help="An IdP group of the user (repeatable).")] = None,
    issuer: Annotated[
        str | None, typer.Option(help="The user's issuer id (catalog/identity.yaml); default: its only issuer.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Say whether the policy lets this agent (acting for this user) see this chunk through this model, and which
    rules decided."""
    from aquifer.ids import is_identifier
    from aquifer.lake import Lake
    from aquifer.lineage import find_chunk
    from aquifer.policy import PolicyEngineUnavailable, RequestContext
    from aquifer.policy.explain import log_explanation

    for option, value in (("--agent", agent), ("--purpose", purpose), ("--model", model), ("--action", action)):
        if not is_identifier(value):
            raise fail(f"{option}: {value!r} is not an identifier (lower-case letters, digits and _, 2-63 long)")

    engine = _engine()
    try:
        catalog = engine.catalog
    except PolicyEngineUnavailable as exc:
        raise fail(str(exc), 2) from None
    who = _user(catalog, user, group or [], issuer)
    resources: list[Resource] = []
    row = None
    if chunk:
        found = find_chunk(Lake.from_settings(get_settings()), catalog, chunk)
        if found is None:
            raise fail(f"chunk {chunk!r} is in no platinum or gold table (see `aquifer status`)")
        row, resource = found
        resources = [resource]
    batch = engine.decide(RequestContext(agent, purpose, model, action=action, user=who), resources)
    decision = batch.resources[0] if resources else batch.request
    log_explanation(batch, catalog, resources, row, get_settings())
    if as_json:
        print(
            json.dumps(
                {
                    "revision": batch.revision,
                    "engine": engine.backend.name,
                    "request": {"action": action, "agent": agent, "purpose": purpose, "model": model}
                    | ({"user": who.as_input()} if who else {}),
                    "resource": resources[0].as_input() if resources else None,
                    "decision": decision.model_dump(),
                },
                indent=2,
            )
        )
        return
    locality = catalog.models[model].locality.value if model in catalog.models else "unregistered"
    console.print(
        f"agent [bold]{agent}[/], purpose [bold]{purpose}[/], model [bold]{model}[/] ({locality})"
        + (f", for user [bold]{escape(who.subject)}[/] ({escape(', '.join(who.groups)) or 'no groups'})" if who else "")
    )
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


def _user(catalog: Any, subject: str | None, groups: list[str], issuer: str | None) -> Any:
    """The user of ``--user``/``--group``/``--issuer`` as a verified token would map them, or None."""
    from aquifer.identity.user import User

    if subject is None:
        if groups or issuer:
            raise fail("--group and --issuer describe a user: give --user too")
        return None
    issuers = [i.id for i in catalog.identity.issuers]
    if issuer is None:
        if len(issuers) != 1:
            raise fail(f"--issuer: say which of {issuers or 'no issuers (catalog/identity.yaml)'} the user is from")
        issuer = issuers[0]
    elif issuer not in issuers:
        raise fail(f"--issuer: {issuer!r} is not an issuer of catalog/identity.yaml ({', '.join(issuers) or 'none'})")
    who = User(issuer, subject, tuple(groups))
    bad = who.invalid_fields()
    if bad:
        raise fail(f"--user/--group: not a user or group name ({', '.join(bad)}): letters, digits and ._@+=:/-")
    return who
