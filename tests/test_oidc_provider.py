"""Users behind agents with a certified OpenID provider as the IdP: panva's npm ``oidc-provider`` (OpenID-certified;
pinned in tests/oidc_provider/package.json, installed by ``make oidc-provider``) run by tests/oidc_provider/provider.mjs
on a free port, its own discovery, JWKS, token and authorization endpoints, its own JWT access tokens (``typ
at+jwt``); the real service (uvicorn) over the materialized sample trusts only that provider (``identity.yaml``
rewritten, not development-only). Everything goes over real HTTP. Skipped where node or the provider's packages are
missing (``make oidc-provider`` prints why)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aquifer.settings import PROJECT_ROOT, get_settings
from tests.conftest import copy_materialized
from tests.servers import AquiferServer, Process, free_port, post_context, service_env
from tests.test_credentials import DEV_TOKENS

PROVIDER_DIR = PROJECT_ROOT / "tests" / "oidc_provider"
MODULES = Path(os.environ.get("AQUIFER_OIDC_PROVIDER_DIR", Path.home() / ".cache" / "aquifer" / "oidc-provider"))
MODULES = MODULES / "node_modules"
USERS_FILE = PROJECT_ROOT / "src" / "aquifer" / "sample" / "users.json"
ISSUER_ID = "certified_oidc_provider"
CLIENT = ("aquifer-e2e", "aquifer-e2e-development-secret")  # provider.mjs's client
REDIRECT_URI = "http://127.0.0.1/callback"
HR_QUESTION = "employee case notes about a complaint, relocation or leave"
JWKS_TTL_S = 2


def _why_not() -> str:
    """Why the provider cannot run here ('' when it can)."""
    if shutil.which("node") is None:
        return "node is not on PATH (apt-get install nodejs npm; then make oidc-provider)"
    installed = MODULES / "oidc-provider" / "package.json"
    if not installed.is_file():
        return f"oidc-provider is not installed in {MODULES} (make oidc-provider)"
    pinned = json.loads((PROVIDER_DIR / "package.json").read_text())["dependencies"]["oidc-provider"]
    version = json.loads(installed.read_text())["version"]
    if version != pinned:
        return f"{MODULES} holds oidc-provider {version}, not the pinned {pinned} (make oidc-provider)"
    return ""


pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.skipif(bool(_why_not()), reason=_why_not())]


class Provider:
    """provider.mjs on ``port``: started by :meth:`start`, stopped by :meth:`stop` (the issuer stays the same)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.process: Process | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        argv = [str(shutil.which("node")), str(PROVIDER_DIR / "provider.mjs"), str(self.port), str(USERS_FILE)]
        env = {**os.environ, "OIDC_PROVIDER_NODE_MODULES": str(MODULES)}
        log = self.root / f"provider-{self.starts}.log"
        self.process = Process(argv, log, ready=f"{self.issuer}/.well-known/openid-configuration", env=env)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def token(self, username: str, *, resource: str | None = None, password: str = "demo") -> httpx.Response:
        """The password grant of provider.mjs (RFC 6749 4.3) at the provider's token endpoint."""
        form = {"grant_type": "password", "username": username, "password": password}
        if resource is not None:
            form["resource"] = resource
        return httpx.post(f"{self.issuer}/token", data=form, auth=CLIENT, timeout=10)

    def access_token(self, username: str, *, resource: str | None = None) -> str:
        answer = self.token(username, resource=resource)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] > 0, body
        return str(body["access_token"])

    def authorization_code_token(self, username: str) -> str:
        """An access token through the standard authorization-code flow with PKCE: /auth, the provider's own login
        and consent pages (devInteractions) submitted as a browser would, the code exchanged at /token."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(12)
        params = {
            "client_id": CLIENT[0],
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile",
            "state": state,
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": "urn:aquifer:api",
        }
        with httpx.Client(follow_redirects=False, timeout=10) as browser:

            def follow(answer: httpx.Response) -> httpx.Response:
                while answer.is_redirect and not answer.headers["location"].startswith(REDIRECT_URI):
                    answer = browser.get(urllib.parse.urljoin(str(answer.url), answer.headers["location"]))
                return answer

            page = follow(browser.get(f"{self.issuer}/auth", params=params))
            for form in ({"prompt": "login", "login": username, "password": "demo"}, {"prompt": "consent"}):
                assert page.status_code == 200 and f'value="{form["prompt"]}"' in page.text, page.text[:500]
                action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
                assert action, page.text[:500]
                page = follow(browser.post(urllib.parse.urljoin(str(page.url), action.group(1)), data=form))
            assert page.is_redirect, page.text[:500]
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.headers["location"]).query))
        assert query.get("state") == state and query.get("iss") == self.issuer and "code" in query, query
        form = {
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "resource": "urn:aquifer:api",
        }
        answer = httpx.post(f"{self.issuer}/token", data=form, auth=CLIENT, timeout=10)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("oidc_provider")
    provider = Provider(root)
    provider.start()
    data = copy_materialized(materialized_sample, root)
    identity_file = root / "catalog" / "identity.yaml"
    identity = yaml.safe_load(identity_file.read_text())
    identity["issuers"] = [  # the certified provider is the only IdP trusted
        {
            "id": ISSUER_ID,
            "issuer": provider.issuer,
            "audiences": ["aquifer"],
            "algorithms": ["ES256", "RS256"],
            "claims": {"subject": "sub", "groups": "groups", "attributes": {"department": "department"}},
            "leeway_s": 30,
            "jwks_ttl_s": JWKS_TTL_S,
            "development_only": False,
        }
    ]
    identity_file.write_text(yaml.safe_dump(identity, sort_keys=False))
    env = service_env(root, data)
    server = AquiferServer(env, root / "server.log", ready="/readyz")
    state = {"root": root, "provider": provider, "server": server}
    yield state
    server.stop()
    provider.stop()
    get_settings.cache_clear()


def _context(world: dict[str, Any], agent: str, query: str, **options: Any) -> httpx.Response:
    return post_context(world["server"].url, DEV_TOKENS[agent], query, **options)


def _hr(world: dict[str, Any], token: str | None) -> httpx.Response:
    return _context(world, "hr_case_assistant", HR_QUESTION, purpose="hr_casework", user_token=token)


def _support(world: dict[str, Any], token: str | None) -> httpx.Response:
    return _context(
        world, "support_assistant", "refund for a duplicate charge", purpose="customer_support", user_token=token
    )


def _part(segment: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _principals(name: str) -> set[str]:
    groups = json.loads(USERS_FILE.read_text())["users"][name]["groups"]
    return {f"user:{name}", *(f"group:{g}" for g in groups)}


def _refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["reasons"] == [code] and "chunks" not in answer.json(), answer.text


def _case_notes(answer: httpx.Response, name: str) -> set[str]:
    """The hr_case_notes chunk ids of a 200 answer for ``name``, each admitted by one of ``name``'s principals."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user"] == f"{ISSUER_ID}:{name}"
    cases = [c for c in body["chunks"] if c["dataset"] == "hr_case_notes"]
    assert cases, f"{name} is an HR partner: some case notes must match"
    held = _principals(name)
    for chunk in cases:
        admitted = chunk["receipt"]["admitted_by"]
        assert admitted and set(admitted) <= held, (name, chunk["chunk_id"], admitted)
        assert chunk["receipt"]["user"] == f"{ISSUER_ID}:{name}"
    return {c["chunk_id"] for c in cases}


