"""Getting a user token, client side: the OAuth 2.0 password grant against an issuer's token endpoint (found by
OIDC discovery). What ``aquifer ask --as``, ``aquifer idp token`` and the example agents use against the development
IdP; against a real IdP an application gets the user's token from its own sign-in and passes it on
(``AQUIFER_USER_TOKEN``)."""

from __future__ import annotations

import httpx


class TokenError(RuntimeError):
    """No token: the IdP is unreachable or refused; the message says which."""


def password_token(issuer: str, username: str, password: str, *, client_id: str, timeout_s: float = 5.0) -> str:
    """A token for ``username`` from ``issuer``'s token endpoint (``grant_type=password``)."""
    base = issuer.rstrip("/")
    try:
        discovery = httpx.get(f"{base}/.well-known/openid-configuration", timeout=timeout_s).json()
        endpoint = discovery["token_endpoint"]
        form = {"grant_type": "password", "username": username, "password": password, "client_id": client_id}
        answer = httpx.post(endpoint, data=form, timeout=timeout_s)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        msg = f"no IdP answering at {issuer} ({type(exc).__name__}); the development one starts with: aquifer idp serve"
        raise TokenError(msg) from None
    if answer.status_code != 200:
        try:
            body = answer.json()
            why = f"{body.get('error')}: {body.get('error_description')}"
        except ValueError:
            why = answer.text[:200]
        raise TokenError(f"the IdP at {issuer} refused a token for {username}: HTTP {answer.status_code} {why}")
    try:
        return str(answer.json()["access_token"])
    except (ValueError, KeyError, TypeError):
        raise TokenError(f"the IdP at {issuer} answered without an access_token") from None
