"""Commands that serve: ``aquifer serve``, ``serve-model``, ``up`` (all three together), and ``ask``."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aquifer.settings import get_settings

if TYPE_CHECKING:
    pass

from aquifer.cli._common import app, console, fail


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
        raise fail(str(exc)) from None
    os.execv(argv[0], argv)


@app.command()
def up(
    ui_port: Annotated[int, typer.Option(help="Dagster UI port.")] = 3000,
    api_port: Annotated[int, typer.Option(help="Aquifer API port.")] = 8000,
    model_port: Annotated[int, typer.Option(help="Local model port (catalog/models/local_smollm2.yaml).")] = 8080,
    model: Annotated[bool, typer.Option(help="Also serve the local model (llama.cpp).")] = True,
    idp: Annotated[
        bool, typer.Option(help="Also serve the development IdP of catalog/identity.yaml (never in production).")
    ] = True,
) -> None:
    """Run the Dagster UI, the Aquifer API and the local model together (Ctrl-C stops all, leaving no process); with
    an OTLP endpoint in OTEL_EXPORTER_OTLP_[LOGS_]ENDPOINT, the decision-log shipper too."""
    import httpx

    from aquifer.export.decisions import ExportConfigError, export_config
    from aquifer.export.decisions import configured as export_configured
    from aquifer.local_model import SERVED_NAME, server_argv
    from aquifer.up import aquifer_services, run

    model_argv = None
    if model:
        try:
            model_argv = server_argv(port=model_port)
        except FileNotFoundError as exc:
            raise fail(str(exc)) from None
    settings = get_settings()
    idp_port = _dev_idp_port(settings) if idp else None
    shipping = export_configured()  # an OTLP endpoint in the environment: the decision log is shipped there
    if shipping:
        try:
            endpoint = export_config().endpoint
        except ExportConfigError as exc:
            raise fail(str(exc), 2) from None
    services = aquifer_services(
        settings.data_dir,
        ui_port=ui_port,
        api_port=api_port,
        model_port=model_port,
        model_argv=model_argv,
        idp_port=idp_port,
        ship_decisions=shipping,
    )

    def announce() -> None:
        from aquifer.credentials import CredentialStore, development_token

        console.print(f"\n[bold]Dagster UI[/]  http://127.0.0.1:{ui_port}")
        console.print(f"[bold]API docs[/]    http://127.0.0.1:{api_port}/docs")
        console.print(
            f"[bold]MCP[/]         http://127.0.0.1:{api_port}/mcp (Streamable HTTP; `aquifer mcp` for stdio)"
        )
        if model:
            console.print(f"[bold]Local model[/] http://127.0.0.1:{model_port}/v1 ({SERVED_NAME}, llama.cpp)")
        if idp_port is not None:
            console.print(f"[bold]Dev IdP[/]     http://127.0.0.1:{idp_port} (demo users' password: demo)")
        if shipping:
            console.print(f"[bold]Decisions[/]   shipped to {endpoint} (OTLP/HTTP; lag at /metrics)", highlight=False)
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
        if idp_port is not None:
            console.print(
                f'     [bold]{aquifer} ask --agent hr_case_assistant --as amira.haddad "Which cases mention a '
                'relocation?"[/] (and --as ben.okafor: another HR region, other cases)',
                highlight=False,
            )
        console.print("Ctrl-C stops everything.\n")

    raise typer.Exit(run(services, on_ready=announce))


def _dev_idp_port(settings: Any) -> int | None:
    """The port of the catalog's development IdP when it is served on this machine (and not in production)."""
    from urllib.parse import urlsplit

    from aquifer.catalog import load_catalog

    if settings.environment == "production":
        return None
    try:
        issuers = load_catalog(settings.catalog_dir).identity.issuers
    except ValueError as exc:
        raise fail(str(exc)) from None
    for issuer in issuers:
        url = urlsplit(issuer.issuer)
        if issuer.development_only and url.hostname in ("127.0.0.1", "localhost") and url.port:
            return url.port
    return None


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
    as_user: Annotated[
        str | None,
        typer.Option("--as", help="Ask on behalf of this demo user (a token from the development IdP)."),
    ] = None,
) -> None:
    """Ask AGENT's question through the governed gateway: the answer on the agent's model, its sources [n] with
    receipts, and what the policy withheld. The token is AQUIFER_TOKEN, or the demo agent's development token; the
    user's is AQUIFER_USER_TOKEN, or --as a demo user's from the development IdP."""
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
            as_user=as_user,
        )
    except AskError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(dataclasses.asdict(answer), indent=2, ensure_ascii=False))
        return
    if stream:
        console.print()
    show(answer, console, text=not stream)


# -- policy -------------------------------------------------------------------------------------------------------


@app.command("mcp")
def mcp_stdio() -> None:
    """Serve Aquifer's MCP tools over stdio, for desktop MCP clients (Claude Desktop, IDE agents) that start it.

    The credentials come from the environment, never from arguments (which other users of the machine can see):
    AQUIFER_AGENT_TOKEN (required), and AQUIFER_USER_TOKEN or AQUIFER_USER_TOKEN_FILE (the user the agent acts for;
    the file is re-read on every call, so a refresher can replace a short-lived token). Every call is decided,
    logged and receipted exactly as over HTTP (POST /mcp)."""
    from aquifer.catalog import load_catalog
    from aquifer.credentials import AuthenticationError, Authenticator, CredentialStore
    from aquifer.service.mcp_server import AGENT_TOKEN_ENV, USER_TOKEN_ENV, build_server, env_credentials
    from aquifer.service.metrics import Metrics
    from aquifer.service.retrieval import Retriever

    settings = get_settings()
    if not os.environ.get(AGENT_TOKEN_ENV):
        raise fail(f"{AGENT_TOKEN_ENV}: not set; put the agent's token there (aquifer agents issue-token)")
    credentials = env_credentials()
    # the token first, before the embedding model loads: a wrong one fails in a blink, not after seconds
    authenticator = Authenticator(
        CredentialStore(settings.credentials_file), production=settings.environment == "production"
    )
    try:
        authenticator.authenticate(credentials(None).agent_token, catalog=load_catalog(settings.catalog_dir))
    except AuthenticationError as exc:
        raise fail(f"{AGENT_TOKEN_ENV}: {exc}") from None
    except Exception as exc:  # a catalog that does not load
        raise fail(f"cannot check {AGENT_TOKEN_ENV}: {exc}", 2) from None
    retriever = Retriever(settings, authenticator=authenticator)
    if problems := retriever.readiness():
        raise fail("not ready: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), 2)
    user_token = f"{USER_TOKEN_ENV} (or {USER_TOKEN_ENV}_FILE)"
    server = build_server(lambda: retriever, Metrics(), credentials, user_token_name=user_token)
    try:
        server.run()  # stdio until the client closes it
    finally:
        retriever.engine.close()