# -- the provider's tokens ------------------------------------------------------------------------------------------


def test_the_provider_issues_rfc9068_access_tokens_for_the_demo_users(world: dict[str, Any]) -> None:
    provider: Provider = world["provider"]
    discovery = httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == provider.issuer and discovery["jwks_uri"] == f"{provider.issuer}/jwks"
    published = {k["kid"]: k["alg"] for k in httpx.get(discovery["jwks_uri"], timeout=10).json()["keys"]}
    assert sorted(published.values()) == ["ES256", "RS256"]
    token = provider.access_token("amira.haddad")
    header, claims = _part(token.split(".")[0]), _part(token.split(".")[1])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and published[header["kid"]] == "ES256"
    assert claims["iss"] == provider.issuer and claims["aud"] == "aquifer" and claims["sub"] == "amira.haddad"
    assert claims["groups"] == ["employees", "hr-partners-north"] and claims["department"] == "People Operations"
    assert claims["client_id"] == CLIENT[0] and claims["exp"] > claims["iat"] and claims["jti"]
    assert provider.token("amira.haddad", password="wrong").json()["error"] == "invalid_grant"
    assert provider.token("nobody.here").json()["error"] == "invalid_grant"


# -- two users, one agent -------------------------------------------------------------------------------------------


def test_two_users_of_one_agent_receive_different_context(world: dict[str, Any]) -> None:
    provider: Provider = world["provider"]
    north = _case_notes(_hr(world, provider.access_token("amira.haddad")), "amira.haddad")
    south = _case_notes(_hr(world, provider.access_token("ben.okafor")), "ben.okafor")
    assert north != south, "the same question, two HR regions: different case notes"


