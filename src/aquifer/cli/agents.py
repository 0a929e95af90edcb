"""``aquifer agents``: agent identities and their tokens."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aquifer.settings import get_settings

if TYPE_CHECKING:
    pass

from aquifer.cli._common import app, console, err, fail

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
        raise fail(str(exc).strip('"')) from None
    err.print(f"token for {agent} (shown once; only its hash is kept in {store.path}):")
    print(token)


@agents_app.command("revoke-token")
def agents_revoke_token(key_id: Annotated[str, typer.Argument(help="The key id (aq_<key id>_...).")]) -> None:
    """Revoke a token; the service refuses it from its next request."""
    from aquifer.credentials import CredentialStore

    try:
        cred = CredentialStore(get_settings().credentials_file).revoke(key_id)
    except KeyError as exc:
        raise fail(str(exc).strip('"')) from None
    console.print(f"revoked {cred.key_id} of {cred.agent}")


# -- audit --------------------------------------------------------------------------------------------------------
