"""``aquifer idp``: the development OIDC issuer of the demo users (refused when AQUIFER_ENVIRONMENT=production)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aquifer.cli._common import app, console, fail

if TYPE_CHECKING:
    from aquifer.identity.devidp import DevIdP

idp_app = typer.Typer(
    help="The development IdP: OIDC tokens for the demo users (password: demo). Development only.",
    no_args_is_help=True,
)
app.add_typer(idp_app, name="idp")


def _idp(issuer: str | None = None, ttl_s: int | None = None) -> DevIdP:
    """The development IdP on this data dir, or the command's failure when it is refused."""
    from aquifer.identity.devidp import DEFAULT_ISSUER, DEFAULT_TTL_S, DevIdP, DevIdPRefused

    try:
        return DevIdP(issuer=issuer or DEFAULT_ISSUER, ttl_s=ttl_s or DEFAULT_TTL_S)
    except DevIdPRefused as exc:
        raise fail(str(exc)) from None


@idp_app.command("serve")
def idp_serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port (catalog/identity.yaml names 8790).")] = 8790,
    issuer: Annotated[str | None, typer.Option(help="The iss claim. Default: http://HOST:PORT.")] = None,
    ttl_s: Annotated[int, typer.Option(min=1, help="Token lifetime in seconds.")] = 3600,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve discovery, the JWKS and the token endpoint in the foreground."""
    idp = _idp(issuer or f"http://{host}:{port}", ttl_s)
    console.print(f"development IdP {idp.issuer} (keys in {idp.keys_file}); every demo user's password is 'demo'")
    idp.serve(host, port, log_level=log_level)


@idp_app.command("token")
def idp_token(
    user: Annotated[str, typer.Option("--user", "-u", help="Demo user (src/aquifer/sample/users.json).")],
    password: Annotated[str, typer.Option(help="The user's password (the demo users': demo).")] = "demo",
    url: Annotated[str, typer.Option(help="The running IdP (its issuer URL).")] = "http://127.0.0.1:8790",
    client_id: Annotated[str, typer.Option(help="The audience the token is for.")] = "aquifer",
) -> None:
    """Print a user token from a running IdP, e.g. for curl -H "X-Aquifer-User-Token: $(aquifer idp token -u ...)"."""
    from aquifer.identity.client import TokenError, password_token

    try:
        print(password_token(url, user, password, client_id=client_id))
    except TokenError as exc:
        raise fail(str(exc)) from None


@idp_app.command("keys")
def idp_keys() -> None:
    """The IdP's keys: kid, algorithm, whether it signs, and until when a rotated-out key stays published."""
    idp = _idp()
    signing = {idp.signing_kid(alg) for alg in ("ES256", "RS256")}
    table = Table("kid", "alg", "signs", "created", "published until")
    for key in idp.published():
        until = dt.datetime.fromtimestamp(key.retire_at).isoformat(timespec="seconds") if key.retire_at else ""
        created = dt.datetime.fromtimestamp(key.created_at).isoformat(timespec="seconds")
        table.add_row(key.kid, key.alg, "yes" if key.kid in signing else "", created, until)
    console.print(table)


@idp_app.command("rotate")
def idp_rotate(
    alg: Annotated[str, typer.Option(help="ES256 (the default signer) or RS256.")] = "ES256",
    grace_s: Annotated[
        float | None, typer.Option(help="Keep the old key published this long. Default: TTL+60.")
    ] = None,
) -> None:
    """Publish a new key and sign with it from now on (a running IdP picks it up at its next request)."""
    idp = _idp()
    try:
        old = idp.signing_kid(alg)
        kid = idp.rotate(alg, grace_s=grace_s)
    except (KeyError, ValueError) as exc:
        raise fail(str(exc).strip('"')) from None
    console.print(f"{alg} now signs with {kid}; {old} stays published for its grace period (aquifer idp retire {old})")


@idp_app.command("retire")
def idp_retire(kid: Annotated[str, typer.Argument(help="The key id (aquifer idp keys).")]) -> None:
    """Remove a rotated-out key from the JWKS now: tokens it signed stop verifying once verifiers refetch."""
    idp = _idp()
    try:
        idp.retire(kid)
    except (KeyError, ValueError) as exc:
        raise fail(str(exc).strip('"')) from None
    console.print(f"retired {kid}")
