"""User tokens end to end over real HTTP: the development IdP (uvicorn in a thread) issues and publishes keys, the
verifier fetches discovery and the JWKS from it. No HTTP is mocked; short TTLs instead of long sleeps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from aquifer.catalog import Identity
from aquifer.identity.devidp import DEMO_PASSWORD, USERS_FILE, DevIdP, DevIdPRefused, ServerThread
from aquifer.identity.user import MAX_GROUPS, User
from aquifer.identity.verify import MAX_TOKEN_CHARS, IdentityUnavailable, UserTokenError, UserVerifier
from aquifer.settings import get_settings
from tests.servers import free_port

ISSUER_ID = "tidewater_dev_idp"


def identity(iss: str, *, ttl_s: int = 300, leeway_s: int = 0, dev: bool = True, **extra: Any) -> Identity:
    entry = {
        "id": ISSUER_ID,
        "issuer": iss,
        "audiences": ["aquifer"],
        "algorithms": ["ES256", "RS256"],
        "claims": {"subject": "sub", "groups": "groups", "attributes": {"department": "department"}},
        "leeway_s": leeway_s,
        "jwks_ttl_s": ttl_s,
        "development_only": dev,
        **extra,
    }
    return Identity.model_validate({"issuers": [entry]})


def start_idp(root: Path, *, port: int | None = None, **kwargs: Any) -> tuple[DevIdP, ServerThread]:
    port = port or free_port()
    users = root / "users.json"
    if not users.exists():
        shutil.copy(USERS_FILE, users)
    idp = DevIdP(issuer=f"http://127.0.0.1:{port}", data_dir=root / "data", users_file=users, **kwargs)
    return idp, idp.start()


@pytest.fixture(scope="module")
def shared_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    """One IdP for the tests that only read from it."""
    idp, server = start_idp(tmp_path_factory.mktemp("idp"))
    yield idp
    server.stop()


@pytest.fixture
def own_idp(tmp_path: Path) -> Iterator[tuple[DevIdP, ServerThread]]:
    """An IdP of this test's own (rotated, stopped, edited)."""
    idp, server = start_idp(tmp_path)
    yield idp, server
    server.stop()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def refused(verifier: UserVerifier, token: str) -> UserTokenError:
    with pytest.raises(UserTokenError) as info:
        verifier.verify(token)
    if len(token) >= 20:  # (a short junk string may well be a word of the message)
        assert token not in str(info.value)
    if token.count(".") == 2 and len(token.split(".")[2]) > 8:
        assert token.split(".")[2] not in str(info.value), "the signature leaked into the message"
    return info.value


def test_es256_and_rs256_tokens_map_to_the_user(shared_idp: DevIdP) -> None:
    verifier = UserVerifier(identity(shared_idp.issuer), production=False)
    assert verifier.warm() == {}
    expected = User(
        ISSUER_ID, "dev.patel", ("employees", "support-tier2", "oncall"), (("department", "Customer Support"),)
    )
    for alg in ("ES256", "RS256"):
        token = shared_idp.make_token("dev.patel", alg=alg)
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header["alg"] == alg and header["kid"] == shared_idp.signing_kid(alg)
        assert verifier.verify(token) == expected
    # a subject claim other than sub, and an attribute claim the token lacks
    other = identity(shared_idp.issuer, claims={"subject": "email", "attributes": {"team": "team"}})
    user = UserVerifier(other, production=False).verify(shared_idp.make_token("erin.walsh"))
    assert (user.subject, user.groups, user.attributes) == (
        "erin.walsh@tidewater.example",
        ("employees", "finance"),
        (),
    )


