"""The development IdP: a small OIDC issuer for the demo users, which ``aquifer up`` starts (``aquifer idp serve``).

Development only: :class:`DevIdP` refuses to exist when ``AQUIFER_ENVIRONMENT=production``; the issuer is also
``development_only`` in ``catalog/identity.yaml``, so its tokens are refused in production anyway.

- ``GET /.well-known/openid-configuration``: discovery (issuer, jwks_uri, token_endpoint, ...);
- ``GET /jwks``: the public keys (never a private part);
- ``POST /token`` (form-encoded, RFC 6749 resource owner password grant): ``grant_type=password``, ``username``,
  ``password`` (every demo user's password is :data:`DEMO_PASSWORD`, ``demo``), ``client_id`` (the audience, default
  ``aquifer``). Answers ``access_token`` = ``id_token`` (the same ES256 JWT), ``token_type``, ``expires_in``.

Tokens carry ``iss, sub`` (the username), ``aud, iat, nbf, exp, jti, name, email, department, groups``, the user's
entry in the users file (``src/aquifer/sample/users.json``), which is re-read for every token: remove a user from a
group and their next token says so.

Keys: an ES256 key (signs by default) and an RS256 key, generated on first start into ``<data_dir>/idp/keys.json``
(mode 0600; PEM private keys, so it is a secret even for a demo). :meth:`DevIdP.rotate` publishes a new key and signs
with it from then on; the old one stays in the JWKS for a grace period (default: the token lifetime plus a minute, so
tokens it signed stay verifiable) or until :meth:`DevIdP.retire` removes it. The keys file is re-read whenever it
changes, so ``aquifer idp rotate`` in another terminal takes effect on the running IdP.

Tests run it in-process (:meth:`DevIdP.start`: uvicorn in a thread, with ``stop()``) and mint tokens with arbitrary
claims and keys (:meth:`DevIdP.make_token`, :meth:`DevIdP.sign`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEFAULT_PORT = 8790
DEFAULT_ISSUER = f"http://127.0.0.1:{DEFAULT_PORT}"
DEMO_PASSWORD = "demo"
"""Every demo user's password (development only)."""
DEFAULT_TTL_S = 3600
DEFAULT_CLIENTS = ("aquifer",)
ALGORITHMS = ("ES256", "RS256")
USERS_FILE = Path(__file__).resolve().parents[1] / "sample" / "users.json"
MAX_FORM_BYTES = 64 * 1024

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class DevIdPRefused(RuntimeError):
    """The development IdP may not run here (production)."""


