"""Verify user tokens (OIDC JWTs) against the issuers of ``catalog/identity.yaml`` and map them to a :class:`User`.

How a token is checked, in order (each refusal is a :class:`UserTokenError` with a stable ``code``, HTTP 401):

1. shape: a compact JWS (three base64url parts), ASCII, at most :data:`MAX_TOKEN_CHARS`;
2. the issuer, chosen by the *unverified* ``iss`` (the signature check below then proves it): one configured in
   ``identity.yaml``, and not a ``development_only`` one in production;
3. the header's ``alg`` is one the issuer is trusted for (never ``none``, never HS*: the catalog only allows
   asymmetric algorithms), and the key named by ``kid`` is published by the issuer for exactly that algorithm;
4. :func:`jwt.decode` with the key bound to its algorithm (``algorithms=[key.algorithm_name]``), the issuer's
   audiences, its exact ``iss``, its leeway, and ``exp``/``iat``/``iss``/``aud`` (and ``sub`` when it is the subject
   claim) required;
5. the claim map: subject, groups and attributes must be well-formed principals / short texts.

Keys. We fetch the JWKS ourselves (httpx) and parse each key once into a :class:`jwt.PyJWK`, rather than use
:class:`jwt.PyJWKClient`: its per-kid LRU has no TTL (a key removed from the JWKS keeps verifying) and its cooldown
counts from *every* fetch (a key published right after a routine refresh is refused for the whole cooldown). Here:

- the key set of an issuer lives ``jwks_ttl_s`` from its fetch; past that the next verify refetches it (discovery
  included) and replaces it whole, so a retired key stops verifying; if the refetch fails, :class:`IdentityUnavailable`
  (503): expired keys are never served, the verifier fails closed;
- an unknown ``kid`` triggers exactly one refetch of the JWKS, at most once per ``refetch_cooldown_s`` (counted from
  the previous unknown-kid refetch only), so a flood of random kids costs the IdP one GET per cooldown; none when the
  keys were fetched during that very verify (a cold or expired cache);
- after a failed fetch, further fetches wait ``refetch_cooldown_s`` too (requests fail fast with 503 meanwhile,
  instead of queueing behind an IdP that does not answer).

Thread-safe: the key set is an immutable snapshot swapped atomically; fetches of one issuer are serialised by its
lock, and the warm path (known kid, fresh keys) takes no lock and makes no HTTP call.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKClientError
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from aquifer.catalog import Identity, Issuer
from aquifer.identity.user import MAX_ATTRIBUTE_CHARS, MAX_GROUPS, User
from aquifer.ids import is_principal_name

MAX_TOKEN_CHARS = 16 * 1024
"""A longer token is refused before any parsing (no IdP issues tokens this large; an attacker's could be)."""
MAX_DOCUMENT_BYTES = 1024 * 1024
"""The largest discovery document or JWKS read from an IdP."""
DEFAULT_REFETCH_COOLDOWN_S = 5.0


class UserTokenError(Exception):
    """The user token is refused (HTTP 401). ``code`` is stable; the message names what is wrong (the claim, the
    algorithm, the issuer) and never contains the token."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class IdentityUnavailable(Exception):
    """The issuer's keys cannot be obtained and none are cached within their TTL (HTTP 503: fail closed)."""

    code = "identity_provider_unavailable"


INVALID = "user_token_invalid"
EXPIRED = "user_token_expired"
NOT_YET_VALID = "user_token_not_yet_valid"
UNTRUSTED_ISSUER = "user_token_untrusted_issuer"
WRONG_AUDIENCE = "user_token_wrong_audience"


def _shown(value: Any, limit: int = 80) -> str:
    """An attacker-chosen value as a message may show it: repr'd (no control characters) and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class _KeySet:
    """One fetch of an issuer's JWKS: usable keys by kid (``None`` for keys without one), and when it was fetched."""

    keys: Mapping[str | None, tuple[PyJWK, ...]]
    fetched_at: float


@dataclass(slots=True)
class _IssuerKeys:
    """The keys of one issuer, with the fetching rules of the module docstring."""

    issuer: Issuer
    timeout_s: float
    cooldown_s: float
    snapshot: _KeySet | None = None
    jwks_uri: str | None = None
    last_kid_refetch: float = -math.inf
    last_failure: float = -math.inf
    last_problem: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: httpx.Client | None = None

    def __post_init__(self) -> None:
        self.jwks_uri = self.issuer.jwks_uri

    def fresh(self, now: float) -> _KeySet | None:
        snap = self.snapshot
        return snap if snap is not None and now - snap.fetched_at < self.issuer.jwks_ttl_s else None

    def current(self) -> _KeySet:
        """The key set within its TTL, fetching it when there is none (IdentityUnavailable when that fails)."""
        now = time.monotonic()
        snap = self.fresh(now)
        if snap is not None:
            return snap
        with self.lock:
            now = time.monotonic()
            snap = self.fresh(now)
            if snap is not None:  # another thread fetched it while we waited
                return snap
            if now - self.last_failure < self.cooldown_s:
                raise IdentityUnavailable(self.last_problem)
            return self._refresh(discover=self.issuer.jwks_uri is None)

    def after_unknown_kid(self, seen: _KeySet) -> _KeySet | None:
        """A newer key set after ``seen`` lacked a kid: one refetch unless one happened within the cooldown (then
        ``None``). A failed refetch is IdentityUnavailable: the kid may well be a key we could not fetch."""
        with self.lock:
            snap = self.snapshot
            if snap is not None and snap is not seen:  # refetched by another thread meanwhile: use that
                return snap
            now = time.monotonic()
            if now - self.last_kid_refetch < self.cooldown_s:
                return None
            self.last_kid_refetch = now
            if now - self.last_failure < self.cooldown_s:
                raise IdentityUnavailable(self.last_problem)
            return self._refresh(discover=False)

    def _refresh(self, *, discover: bool) -> _KeySet:
        """Fetch (discovery when asked or not done yet, then the JWKS) and replace the key set. Under the lock."""
        try:
            if discover or self.jwks_uri is None:
                self.jwks_uri = self._discover()
            keys = self._fetch_jwks(self.jwks_uri)
        except IdentityUnavailable as exc:
            self.last_failure, self.last_problem = time.monotonic(), str(exc)
            raise
        snap = _KeySet(keys=keys, fetched_at=time.monotonic())
        self.snapshot = snap
        return snap

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        if self.client is None:
            # used only under self.lock, so never concurrently; no redirects: the documents are where they are said
            self.client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)
        try:
            with self.client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                if response.status_code != 200:
                    msg = f"issuer {self.issuer.id}: {what} {url} answered HTTP {response.status_code}"
                    raise IdentityUnavailable(msg)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        msg = f"issuer {self.issuer.id}: {what} {url} is larger than {MAX_DOCUMENT_BYTES} bytes"
                        raise IdentityUnavailable(msg)
        except httpx.HTTPError as exc:
            msg = f"issuer {self.issuer.id}: {what} {url} unreachable: {type(exc).__name__}: {exc}"
            raise IdentityUnavailable(msg) from None
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            msg = f"issuer {self.issuer.id}: {what} {url} is not a JSON object"
            raise IdentityUnavailable(msg)
        return doc

    def _discover(self) -> str:
        url = self.issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url, "discovery document")
        if doc.get("issuer") != self.issuer.issuer:
            msg = (
                f"issuer {self.issuer.id}: discovery document {url} names issuer {_shown(doc.get('issuer'))}, "
                f"not the configured {self.issuer.issuer!r}"
            )
            raise IdentityUnavailable(msg)
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            msg = f"issuer {self.issuer.id}: discovery document {url} has no http(s) jwks_uri"
            raise IdentityUnavailable(msg)
        return uri

    def _fetch_jwks(self, url: str) -> dict[str | None, tuple[PyJWK, ...]]:
        doc = self._get_json(url, "JWKS")
        entries = doc.get("keys")
        if not isinstance(entries, list):
            msg = f"issuer {self.issuer.id}: JWKS {url} has no keys list"
            raise IdentityUnavailable(msg)
        keys: dict[str | None, list[PyJWK]] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if kid is not None and not isinstance(kid, str):
                continue
            try:
                key = PyJWK(entry)
            except (jwt.PyJWTError, TypeError, ValueError, KeyError):
                continue  # a key type we cannot use (or a malformed one) must not hide the others
            if key.algorithm_name in self.issuer.algorithms:
                keys.setdefault(kid, []).append(key)
        if not keys:
            msg = f"issuer {self.issuer.id}: JWKS {url} has no usable key for {', '.join(self.issuer.algorithms)}"
            raise IdentityUnavailable(msg)
        return {kid: tuple(found) for kid, found in keys.items()}

    def close(self) -> None:
        with self.lock:
            client, self.client = self.client, None
        if client is not None:
            client.close()