def test_token_endpoint_follows_rfc6749(shared_idp: DevIdP) -> None:
    url = shared_idp.issuer + "/token"
    form = {"grant_type": "password", "username": "amira.haddad", "password": DEMO_PASSWORD, "client_id": "aquifer"}
    answer = httpx.post(url, data=form)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"] == body["id_token"]
    verifier = UserVerifier(identity(shared_idp.issuer), production=False)
    assert verifier.verify(body["access_token"]).groups == ("employees", "hr-partners-north")
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "name", "email", "department", "groups"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 3600 and claims["aud"] == "aquifer" and claims["iss"] == shared_idp.issuer
    cases = [
        ({**form, "password": "amira.haddad"}, 400, "invalid_grant"),
        ({**form, "username": "nobody"}, 400, "invalid_grant"),
        ({**form, "grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({**form, "client_id": "someone-else"}, 401, "invalid_client"),
        ({k: v for k, v in form.items() if k != "password"}, 400, "invalid_request"),
    ]
    for data, status, error in cases:
        bad = httpx.post(url, data=data)
        assert (bad.status_code, bad.json()["error"]) == (status, error), data
        assert "access_token" not in bad.json()
    as_json = httpx.post(url, json=form)
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")


def test_discovery_and_jwks_publish_public_keys_only(shared_idp: DevIdP) -> None:
    doc = httpx.get(shared_idp.issuer + "/.well-known/openid-configuration").json()
    assert doc["issuer"] == shared_idp.issuer and doc["jwks_uri"] == shared_idp.issuer + "/jwks"
    assert doc["token_endpoint"] == shared_idp.issuer + "/token" and doc["grant_types_supported"] == ["password"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    keys = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "RS256"]
    assert all(not {"d", "p", "q", "dp", "dq", "qi"} & set(k) for k in keys), "a private key part is published"
    assert stat.S_IMODE(shared_idp.keys_file.stat().st_mode) == 0o600
    again = DevIdP(issuer=shared_idp.issuer, data_dir=shared_idp.keys_file.parents[1])
    assert again.signing_kid("ES256") == shared_idp.signing_kid("ES256"), "keys are not kept across restarts"


def _rsa_public_pem(idp: DevIdP) -> bytes:
    rsa_key = next(k for k in idp.published() if k.alg == "RS256")
    return rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _tampered(idp: DevIdP) -> str:
    header, _, signature = idp.make_token("chloe.martin").split(".")
    return ".".join([header, seg(idp.claims_for("chloe.martin", groups=["employees", "finance"])), signature])


def _hs256_with_rsa_pem(idp: DevIdP) -> str:
    signing_input = (
        f"{seg({'alg': 'HS256', 'typ': 'JWT', 'kid': idp.signing_kid('RS256')})}.{seg(idp.claims_for('ben.okafor'))}"
    )
    mac = hmac.new(_rsa_public_pem(idp), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _stranger(idp: DevIdP, tmp: Path, *, our_kid: bool) -> str:
    """Signed by a second IdP with its own keys, claiming our issuer (with its own kid, or with ours)."""
    other = DevIdP(issuer=idp.issuer, data_dir=tmp / f"stranger-{our_kid}")
    headers = {"kid": idp.signing_kid("ES256")} if our_kid else None
    return other.sign(idp.claims_for("hana.kim"), headers=headers)


Case = Callable[[DevIdP, Path], str]
REFUSALS: dict[str, tuple[Case, str, str]] = {
    "alg none with kid": (
        lambda i, _: f"{seg({'alg': 'none', 'kid': i.signing_kid()})}.{seg(i.claims_for('amira.haddad'))}.",
        "user_token_invalid",
        "'none' is not allowed",
    ),
    "alg none without kid": (
        lambda i, _: f"{seg({'alg': 'none'})}.{seg(i.claims_for('amira.haddad'))}.",
        "user_token_invalid",
        "'none' is not allowed",
    ),
    "HS256 signed with the RSA public PEM": (
        lambda i, _: _hs256_with_rsa_pem(i),
        "user_token_invalid",
        "'HS256' is not allowed",
    ),
    "RS256 claiming the ES256 key": (
        lambda i, _: i.sign(i.claims_for("ben.okafor"), alg="RS256", headers={"kid": i.signing_kid("ES256")}),
        "user_token_invalid",
        "is for ES256",
    ),
    "tampered payload": (lambda i, _: _tampered(i), "user_token_invalid", "signature does not verify"),
    "second IdP, its own kid": (
        lambda i, t: _stranger(i, t, our_kid=False),
        "user_token_invalid",
        "is not published",
    ),
    "second IdP, our kid": (
        lambda i, t: _stranger(i, t, our_kid=True),
        "user_token_invalid",
        "signature does not verify",
    ),
    "issuer not configured": (
        lambda i, _: i.make_token("amira.haddad", iss="http://127.0.0.1:1/evil"),
        "user_token_untrusted_issuer",
        "is not configured",
    ),
    "no iss": (lambda i, _: i.make_token("amira.haddad", iss=None), "user_token_invalid", "no iss"),
    "wrong audience": (
        lambda i, _: i.make_token("amira.haddad", aud="another-api"),
        "user_token_wrong_audience",
        "audience",
    ),
    "audience not a string": (lambda i, _: i.make_token("amira.haddad", aud=7), "user_token_wrong_audience", "aud"),
    "expired long ago": (
        lambda i, _: i.make_token("amira.haddad", iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "user_token_expired",
        "expired",
    ),
    "nbf in the future": (
        lambda i, _: i.make_token("amira.haddad", nbf=int(time.time()) + 120),
        "user_token_not_yet_valid",
        "nbf",
    ),
    "iat in the future": (
        lambda i, _: i.make_token("amira.haddad", iat=int(time.time()) + 120, nbf=None),
        "user_token_not_yet_valid",
        "iat",
    ),
    "missing exp": (lambda i, _: i.make_token("amira.haddad", exp=None), "user_token_invalid", "'exp'"),
    "missing iat": (lambda i, _: i.make_token("amira.haddad", iat=None), "user_token_invalid", "'iat'"),
    "missing sub": (lambda i, _: i.make_token("amira.haddad", sub=None), "user_token_invalid", "'sub'"),
    "exp not a number": (lambda i, _: i.make_token("amira.haddad", exp="tomorrow"), "user_token_invalid", "exp"),
    "groups a string": (lambda i, _: i.make_token("amira.haddad", groups="finance"), "user_token_invalid", "groups"),
    "groups with a number": (
        lambda i, _: i.make_token("amira.haddad", groups=["employees", 7]),
        "user_token_invalid",
        "groups",
    ),
    "group with a space": (
        lambda i, _: i.make_token("amira.haddad", groups=["hr partners"]),
        "user_token_invalid",
        "groups",
    ),
    "too many groups": (
        lambda i, _: i.make_token("amira.haddad", groups=[f"g{n}" for n in range(MAX_GROUPS + 1)]),
        "user_token_invalid",
        f"more than {MAX_GROUPS} groups",
    ),
    "subject with a space": (
        lambda i, _: i.make_token("amira.haddad", sub="amira haddad"),
        "user_token_invalid",
        "subject",
    ),
    "subject not a string": (lambda i, _: i.make_token("amira.haddad", sub=42), "user_token_invalid", "'sub'"),
    "jti not a string": (lambda i, _: i.make_token("amira.haddad", jti=42), "user_token_invalid", "'jti'"),
    "attribute not text": (
        lambda i, _: i.make_token("amira.haddad", department=["People"]),
        "user_token_invalid",
        "'department'",
    ),
    "attribute with a newline": (
        lambda i, _: i.make_token("amira.haddad", department="People\nOperations"),
        "user_token_invalid",
        "'department'",
    ),
    "oversize token": (
        lambda i, _: i.make_token("amira.haddad", padding="x" * MAX_TOKEN_CHARS),
        "user_token_invalid",
        f"longer than {MAX_TOKEN_CHARS}",
    ),
    "kid not a string": (
        lambda i, _: f"{seg({'alg': 'ES256', 'kid': 3})}.{seg(i.claims_for('amira.haddad'))}.AAAA",
        "user_token_invalid",
        "kid",
    ),
    "alg not a string": (
        lambda i, _: f"{seg({'alg': ['ES256'], 'kid': i.signing_kid()})}.{seg(i.claims_for('amira.haddad'))}.AAAA",
        "user_token_invalid",
        "not allowed",
    ),
    "payload a JSON list": (
        lambda i, _: f"{seg({'alg': 'ES256'})}.{seg([1, 2])}.AAAA",
        "user_token_invalid",
        "payload",
    ),
    "empty": (lambda i, _: "", "user_token_invalid", "empty"),
    "one word": (lambda i, _: "garbage", "user_token_invalid", "not a signed JWT"),
    "three dots of junk": (lambda i, _: "a.b.c", "user_token_invalid", "header"),
    "JWE shape": (lambda i, _: "a.b.c.d.e", "user_token_invalid", "encrypted"),
    "non-ASCII": (lambda i, _: "é.é.é", "user_token_invalid", "non-ASCII"),
    "signature junk": (
        lambda i, _: i.make_token("amira.haddad").rsplit(".", 1)[0] + ".!!!!",
        "user_token_invalid",
        "refused",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_name_the_reason(shared_idp: DevIdP, tmp_path: Path, case: str) -> None:
    make, code, says = REFUSALS[case]
    verifier = UserVerifier(identity(shared_idp.issuer), production=False)
    assert verifier.warm() == {}
    error = refused(verifier, make(shared_idp, tmp_path))
    assert error.code == code, str(error)
    assert says in str(error), str(error)


def test_expired_token_replayed_after_expiry(shared_idp: DevIdP) -> None:
    verifier = UserVerifier(identity(shared_idp.issuer), production=False)
    exp = int(time.time()) + 2
    token = shared_idp.make_token("farid.nouri", exp=exp)
    assert verifier.verify(token).subject == "farid.nouri"
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    assert refused(verifier, token).code == "user_token_expired"


def test_rotation_verifies_a_new_kid_after_exactly_one_refetch(own_idp: tuple[DevIdP, ServerThread]) -> None:
    idp, _ = own_idp
    verifier = UserVerifier(identity(idp.issuer), production=False)
    old_token = idp.make_token("hana.kim")
    assert verifier.verify(old_token).subject == "hana.kim"
    fetched = idp.jwks_requests
    old_kid, new_kid = idp.signing_kid(), idp.rotate()
    new_token = idp.make_token("hana.kim")
    assert new_kid in {k.kid for k in idp.published()} and old_kid in {k.kid for k in idp.published()}
    assert verifier.verify(new_token).subject == "hana.kim"
    assert idp.jwks_requests == fetched + 1
    for _ in range(5):  # both keys now cached: no more fetches
        verifier.verify(new_token)
        verifier.verify(old_token)
    assert idp.jwks_requests == fetched + 1
    # a token without kid is ambiguous once two ES256 keys are published
    unkeyed = idp.sign(idp.claims_for("hana.kim"), headers={"kid": None})
    assert "no kid" in str(refused(verifier, unkeyed))


def test_token_without_kid_uses_the_only_key_for_its_alg(shared_idp: DevIdP) -> None:
    verifier = UserVerifier(identity(shared_idp.issuer), production=False)
    for alg in ("ES256", "RS256"):
        token = shared_idp.sign(shared_idp.claims_for("gus.lindqvist"), alg=alg, headers={"kid": None})
        assert "kid" not in json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert verifier.verify(token).subject == "gus.lindqvist"


def test_retired_key_stops_verifying_after_the_ttl(own_idp: tuple[DevIdP, ServerThread]) -> None:
    idp, _ = own_idp
    verifier = UserVerifier(identity(idp.issuer, ttl_s=1), production=False, refetch_cooldown_s=0.2)
    old_kid = idp.signing_kid()
    old_token = idp.make_token("erin.walsh")
    assert verifier.verify(old_token).subject == "erin.walsh"
    idp.rotate()
    with pytest.raises(ValueError, match="rotate"):
        idp.retire(idp.signing_kid())
    idp.retire(old_kid)
    assert old_kid not in {k["kid"] for k in httpx.get(idp.issuer + "/jwks").json()["keys"]}
    time.sleep(1.1)
    error = refused(verifier, old_token)
    assert error.code == "user_token_invalid" and "is not published" in str(error)
    assert verifier.verify(idp.make_token("erin.walsh")).subject == "erin.walsh"


def test_grace_period_ends_publication(own_idp: tuple[DevIdP, ServerThread]) -> None:
    idp, _ = own_idp
    old_kid = idp.signing_kid("RS256")
    idp.rotate("RS256", grace_s=0.5)
    assert old_kid in {k.kid for k in idp.published()}
    time.sleep(0.6)
    assert old_kid not in {k["kid"] for k in httpx.get(idp.issuer + "/jwks").json()["keys"]}


def test_idp_down_cached_keys_within_ttl_then_fail_closed(tmp_path: Path) -> None:
    port = free_port()
    idp, server = start_idp(tmp_path, port=port)
    verifier = UserVerifier(identity(idp.issuer, ttl_s=1), production=False, refetch_cooldown_s=0.2)
    token = idp.make_token("amira.haddad")
    assert verifier.warm() == {}
    fetched_at = time.monotonic()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(idp.issuer + "/jwks")
    assert verifier.verify(token).subject == "amira.haddad"  # cached, within the TTL
    assert time.monotonic() - fetched_at < 1
    # an unknown kid cannot be checked while the IdP is down: 503, not 401
    with pytest.raises(IdentityUnavailable):
        verifier.verify(idp.sign(idp.claims_for("amira.haddad"), headers={"kid": "es256-unknown"}))
    time.sleep(max(0.0, 1.05 - (time.monotonic() - fetched_at)))
    with pytest.raises(IdentityUnavailable) as info:
        verifier.verify(token)
    assert info.value.code == "identity_provider_unavailable" and "unreachable" in str(info.value)
    assert ISSUER_ID in verifier.warm()
    server = idp.start()  # back on the same port: keys are fetched again once the failure cooldown is over
    try:
        time.sleep(0.25)
        assert verifier.verify(token).subject == "amira.haddad"
    finally:
        server.stop()


def test_unreachable_or_malformed_idp_is_unavailable(shared_idp: DevIdP) -> None:
    nowhere = UserVerifier(identity(f"http://127.0.0.1:{free_port()}"), production=False, http_timeout_s=1)
    assert "unreachable" in nowhere.warm()[ISSUER_ID]
    with pytest.raises(IdentityUnavailable):
        nowhere.verify(shared_idp.make_token("amira.haddad", iss=nowhere.identity.issuers[0].issuer))
    # a jwks_uri that is not a JWKS (the discovery document): no keys list
    wrong = identity(shared_idp.issuer, jwks_uri=shared_idp.issuer + "/.well-known/openid-configuration")
    with pytest.raises(IdentityUnavailable, match="no keys list"):
        UserVerifier(wrong, production=False).verify(shared_idp.make_token("amira.haddad"))
    missing = identity(shared_idp.issuer, jwks_uri=shared_idp.issuer + "/nothing-here")
    with pytest.raises(IdentityUnavailable, match="HTTP 404"):
        UserVerifier(missing, production=False).verify(shared_idp.make_token("amira.haddad"))


def test_configured_jwks_uri_skips_discovery(shared_idp: DevIdP) -> None:
    before = shared_idp.discovery_requests
    verifier = UserVerifier(identity(shared_idp.issuer, jwks_uri=shared_idp.issuer + "/jwks"), production=False)
    assert verifier.verify(shared_idp.make_token("ben.okafor")).subject == "ben.okafor"
    assert shared_idp.discovery_requests == before


def test_discovery_naming_another_issuer_is_unavailable(tmp_path: Path) -> None:
    serve_port = free_port()
    liar = DevIdP(issuer=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path)
    server = liar.start(port=serve_port)
    try:
        configured = f"http://127.0.0.1:{serve_port}"
        verifier = UserVerifier(identity(configured), production=False)
        with pytest.raises(IdentityUnavailable) as info:
            verifier.verify(liar.make_token("amira.haddad", iss=configured))
        assert liar.issuer in str(info.value) and "discovery" in str(info.value)
        assert "not the configured" in verifier.warm()[ISSUER_ID]
        assert liar.jwks_requests == 0
    finally:
        server.stop()


def test_development_only_issuer_is_refused_in_production(shared_idp: DevIdP) -> None:
    before = shared_idp.discovery_requests
    verifier = UserVerifier(identity(shared_idp.issuer, dev=True), production=True)
    assert verifier.warm() == {} and shared_idp.discovery_requests == before, "a refused issuer was fetched"
    error = refused(verifier, shared_idp.make_token("amira.haddad"))
    assert error.code == "user_token_untrusted_issuer" and "development-only" in str(error)
    trusted = UserVerifier(identity(shared_idp.issuer, dev=False), production=True)
    assert trusted.verify(shared_idp.make_token("amira.haddad")).subject == "amira.haddad"


def test_a_flood_of_unknown_kids_costs_one_jwks_fetch(shared_idp: DevIdP) -> None:
    verifier = UserVerifier(identity(shared_idp.issuer), production=False)
    assert verifier.warm() == {}
    claims = shared_idp.claims_for("dev.patel")
    tokens = [shared_idp.sign(claims, headers={"kid": secrets.token_hex(8)}) for _ in range(50)]
    before = shared_idp.jwks_requests

    def attempt(token: str) -> str:
        try:
            verifier.verify(token)
        except UserTokenError as exc:
            return exc.code
        return "accepted"

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attempt, tokens))
    assert codes == ["user_token_invalid"] * 50
    assert 1 <= shared_idp.jwks_requests - before <= 2
    assert verifier.verify(shared_idp.make_token("dev.patel")).subject == "dev.patel"


def test_an_unknown_kid_on_a_cold_cache_fetches_once(shared_idp: DevIdP) -> None:
    verifier = UserVerifier(identity(shared_idp.issuer, jwks_uri=shared_idp.issuer + "/jwks"), production=False)
    before = shared_idp.jwks_requests
    token = shared_idp.sign(shared_idp.claims_for("dev.patel"), headers={"kid": "es256-not-there"})
    assert refused(verifier, token).code == "user_token_invalid"
    assert shared_idp.jwks_requests == before + 1


def test_users_file_edit_shows_in_the_next_token(own_idp: tuple[DevIdP, ServerThread]) -> None:
    idp, _ = own_idp
    verifier = UserVerifier(identity(idp.issuer), production=False)

    def token() -> str:
        form = {"grant_type": "password", "username": "dev.patel", "password": DEMO_PASSWORD}
        answer = httpx.post(idp.issuer + "/token", data=form)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    assert "oncall" in verifier.verify(token()).groups
    doc = json.loads(idp.users_file.read_text())
    doc["users"]["dev.patel"]["groups"].remove("oncall")
    idp.users_file.write_text(json.dumps(doc))
    assert verifier.verify(token()).groups == ("employees", "support-tier2")


def test_devidp_is_refused_in_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DevIdPRefused, match="AQUIFER_ENVIRONMENT=production"):
        DevIdP(data_dir=tmp_path, environment="production")
    monkeypatch.setenv("AQUIFER_ENVIRONMENT", "production")
    monkeypatch.setenv("AQUIFER_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        with pytest.raises(DevIdPRefused):
            DevIdP()
        from aquifer.cli import app

        result = CliRunner().invoke(app, ["idp", "serve", "--port", str(free_port())])
        assert result.exit_code == 1 and "production" in result.output
    finally:
        get_settings.cache_clear()
    assert not (tmp_path / "idp").exists(), "a refused IdP wrote keys"


def test_cli_token_and_rotation_reach_the_running_idp(data_dir: Path) -> None:
    from aquifer.cli import app

    idp, server = start_idp(data_dir.parent)
    assert idp.keys_file.is_relative_to(data_dir)
    try:
        runner = CliRunner()
        printed = runner.invoke(app, ["idp", "token", "--user", "amira.haddad", "--url", idp.issuer])
        assert printed.exit_code == 0, printed.output
        verifier = UserVerifier(identity(idp.issuer), production=False)
        assert verifier.verify(printed.output.strip()).subject == "amira.haddad"
        wrong = runner.invoke(app, ["idp", "token", "--user", "amira.haddad", "--password", "x", "--url", idp.issuer])
        assert wrong.exit_code == 1 and "invalid_grant" in wrong.output
        old_kid = idp.signing_kid()
        rotated = runner.invoke(app, ["idp", "rotate"])
        assert rotated.exit_code == 0, rotated.output
        # the CLI edited the keys file; the running IdP signs with the new key from its next request on
        new_kid = idp.signing_kid()
        assert new_kid != old_kid and new_kid in rotated.output
        assert verifier.verify(
            runner.invoke(app, ["idp", "token", "-u", "amira.haddad", "--url", idp.issuer]).output.strip()
        )
        assert runner.invoke(app, ["idp", "retire", old_kid]).exit_code == 0
        assert old_kid not in {k["kid"] for k in httpx.get(idp.issuer + "/jwks").json()["keys"]}
        assert runner.invoke(app, ["idp", "retire", new_kid]).exit_code == 1
    finally:
        server.stop()
    down = CliRunner().invoke(app, ["idp", "token", "-u", "amira.haddad", "--url", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == 1 and "no IdP answering" in down.output


def test_keys_file_stays_private(tmp_path: Path) -> None:
    idp = DevIdP(issuer="http://127.0.0.1:1", data_dir=tmp_path)
    idp.rotate()
    assert stat.S_IMODE(os.stat(idp.keys_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(idp.keys_file.parent).st_mode) & 0o077 == 0