def test_a_token_from_the_authorization_code_flow_is_the_same_user(world: dict[str, Any]) -> None:
    provider: Provider = world["provider"]
    token = provider.authorization_code_token("ben.okafor")
    claims = _part(token.split(".")[1])
    assert claims["sub"] == "ben.okafor" and claims["aud"] == "aquifer", claims
    by_code = _case_notes(_hr(world, token), "ben.okafor")
    by_password = _case_notes(_hr(world, provider.access_token("ben.okafor")), "ben.okafor")
    assert by_code == by_password


def test_both_signing_algorithms_of_the_provider_are_accepted(world: dict[str, Any]) -> None:
    provider: Provider = world["provider"]
    for resource, alg in (("urn:aquifer:api", "ES256"), ("urn:aquifer:api:rs256", "RS256")):
        token = provider.access_token("chloe.martin", resource=resource)
        assert _part(token.split(".")[0])["alg"] == alg
        answer = _support(world, token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"] == f"{ISSUER_ID}:chloe.martin"


# -- refusals -------------------------------------------------------------------------------------------------------


def test_the_agent_acting_for_a_user_needs_the_users_token(world: dict[str, Any]) -> None:
    _refused(_hr(world, None), 401, "user_token_required")


def test_a_tampered_or_unsigned_provider_token_is_refused(world: dict[str, Any]) -> None:
    token = world["provider"].access_token("gus.lindqvist")
    header, payload, signature = token.split(".")
    claims = _part(payload)
    escalated = {**claims, "groups": [*claims["groups"], "hr-leads"]}
    tampered = f"{header}.{_segment(escalated)}.{signature}"
    unsigned = f"{_segment({**_part(header), 'alg': 'none'})}.{_segment(escalated)}."
    for forged in (tampered, unsigned):
        answer = _hr(world, forged)
        _refused(answer, 401, "user_token_invalid")
        assert forged not in answer.text
    assert _support(world, token).status_code == 200, "the token as the provider issued it is good"


def test_a_provider_token_for_another_audience_is_refused(world: dict[str, Any]) -> None:
    token = world["provider"].access_token("amira.haddad", resource="urn:tidewater:payroll")
    assert _part(token.split(".")[1])["aud"] == "payroll"
    _refused(_hr(world, token), 401, "user_token_wrong_audience")


# -- the provider going away (last: it stops and restarts the provider) --------------------------------------------


def test_provider_down_fails_closed_and_a_restarted_provider_is_trusted_with_its_new_keys(
    world: dict[str, Any],
) -> None:
    provider: Provider = world["provider"]
    token = provider.access_token("chloe.martin")
    assert _support(world, token).status_code == 200
    provider.stop()
    time.sleep(JWKS_TTL_S + 0.5)  # past the issuer's jwks_ttl_s: the cached keys are no longer used
    _refused(_support(world, token), 503, "identity_provider_unavailable")
    _refused(_hr(world, token), 503, "identity_provider_unavailable")
    alone = _support(world, None)
    assert alone.status_code == 200, "an agent acting for itself does not depend on the IdP"
    provider.start()  # same issuer, new keys
    fresh = provider.access_token("chloe.martin")
    assert _part(fresh.split(".")[0])["kid"] != _part(token.split(".")[0])["kid"]
    deadline = time.monotonic() + 20
    while True:  # failed fetches wait out a short cooldown before the next try
        back = _support(world, fresh)
        if back.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert back.status_code == 200, back.text
    _refused(_support(world, token), 401, "user_token_invalid")  # its key is no longer published