@dataclass(frozen=True, slots=True)
class DevKey:
    """One signing key: ``retire_at`` (epoch seconds) is when it leaves the JWKS; None while it is published."""

    kid: str
    alg: str
    private: PrivateKey
    created_at: float
    retire_at: float | None = None

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        jwk = (
            ECAlgorithm.to_jwk(public, as_dict=True)
            if isinstance(public, ec.EllipticCurvePublicKey)
            else RSAAlgorithm.to_jwk(public, as_dict=True)
        )
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def stored(self) -> dict[str, Any]:
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "kid": self.kid,
            "alg": self.alg,
            "private_pem": pem,
            "created_at": self.created_at,
            "retire_at": self.retire_at,
        }

    @staticmethod
    def load(entry: dict[str, Any]) -> DevKey:
        private = serialization.load_pem_private_key(entry["private_pem"].encode(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            msg = f"key {entry['kid']}: not an EC or RSA private key"
            raise ValueError(msg)
        return DevKey(entry["kid"], entry["alg"], private, float(entry["created_at"]), entry.get("retire_at"))


def new_key(alg: str) -> DevKey:
    """A fresh key for ``alg`` (ES256: P-256; RS256: RSA 2048), with a random kid."""
    if alg == "ES256":
        private: PrivateKey = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        msg = f"the development IdP signs with {' or '.join(ALGORITHMS)}, not {alg!r}"
        raise ValueError(msg)
    return DevKey(f"{alg.lower()}-{secrets.token_hex(6)}", alg, private, time.time())


class DevIdP:
    """The development OIDC issuer. ``issuer`` is its exact ``iss`` (and where it serves); keys live under
    ``<data_dir>/idp/``; ``users_file`` lists the demo users; ``ttl_s`` is the token lifetime; ``clients`` the
    accepted ``client_id`` values (each becomes the token's ``aud``).

    Refused (:class:`DevIdPRefused`) when ``environment`` (default: ``settings.environment``) is production.
    """

    def __init__(
        self,
        *,
        issuer: str = DEFAULT_ISSUER,
        data_dir: Path | None = None,
        users_file: Path | None = None,
        ttl_s: int = DEFAULT_TTL_S,
        clients: tuple[str, ...] = DEFAULT_CLIENTS,
        password: str = DEMO_PASSWORD,
        environment: str | None = None,
    ) -> None:
        if environment is None or data_dir is None:
            from aquifer.settings import get_settings

            settings = get_settings()
            environment = environment or settings.environment
            data_dir = data_dir or settings.data_dir
        if environment == "production":
            msg = (
                "the development IdP is refused when AQUIFER_ENVIRONMENT=production: its keys and passwords are "
                "for demos. Configure your organisation's IdP in catalog/identity.yaml instead (docs/identity.md)."
            )
            raise DevIdPRefused(msg)
        self.issuer = issuer.rstrip("/")
        self.keys_file = Path(data_dir) / "idp" / "keys.json"
        self.users_file = users_file or USERS_FILE
        self.ttl_s = ttl_s
        self.clients = clients
        self._password = password
        self._lock = threading.RLock()
        self._keys: dict[str, DevKey] = {}
        self._signing: dict[str, str] = {}
        self._seen: tuple[int, int, int] | None = None
        self.jwks_requests = 0
        """How many times ``GET /jwks`` was answered (tests count refetches with it)."""
        self.discovery_requests = 0
        self.token_requests = 0
        self._sync()

    # -- keys ---------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialises read-modify-write of the keys file across processes (the IdP and ``aquifer idp rotate``)."""
        self.keys_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock, open(self.keys_file.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.keys_file.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _sync(self) -> None:
        """Load the keys file if it changed since last seen; create it (both keys) when it does not exist."""
        if self._stat() == self._seen and self._seen is not None:
            return
        with self._file_lock():
            seen = self._stat()
            if seen is None:
                keys = {k.kid: k for k in (new_key(alg) for alg in ALGORITHMS)}
                self._write(keys, {k.alg: k.kid for k in keys.values()})
                return
            data = json.loads(self.keys_file.read_text())
            self._keys = {e["kid"]: DevKey.load(e) for e in data["keys"]}
            self._signing = dict(data["signing"])
            self._seen = seen

    def _write(self, keys: dict[str, DevKey], signing: dict[str, str]) -> None:
        """Replace the keys file atomically, mode 0600 from its creation. Under the file lock."""
        now = time.time()
        keys = {kid: k for kid, k in keys.items() if k.retire_at is None or k.retire_at > now}
        doc = {"signing": signing, "keys": [k.stored() for k in keys.values()]}
        tmp = self.keys_file.with_name(f".{self.keys_file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, self.keys_file)
        self._keys, self._signing, self._seen = keys, dict(signing), self._stat()

    def published(self) -> list[DevKey]:
        """The keys the JWKS lists now: the signers and the rotated-out ones still in their grace period."""
        self._sync()
        now = time.time()
        with self._lock:
            return [k for k in self._keys.values() if k.retire_at is None or k.retire_at > now]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.published()]}

    def signing_kid(self, alg: str = "ES256") -> str:
        self._sync()
        with self._lock:
            return self._signing[alg]

    def rotate(self, alg: str = "ES256", *, grace_s: float | None = None) -> str:
        """Publish a new ``alg`` key and sign with it from now on; the previous one stays in the JWKS for
        ``grace_s`` (default: the token lifetime plus 60 s). Returns the new kid."""
        grace = self.ttl_s + 60 if grace_s is None else grace_s
        key = new_key(alg)
        with self._file_lock():
            self._sync_locked()
            keys = dict(self._keys)
            old = self._signing.get(alg)
            if old in keys:
                keys[old] = _replace_retire(keys[old], time.time() + grace)
            keys[key.kid] = key
            self._write(keys, {**self._signing, alg: key.kid})
        return key.kid

    def retire(self, kid: str) -> None:
        """Remove ``kid`` from the JWKS (and the keys file) now. A current signing key cannot be: rotate first."""
        with self._file_lock():
            self._sync_locked()
            if kid not in self._keys:
                msg = f"no key {kid!r}; the keys are {sorted(self._keys)}"
                raise KeyError(msg)
            if kid in self._signing.values():
                msg = f"key {kid} signs new tokens; rotate its algorithm first, then retire it"
                raise ValueError(msg)
            self._write({k: v for k, v in self._keys.items() if k != kid}, self._signing)

    def _sync_locked(self) -> None:
        data = json.loads(self.keys_file.read_text())
        self._keys = {e["kid"]: DevKey.load(e) for e in data["keys"]}
        self._signing = dict(data["signing"])
        self._seen = self._stat()

    # -- tokens -------------------------------------------------------------------------------------------------

    def users(self) -> dict[str, dict[str, Any]]:
        """The users file, read now (so an edit shows in the next token)."""
        users = json.loads(self.users_file.read_text())["users"]
        assert isinstance(users, dict)
        return users

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        alg: str = "ES256",
        headers: dict[str, Any] | None = None,
    ) -> str:
        """``claims`` signed as they are, with key ``kid`` (any key in the keys file, published or not) or else the
        current ``alg`` signing key. ``headers`` adds to or overrides the JWS header (None drops one, e.g. kid)."""
        self._sync()
        with self._lock:
            key = self._keys[kid] if kid is not None else self._keys[self._signing[alg]]
        header = {k: v for k, v in {"kid": key.kid, "typ": "JWT", **(headers or {})}.items() if v is not None}
        return jwt.encode(claims, key.private, algorithm=key.alg, headers=header)

    def claims_for(self, username: str, *, ttl_s: int | None = None, **overrides: Any) -> dict[str, Any]:
        """The claims of ``username``'s token; ``overrides`` replace claims, and an override of None drops one."""
        users = self.users()
        if username not in users:
            msg = f"no user {username!r} in {self.users_file}"
            raise KeyError(msg)
        user = users[username]
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": username,
            "aud": self.clients[0],
            "iat": now,
            "nbf": now,
            "exp": now + (self.ttl_s if ttl_s is None else ttl_s),
            "jti": uuid.uuid4().hex,
            **{k: user[k] for k in ("name", "email", "department") if k in user},
            "groups": list(user.get("groups", [])),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def make_token(
        self, username: str, *, ttl_s: int | None = None, kid: str | None = None, alg: str = "ES256", **overrides: Any
    ) -> str:
        """A signed token for ``username`` as ``POST /token`` issues it, with ``overrides`` (None drops a claim)."""
        return self.sign(self.claims_for(username, ttl_s=ttl_s, **overrides), kid=kid, alg=alg)

    def password_ok(self, username: str, password: str) -> bool:
        return username in self.users() and hmac.compare_digest(password.encode(), self._password.encode())

    # -- HTTP ---------------------------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "token_endpoint": f"{self.issuer}/token",
            "grant_types_supported": ["password"],
            "response_types_supported": ["token", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS),
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "profile", "email"],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "iat",
                "nbf",
                "exp",
                "jti",
                "name",
                "email",
                "department",
                "groups",
            ],
        }

    def app(self) -> Starlette:
        """The ASGI app serving discovery, the JWKS and the token endpoint."""

        def count(attr: str) -> None:
            with self._lock:
                setattr(self, attr, getattr(self, attr) + 1)

        async def discovery(_: Request) -> JSONResponse:
            count("discovery_requests")
            return JSONResponse(self.discovery())

        async def jwks(_: Request) -> JSONResponse:
            count("jwks_requests")
            return JSONResponse(self.jwks(), headers={"Cache-Control": "max-age=60"})

        async def healthz(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        async def token(request: Request) -> JSONResponse:
            count("token_requests")
            return self._token(request.headers.get("content-type", ""), await _body(request))

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
                Route("/jwks", jwks, methods=["GET"]),
                Route("/token", token, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"]),
            ]
        )

    def _token(self, content_type: str, body: bytes | None) -> JSONResponse:
        """RFC 6749 section 4.3 (password grant), errors per section 5.2."""
        if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        if body is None:
            return _oauth_error(400, "invalid_request", f"the body is larger than {MAX_FORM_BYTES} bytes")
        try:
            form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            return _oauth_error(400, "invalid_request", "the body is not a valid form")
        repeated = sorted(k for k, v in form.items() if len(v) > 1)
        if repeated:
            return _oauth_error(400, "invalid_request", f"parameters given more than once: {', '.join(repeated)}")
        params = {k: v[0] for k, v in form.items()}
        if params.get("grant_type") != "password":
            return _oauth_error(400, "unsupported_grant_type", "only grant_type=password is supported")
        missing = [p for p in ("username", "password") if not params.get(p)]
        if missing:
            return _oauth_error(400, "invalid_request", f"missing {', '.join(missing)}")
        client = params.get("client_id") or self.clients[0]
        if client not in self.clients:
            return _oauth_error(401, "invalid_client", f"unknown client_id; known: {', '.join(self.clients)}")
        if not self.password_ok(params["username"], params["password"]):
            return _oauth_error(400, "invalid_grant", "unknown user or wrong password")
        issued = self.make_token(params["username"], aud=client)
        answer = {"access_token": issued, "id_token": issued, "token_type": "Bearer", "expires_in": self.ttl_s}
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def serve(self, host: str | None = None, port: int | None = None, *, log_level: str = "info") -> None:
        """Serve in the foreground (``aquifer idp serve``) at the issuer's host and port unless told otherwise."""
        import uvicorn

        where = urlsplit(self.issuer)
        uvicorn.run(
            self.app(), host=host or where.hostname or "127.0.0.1", port=port or where.port or 80, log_level=log_level
        )

    def start(self, host: str | None = None, port: int | None = None) -> ServerThread:
        """Serve in a thread (tests): at the issuer's host and port unless told otherwise; ``stop()`` ends it."""
        where = urlsplit(self.issuer)
        return ServerThread(self.app(), host or where.hostname or "127.0.0.1", port or where.port or 80)


def _replace_retire(key: DevKey, retire_at: float) -> DevKey:
    return DevKey(key.kid, key.alg, key.private, key.created_at, retire_at)


async def _body(request: Request) -> bytes | None:
    """The request body, or None past :data:`MAX_FORM_BYTES` (read no further)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return bytes(body)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="aquifer-dev-idp"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


class ServerThread:
    """An ASGI app on uvicorn in a daemon thread: ready when constructed, gone after :meth:`stop`."""

    def __init__(self, app: Starlette, host: str, port: int, *, timeout_s: float = 10.0) -> None:
        import uvicorn

        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"devidp-{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                msg = f"the development IdP did not start on {host}:{port} (port in use?)"
                raise RuntimeError(msg)
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
