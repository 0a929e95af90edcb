"""Agent credentials: bearer tokens, stored only as hashes.

A token is ``aq_<key id>_<secret>``: the key id finds the stored entry, the secret is 256 bits from
:mod:`secrets`. The store (``catalog/credentials.yaml`` by default, ``AQUIFER_CREDENTIALS_FILE``) keeps the
SHA-256 of each token, never the token; verification compares hashes in constant time (:func:`hmac.compare_digest`).

Why SHA-256 and not a password hash (argon2, bcrypt): those slow down guessing a low-entropy secret a person chose.
A 256-bit random token cannot be guessed either way, and a deliberately slow hash would add tens of milliseconds to
every request. This is the scheme GitHub and Stripe use for API tokens.

Entries marked ``development_only`` (the demo agents' tokens printed in the README) are refused when
``AQUIFER_ENVIRONMENT=production``. Their secrets are public by design (``development-only-<agent>``), so
:func:`development_token` can give them back to ``aquifer up`` and ``aquifer ask`` without storing any token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aquifer.catalog import Catalog, CatalogError

_TOKEN = re.compile(r"^aq_(?P<key>[a-z0-9]{4,32})_(?P<secret>[A-Za-z0-9_\-]{16,128})$")

_HEADER = """\
# Agent credentials: SHA-256 hashes of bearer tokens, never the tokens themselves.
# Written by `aquifer agents issue-token` and `aquifer agents revoke-token`; see src/aquifer/credentials.py.
# Entries with development_only: true are the demo tokens listed in the README; production refuses them.
"""


class AuthenticationError(PermissionError):
    """The token does not authenticate an agent. The message says why, without echoing the token."""


class Credential(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: Annotated[str, Field(pattern=r"^[a-z0-9]{4,32}$")]
    agent: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    development_only: bool = False
    note: str = ""


class CredentialFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[Credential] = Field(default_factory=list)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def development_token(credential: Credential) -> str | None:
    """The demo token of a ``development_only`` entry (``aq_<key>_development-only-<agent>``), or None when the
    entry is not one or its hash does not match that public form (an issued token is never recoverable)."""
    if not credential.development_only:
        return None
    token = f"aq_{credential.key_id}_development-only-{credential.agent.replace('_', '-')}"
    return token if hmac.compare_digest(hash_token(token), credential.sha256) else None


class CredentialStore:
    """The hashes of every issued token, read from (and written to) one YAML file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Credential]:
        if not self.path.exists():
            return {}
        try:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            parsed = CredentialFile.model_validate(raw)
        except yaml.YAMLError as exc:
            raise CatalogError(self.path, "<file>", f"not valid YAML: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CatalogError(self.path, ".".join(str(p) for p in first["loc"]), first["msg"]) from exc
        entries: dict[str, Credential] = {}
        for i, cred in enumerate(parsed.tokens):
            if cred.key_id in entries:
                raise CatalogError(self.path, f"tokens.{i}.key_id", f"duplicate key id {cred.key_id!r}")
            entries[cred.key_id] = cred
        return entries

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Credential]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = self.load()
            yield entries
            doc = {"tokens": [c.model_dump(mode="json", exclude_none=True) for c in entries.values()]}
            tmp = self.path.with_suffix(".yaml.tmp")
            tmp.write_text(_HEADER + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
            os.replace(tmp, self.path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def issue(
        self,
        agent_id: str,
        *,
        catalog: Catalog,
        note: str = "",
        expires_in: dt.timedelta | None = None,
        token: str | None = None,
        development_only: bool = False,
    ) -> str:
        """Create a token for ``agent_id``, store its hash and return the token (the only time it is seen)."""
        catalog.agent(agent_id)  # KeyError naming the registered agents
        if token is None:
            token = f"aq_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
        match = _TOKEN.match(token)
        if not match:
            msg = "a token must look like aq_<key id: 4-32 of a-z0-9>_<secret: 16-128 URL-safe characters>"
            raise ValueError(msg)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with self._editing() as entries:
            if match["key"] in entries:
                msg = f"key id {match['key']!r} is already issued; revoke it first"
                raise ValueError(msg)
            entries[match["key"]] = Credential(
                key_id=match["key"],
                agent=agent_id,
                sha256=hash_token(token),
                created_at=now,
                expires_at=now + expires_in if expires_in else None,
                development_only=development_only,
                note=note,
            )
        return token

    def revoke(self, key_id: str) -> Credential:
        with self._editing() as entries:
            if key_id not in entries:
                msg = f"no token with key id {key_id!r} in {self.path}"
                raise KeyError(msg)
            return entries.pop(key_id)


class Authenticator:
    """Token -> agent id. Re-reads the store when the file changes, so a revocation applies at once."""

    def __init__(self, store: CredentialStore, *, production: bool) -> None:
        self.store, self.production = store, production
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, Credential] = {}

    def _current(self) -> dict[str, Credential]:
        try:
            st = self.store.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._entries, self._stamp = self.store.load(), stamp
        return self._entries

    def authenticate(self, token: str | None, *, catalog: Catalog) -> str:
        if not token:
            msg = "missing bearer token"
            raise AuthenticationError(msg)
        match = _TOKEN.match(token)
        entry = self._current().get(match["key"]) if match else None
        # Hash and compare even when the key id is unknown, so timing does not reveal which key ids exist.
        expected = entry.sha256 if entry else "0" * 64
        if not hmac.compare_digest(hash_token(token), expected) or entry is None:
            msg = "invalid token"
            raise AuthenticationError(msg)
        if entry.expires_at is not None and entry.expires_at <= dt.datetime.now(dt.UTC):
            msg = f"token {entry.key_id} expired at {entry.expires_at.isoformat()}"
            raise AuthenticationError(msg)
        if entry.development_only and self.production:
            msg = f"token {entry.key_id} is a development token, refused in production"
            raise AuthenticationError(msg)
        if entry.agent not in catalog.agents:
            msg = f"token {entry.key_id} belongs to agent {entry.agent!r}, which is no longer registered"
            raise AuthenticationError(msg)
        return entry.agent