def _b64_json(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError):
        value = None
    if not isinstance(value, dict):
        raise UserTokenError(INVALID, f"user token {what} is not a base64url JSON object")
    return value


def _unverified(token: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload before any verification: only to choose the issuer and the key."""
    if not isinstance(token, str) or not token:
        raise UserTokenError(INVALID, "user token is empty or not text")
    if len(token) > MAX_TOKEN_CHARS:
        raise UserTokenError(INVALID, f"user token is longer than {MAX_TOKEN_CHARS} characters")
    if not token.isascii():
        raise UserTokenError(INVALID, "user token is not a JWT (non-ASCII characters)")
    parts = token.split(".")
    if len(parts) != 3:
        what = "an encrypted JWT (JWE), which is not supported" if len(parts) == 5 else "a signed JWT"
        raise UserTokenError(INVALID, f"user token is not {what}: {len(parts)} dot-separated parts")
    return _b64_json(parts[0], "header"), _b64_json(parts[1], "payload")


class UserVerifier:
    """Verifies user tokens for the issuers of ``identity`` and maps them to :class:`User`.

    ``production`` refuses ``development_only`` issuers. ``http_timeout_s`` bounds each discovery or JWKS request;
    ``refetch_cooldown_s`` is the least time between two refetches for an unknown kid (and after a failed fetch).
    """

    def __init__(
        self,
        identity: Identity,
        *,
        production: bool,
        http_timeout_s: float = 5.0,
        refetch_cooldown_s: float = DEFAULT_REFETCH_COOLDOWN_S,
    ) -> None:
        self.identity = identity
        self.production = production
        self._keys = {
            i.issuer: _IssuerKeys(i, timeout_s=http_timeout_s, cooldown_s=refetch_cooldown_s) for i in identity.issuers
        }
        self._options: dict[str, dict[str, Any]] = {
            i.issuer: {"require": ["exp", "iat", "iss", "aud", *(["sub"] if i.claims.subject == "sub" else [])]}
            for i in identity.issuers
        }

    def warm(self) -> dict[str, str]:
        """Fetch discovery and JWKS of every issuer usable here; the problems by issuer id (empty: all well).
        Never raises. Development-only issuers are skipped in production (every token of theirs is refused)."""
        problems: dict[str, str] = {}
        for keys in self._keys.values():
            if self.production and keys.issuer.development_only:
                continue
            try:
                keys.current()
            except IdentityUnavailable as exc:
                problems[keys.issuer.id] = str(exc)
            except Exception as exc:  # warm() reports, it never raises
                problems[keys.issuer.id] = f"{type(exc).__name__}: {exc}"
        return problems

    def verify(self, token: str) -> User:
        """The user ``token`` proves; :class:`UserTokenError` (401) or :class:`IdentityUnavailable` (503)."""
        header, payload = _unverified(token)
        iss = payload.get("iss")
        if not isinstance(iss, str):
            raise UserTokenError(INVALID, "user token has no iss claim (or not a string)")
        keys = self._keys.get(iss)
        if keys is None:
            raise UserTokenError(UNTRUSTED_ISSUER, f"user token issuer {_shown(iss)} is not configured")
        issuer = keys.issuer
        if self.production and issuer.development_only:
            msg = f"issuer {issuer.id} ({issuer.issuer}) is development-only and refused in production"
            raise UserTokenError(UNTRUSTED_ISSUER, msg)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            allowed = ", ".join(issuer.algorithms)
            msg = f"algorithm {_shown(alg)} is not allowed for issuer {issuer.id} (allowed: {allowed})"
            raise UserTokenError(INVALID, msg)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise UserTokenError(INVALID, "user token kid header is not a string")
        key = self._key(keys, kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=issuer.audiences,
                issuer=issuer.issuer,
                leeway=issuer.leeway_s,
                options=self._options[iss],  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise UserTokenError(EXPIRED, f"user token of issuer {issuer.id} has expired (exp)") from None
        except jwt.ImmatureSignatureError as exc:
            which = "iat" if "iat" in str(exc) else "nbf"
            msg = f"user token of issuer {issuer.id} is not valid yet ({which} is in the future)"
            raise UserTokenError(NOT_YET_VALID, msg) from None
        except jwt.MissingRequiredClaimError as exc:
            raise UserTokenError(INVALID, f"user token lacks the required claim {exc.claim!r}") from None
        except jwt.InvalidAudienceError:
            msg = f"user token audience (aud) is not one of {issuer.audiences} for issuer {issuer.id}"
            raise UserTokenError(WRONG_AUDIENCE, msg) from None
        except jwt.InvalidIssuerError:
            raise UserTokenError(UNTRUSTED_ISSUER, f"user token iss is not {issuer.issuer!r}") from None
        except jwt.InvalidSignatureError:
            msg = f"user token signature does not verify with key {_shown(kid)} of issuer {issuer.id}"
            raise UserTokenError(INVALID, msg) from None
        except (InvalidSubjectError, InvalidJTIError) as exc:
            claim = "sub" if isinstance(exc, InvalidSubjectError) else "jti"
            raise UserTokenError(INVALID, f"user token claim {claim!r} is not a string") from None
        except jwt.InvalidAlgorithmError:
            raise UserTokenError(INVALID, f"algorithm {alg!r} does not match key {_shown(kid)}") from None
        except (jwt.PyJWTError, PyJWKClientError, TypeError, ValueError) as exc:
            # DecodeError and friends: ill-typed exp/iat/nbf/jti/sub, bad base64... (PyJWT's message has no token)
            raise UserTokenError(INVALID, f"user token refused: {type(exc).__name__}: {exc}") from None
        return self._user(issuer, claims)

    def _key(self, keys: _IssuerKeys, kid: str | None, alg: str) -> PyJWK:
        asked = time.monotonic()
        snap = keys.current()
        found = self._pick(snap, kid, alg, keys.issuer)
        if found is not None:
            return found
        # keys fetched during this very call are as fresh as a refetch would be
        newer = keys.after_unknown_kid(snap) if snap.fetched_at < asked else None
        found = self._pick(newer, kid, alg, keys.issuer) if newer is not None else None
        if found is not None:
            return found
        if kid is None:
            msg = f"user token has no kid and issuer {keys.issuer.id} publishes no single {alg} key without one"
        else:
            msg = f"user token key {_shown(kid)} ({alg}) is not published by issuer {keys.issuer.id}"
        raise UserTokenError(INVALID, msg)

    @staticmethod
    def _pick(snap: _KeySet, kid: str | None, alg: str, issuer: Issuer) -> PyJWK | None:
        """The key ``kid`` names for ``alg``; None when it is unknown (worth a refetch). A known kid bound to another
        algorithm is a refusal at once (no refetch)."""
        if kid is None:
            candidates = [k for found in snap.keys.values() for k in found if k.algorithm_name == alg]
            return candidates[0] if len(candidates) == 1 else None
        found = snap.keys.get(kid)
        if not found:
            return None
        for key in found:
            if key.algorithm_name == alg:
                return key
        msg = f"user token says {alg} but key {_shown(kid)} of issuer {issuer.id} is for {found[0].algorithm_name}"
        raise UserTokenError(INVALID, msg)

    @staticmethod
    def _user(issuer: Issuer, claims: dict[str, Any]) -> User:
        names = issuer.claims
        subject = claims.get(names.subject)
        if subject is None:
            raise UserTokenError(INVALID, f"user token lacks the subject claim {names.subject!r}")
        if not is_principal_name(subject):
            msg = f"user token subject claim {names.subject!r} is not a principal name (1-200 characters, no spaces)"
            raise UserTokenError(INVALID, msg)
        groups = claims.get(names.groups, ())
        if not isinstance(groups, (list, tuple)):
            raise UserTokenError(INVALID, f"user token groups claim {names.groups!r} is not a list of strings")
        if len(groups) > MAX_GROUPS:
            raise UserTokenError(INVALID, f"user token lists more than {MAX_GROUPS} groups in {names.groups!r}")
        for g in groups:
            if not is_principal_name(g):
                msg = f"user token groups claim {names.groups!r} holds {_shown(g, 40)}, not a group name"
                raise UserTokenError(INVALID, msg)
        attributes: dict[str, str] = {}
        for name, claim in names.attributes.items():
            if claim not in claims:
                continue
            value = claims[claim]
            if (
                not isinstance(value, str)
                or not 0 < len(value) <= MAX_ATTRIBUTE_CHARS
                or any(ord(c) < 32 or ord(c) == 127 for c in value)
            ):
                msg = (
                    f"user token claim {claim!r} (attribute {name}) is not a text of 1-{MAX_ATTRIBUTE_CHARS} characters"
                )
                raise UserTokenError(INVALID, msg)
            attributes[name] = value
        return User(issuer.id, subject, tuple(groups), tuple(attributes.items()))

    def close(self) -> None:
        """Close the HTTP clients (cached keys keep verifying; a later fetch opens a new client)."""
        for keys in self._keys.values():
            keys.close()

    def __enter__(self) -> UserVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
