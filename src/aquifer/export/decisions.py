"""The decision-log shipper: tails the hash-chained decision log and exports each record as an OpenTelemetry log
record over OTLP/HTTP (protobuf), at least once, in seq order, resumable. The log stays the source of truth; the
API process takes no part (``aquifer ship-decisions`` is its own process, supervised by ``aquifer up``).

**Where to.** The standard environment (:func:`configured`, :func:`export_config`):
``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/logs``; ``..._HEADERS``,
``..._TIMEOUT`` (seconds, as the Python SDK reads it), ``..._COMPRESSION``, ``..._CERTIFICATE``;
``OTEL_LOGS_EXPORTER=none`` or ``OTEL_SDK_DISABLED=true`` turn it off; ``OTEL_SERVICE_NAME`` /
``OTEL_RESOURCE_ATTRIBUTES`` name the resource (default ``aquifer-decisions``).

**How.** The SDK's own ``OTLPLogExporter``, its ``export(batch)`` called synchronously (never a
``BatchLogRecordProcessor``: it drops records when the collector is down). One call is bounded by the exporter's
timeout, its own retries of 429/502/503/504 and connection errors included. Its SUCCESS is not taken alone as the
acknowledgement: it counts any status below 400 as success and does not follow redirects, so a 3xx would be a silent
loss. The exporter is given a ``requests`` session whose response hook keeps the last answer: a batch is acknowledged
only when the exporter says SUCCESS **and** that answer is 2xx; a ``partial_success`` naming rejected records is
logged as an error (the OTLP specification says not to retry those). The SDK's own per-retry log lines are kept out
of the output; the shipper logs one line per state change (endpoint down, endpoint up, log replaced, chain broken).

**Delivery.** The cursor (``<data_dir>/export/decisions.cursor.json``: log id, last acknowledged seq, its hash) is
written atomically (temporary file, fsync, rename, directory fsync) only after an acknowledgement, so a crash at any
point re-sends at most the batch in flight (same decision ids and seqs). On start the record at the cursor's seq is
read back: another log id (the log was wiped and restarted) or another hash (the log was rewritten) is logged as an
error and the new log is shipped from seq 0, never skipped. Failures back off exponentially with full jitter
(``decision_export_backoff_*``) and halve the batch (a collector's size limit); records are read as a stream from the
segments (:class:`LogTail`), at most ``decision_export_batch_records`` held in memory.

**What leaves** (:class:`Mapper`): OPA decision-log names where they exist (``decision_id``, ``path``, ``revision``,
``result``, ``timestamp``, ``labels``), Aquifer's own fields, and the chain (``seq``, ``hash``, ``prev``, ``log``,
``segment``) so the SIEM can tell a gap. ``decision_export_fields`` narrows the fields; :data:`NEVER_EXPORT` keys are
dropped at any depth; ``decision_export_hash_users`` / ``_groups`` replace user ids by HMAC-SHA256.

>>> configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
True
>>> configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_LOGS_EXPORTER": "none"})
False
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.registry import Collector

from aquifer.audit.log import last_record
from aquifer.export._otlp import ExportConfig, Sender
from aquifer.export._tail import Cursor, CursorError, LogTail, read_cursor, record_at, write_cursor
from aquifer.policy.source import PACKAGE

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from aquifer.settings import Settings

log = logging.getLogger("aquifer.export.decisions")

SERVICE_NAME = "aquifer-decisions"
EVENT_NAME = "aquifer.decision"
POLICY_PATH = PACKAGE
"""OPA's ``path`` of every record: the policy package Aquifer queries (``aquifer/context``)."""
CHAIN = ("seq", "decision_id", "time", "log", "prev", "hash", "segment")
"""Exported whatever ``decision_export_fields`` says: without them a SIEM cannot tell a gap."""
NEVER_EXPORT = frozenset({"text", "texts", "chunk_text", "content", "prompt", "messages", "completion", "token"})
"""Keys dropped at any depth of a record before it leaves, whatever the settings: chunk text and the like. Records
hold none today; a future field of that name must never reach a SIEM."""
ATTRIBUTES = ("decision_id", "seq", "agent", "kind")
"""Fields also set as log-record attributes (what collectors index and route on)."""


class ExportConfigError(ValueError):
    """Decision export is not configured, or configured in a way the shipper refuses (the message names the
    setting)."""


# -- configuration ---------------------------------------------------------------------------------------------------


def _env(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or "").strip()


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether decision records are to be exported: an OTLP endpoint is set, ``OTEL_LOGS_EXPORTER`` is unset or names
    ``otlp``, ``OTEL_SDK_DISABLED`` is not ``true``."""
    env = os.environ if environ is None else environ
    if _env(env, "OTEL_SDK_DISABLED").lower() == "true":
        return False
    exporters = {e.strip().lower() for e in (_env(env, "OTEL_LOGS_EXPORTER") or "otlp").split(",") if e.strip()}
    if "otlp" not in exporters:
        return False
    return bool(_env(env, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or _env(env, "OTEL_EXPORTER_OTLP_ENDPOINT"))


def export_config(environ: Mapping[str, str] | None = None) -> ExportConfig:
    """The endpoint and export timeout the environment gives, checked; :class:`ExportConfigError` names the variable
    at fault (the SDK would only warn and fall back)."""
    env = os.environ if environ is None else environ
    if not configured(env):
        msg = (
            "no OTLP endpoint: set OTEL_EXPORTER_OTLP_LOGS_ENDPOINT (e.g. http://127.0.0.1:4318/v1/logs) or "
            "OTEL_EXPORTER_OTLP_ENDPOINT (and not OTEL_LOGS_EXPORTER=none / OTEL_SDK_DISABLED=true)"
        )
        raise ExportConfigError(msg)
    logs_only = bool(_env(env, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"))
    name = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" if logs_only else "OTEL_EXPORTER_OTLP_ENDPOINT"
    given = _env(env, name)
    endpoint = given if logs_only else given.rstrip("/") + "/v1/logs"
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ExportConfigError(f"{name}: {given!r} is not an http:// or https:// URL")
    for var in ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        if (value := _env(env, var)) and value.lower() != "http/protobuf":
            raise ExportConfigError(f"{var}: {value!r} is not supported (http/protobuf only)")
    for var in ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        if (value := _env(env, var)) and value.lower() not in ("none", "gzip", "deflate"):
            raise ExportConfigError(f"{var}: {value!r} is not none, gzip or deflate")
    for var in (
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
    ):
        if _env(env, var):
            raise ExportConfigError(f"{var}: not supported by the shipper (use OTEL_EXPORTER_OTLP_LOGS_HEADERS)")
    timeout_s = 10.0
    for var in ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        if value := _env(env, var):
            try:
                timeout_s = float(value)
            except ValueError:
                timeout_s = float("nan")
            if not 0 < timeout_s <= 600:
                raise ExportConfigError(f"{var}: {value!r} is not a number of seconds in (0, 600]")
            break
    return ExportConfig(endpoint, timeout_s)


def cursor_path(settings: Settings) -> Path:
    return settings.decision_export_cursor or settings.data_dir / "export" / "decisions.cursor.json"


def _hash_key(settings: Settings) -> bytes | None:
    secret = settings.decision_export_hash_key
    if not (settings.decision_export_hash_users or settings.decision_export_hash_groups) or secret is None:
        return None
    key = secret.get_secret_value()
    if len(key) < 16:
        raise ExportConfigError("AQUIFER_DECISION_EXPORT_HASH_KEY: shorter than 16 characters")
    placeholder = ("changeme", "change-me", "change_me", "placeholder", "example", "development", "xxxxxxxx")
    if settings.environment == "production" and (any(p in key.lower() for p in placeholder) or len(set(key)) < 4):
        raise ExportConfigError("AQUIFER_DECISION_EXPORT_HASH_KEY: a placeholder, refused in production")
    return key.encode()


# -- what leaves -----------------------------------------------------------------------------------------------------


def _scrub(value: Any) -> Any:
    """A copy of ``value`` without :data:`NEVER_EXPORT` keys at any depth (lists of scalars are shared as they are:
    they hold no key)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in NEVER_EXPORT}
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return [_scrub(v) for v in value]
    return value


class Mapper:
    """A log record as it leaves: its body, attributes and timestamps.

    >>> body = Mapper(labels={"id": "i", "version": "0"}).body(
    ...     {"seq": 1, "decision_id": "dec_1", "time": "2026-01-01T00:00:00+00:00", "log": "log_a", "prev": "log_a",
    ...      "hash": "h", "segment": "s", "agent": "a", "request_allow": True, "resources": [], "text": "never"})
    >>> body["path"], body["result"]["allow"], body["seq"], "text" in body
    ('aquifer/context', True, 1, False)
    """

    def __init__(
        self,
        *,
        fields: Iterable[str] | None = None,
        hash_key: bytes | None = None,
        hash_users: bool = False,
        hash_groups: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        from aquifer.audit.records import SCHEMA

        chosen = set(SCHEMA) if fields is None else set(fields)
        if bad := sorted(chosen & NEVER_EXPORT):
            raise ExportConfigError(f"AQUIFER_DECISION_EXPORT_FIELDS: {bad[0]!r} is never exported")
        self.fields = (chosen & set(SCHEMA)) | set(CHAIN)
        if (hash_users or hash_groups) and not hash_key:
            raise ExportConfigError("AQUIFER_DECISION_EXPORT_HASH_KEY: not set, but user ids are to be hashed")
        self._key = hash_key or b""
        self.hash_users, self.hash_groups = hash_users, hash_groups
        self.labels = dict(labels or {})

    @classmethod
    def from_settings(cls, settings: Settings, labels: Mapping[str, str]) -> Mapper:
        return cls(
            fields=settings.decision_export_fields,
            hash_key=_hash_key(settings),
            hash_users=settings.decision_export_hash_users,
            hash_groups=settings.decision_export_hash_groups,
            labels=labels,
        )

    def pseudonym(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under the configured key, hex."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def _principal(self, principal: str) -> str:
        kind, _, name = principal.partition(":")
        if (kind == "user" and self.hash_users) or (kind == "group" and self.hash_groups):
            return f"{kind}:{self.pseudonym(name)}"
        return principal

    def _resource(self, resource: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = _scrub(resource)
        for key in ("acl", "admitted_by"):
            if isinstance(out.get(key), list):
                out[key] = [self._principal(p) if isinstance(p, str) else p for p in out[key]]
        return out

    def body(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The log record's body (an OTLP kvlist): see docs/decision-export.md for each field."""
        allowed = self.fields
        out: dict[str, Any] = {
            "decision_id": record["decision_id"],
            "path": POLICY_PATH,
            "timestamp": record["time"],
            "labels": self.labels,
        }
        if "revision" in allowed:
            out["revision"] = record.get("revision")
        result: dict[str, Any] = {}
        if "request_allow" in allowed:
            result["allow"] = record.get("request_allow")
        if "request_reasons" in allowed:
            result["reasons"] = record.get("request_reasons") or []
        if "resources" in allowed:
            resources = [self._resource(r) for r in record.get("resources") or [] if isinstance(r, dict)]
            result["resources"] = resources  # each: id, allow, served, reasons, redacted, label, lineage, ...
            out["served"] = [r.get("id") for r in resources if r.get("served")]
            out["withheld"] = [r.get("id") for r in resources if not r.get("served")]
        out["result"] = result
        for name in ("kind", "channel", "tool", "agent", "purpose", "model", "locality", "alerts", "ref", "upstream"):
            if name in allowed:
                out[name] = _scrub(record.get(name))
        if "user" in allowed:
            user = record.get("user")
            out["user"] = self.pseudonym(user) if self.hash_users and isinstance(user, str) else user
        if "user_groups" in allowed:
            groups = record.get("user_groups")
            if self.hash_groups and isinstance(groups, list):
                groups = [self.pseudonym(g) if isinstance(g, str) else g for g in groups]
            out["user_groups"] = groups
        if "withheld" in allowed:
            out["withheld_sources"] = record.get("withheld")
        for name in ("seq", "hash", "prev", "log", "segment"):
            out[name] = record.get(name)
        return out  # every value built here or scrubbed; every key one of ours (none in NEVER_EXPORT)

    def attributes(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {k: body[k] for k in ATTRIBUTES if body.get(k) is not None}


def unix_nanos(iso: str) -> int:
    """An ISO time (the record's ``time``) as integer nanoseconds since the epoch, exactly.

    >>> unix_nanos("1970-01-01T00:00:01.000002+00:00")
    1000002000
    """
    moment = dt.datetime.fromisoformat(iso)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aquifer")
    except PackageNotFoundError:
        return "unknown"


class Encoder:
    """Decision records as the SDK's ``ReadableLogRecord`` objects, under one resource and scope."""

    def __init__(self, mapper: Mapper | None = None, *, settings: Settings | None = None) -> None:
        from opentelemetry.sdk._logs import ReadableLogRecord
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        version = _version()
        # ours first, then the environment's (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) over it
        attrs = {"service.name": SERVICE_NAME, "service.version": version}
        self.resource = Resource.create(attrs).merge(OTELResourceDetector().detect())
        instance = str(self.resource.attributes.get("service.instance.id") or "")
        labels = {"id": instance, "version": version}
        if mapper is None:
            mapper = Mapper.from_settings(settings, labels) if settings is not None else Mapper(labels=labels)
        self.mapper = mapper
        self.scope = InstrumentationScope("aquifer.export.decisions", version)
        self._readable = ReadableLogRecord

    def encode(self, record: Mapping[str, Any]) -> Any:
        from opentelemetry._logs import LogRecord, SeverityNumber
        from opentelemetry.context import Context

        body = self.mapper.body(record)
        at = unix_nanos(record["time"])
        entry = LogRecord(
            timestamp=at,
            observed_timestamp=at,
            context=Context(),  # no span: a record is not part of the shipper's own trace
            severity_text="INFO",
            severity_number=SeverityNumber.INFO,
            body=body,
            attributes=self.mapper.attributes(body),
            event_name=EVENT_NAME,
        )
        return self._readable(log_record=entry, resource=self.resource, instrumentation_scope=self.scope)


# -- lag -------------------------------------------------------------------------------------------------------------


def export_lag(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """Head seq, cursor seq and their difference, from the cursor file and the log's last record (cheap: no segment
    is read whole). None when export is not configured. A missing or unreadable cursor, or one of another log, counts
    as seq 0."""
    if not configured(environ):
        return None
    head = last_record(settings.decisions_dir) if settings.decisions_dir.is_dir() else None
    try:
        cursor = read_cursor(cursor_path(settings))
    except CursorError:
        cursor = None
    head_seq = int(head["seq"]) if head else 0
    same_log = cursor is not None and (head is None or cursor.log == head.get("log"))
    cursor_seq = cursor.seq if cursor is not None and same_log else 0
    return {"head_seq": head_seq, "cursor_seq": cursor_seq, "lag_records": max(0, head_seq - cursor_seq)}


class LagCollector(Collector):
    """``aquifer_decision_export_lag_records`` and ``aquifer_decision_export_cursor_seq``, computed on each scrape;
    nothing when export is not configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            lag = export_lag(self.settings)
        except (OSError, ValueError) as exc:  # a scrape never fails on the log
            log.warning("decision export lag: %s", exc)
            return
        if lag is None:
            return
        yield GaugeMetricFamily(
            "aquifer_decision_export_lag_records",
            "Decision-log records not yet acknowledged by the OTLP endpoint (log head seq - cursor seq)",
            value=lag["lag_records"],
        )
        yield GaugeMetricFamily(
            "aquifer_decision_export_cursor_seq",
            "Last decision-log seq the OTLP endpoint acknowledged",
            value=lag["cursor_seq"],
        )


def export_metadata(settings: Settings) -> dict[str, int]:
    """``export_lag_records`` and ``export_cursor_seq`` for asset metadata; empty when export is not configured."""
    lag = export_lag(settings)
    return {} if lag is None else {"export_lag_records": lag["lag_records"], "export_cursor_seq": lag["cursor_seq"]}


# -- shipping --------------------------------------------------------------------------------------------------------


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """The wait after the ``attempt``-th failure in a row: full jitter, uniform in [0, min(cap, base * 2^(n-1))].

    >>> 0 <= backoff_s(1, 0.5, 60) <= 0.5 and 0 <= backoff_s(40, 0.5, 60) <= 60
    True
    """
    return (rng or random).uniform(0, min(cap_s, base_s * 2.0 ** min(attempt - 1, 60)))


@dataclass
class Summary:
    endpoint: str
    shipped: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    cursor: Cursor | None = None
    head_seq: int = 0
    failures: int = 0
    seconds: float = 0.0
    outcome: str = "done"
    """``done``, ``stopped`` (a signal) or ``unavailable`` (``--once`` gave up on the endpoint)."""

    @property
    def exit_code(self) -> int:
        return 3 if self.outcome == "unavailable" else 0

    def line(self) -> str:
        seqs = f" (seq {self.first_seq}..{self.last_seq})" if self.shipped else ""
        cursor = f"seq {self.cursor.seq} of {self.cursor.log}" if self.cursor else "none"
        seq = self.cursor.seq if self.cursor else 0
        failed = f", {self.failures} failed attempts" if self.failures else ""
        return (
            f"{self.outcome}: shipped {self.shipped} records{seqs} to {self.endpoint} in {self.seconds:.2f} s{failed}; "
            f"cursor at {cursor}, log head seq {self.head_seq}, lag {max(0, self.head_seq - seq)}"
        )


@dataclass
class Shipper:
    """Ships the decision log from its cursor (:meth:`run`). Built from the settings and the environment by
    :meth:`from_settings`; its parts can be given (tests)."""

    settings: Settings
    config: ExportConfig
    encoder: Encoder
    sender: Sender
    rng: random.Random = field(default_factory=random.Random)
    cursor: Cursor | None = None

    def __post_init__(self) -> None:
        self.directory = self.settings.decisions_dir
        self.cursor_file = cursor_path(self.settings)
        try:
            self.cursor = read_cursor(self.cursor_file)
        except CursorError as exc:
            raise ExportConfigError(str(exc)) from None
        self.tail = LogTail(self.directory)
        self._positioned = False
        self._pending: list[tuple[dict[str, Any], Any]] = []
        self._limit = self.settings.decision_export_batch_records
        self._log_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Shipper:
        config = export_config(environ)
        return cls(settings, config, Encoder(settings=settings), Sender(config))

    def _position(self) -> bool:
        """Start after the cursor if it still names a record of this log, else at seq 0, saying why; False while the
        log is empty."""
        head = last_record(self.directory) if self.directory.is_dir() else None
        if head is None:
            return False
        cur, fresh = self.cursor, Cursor(head["log"], 0, None)
        if cur is None or cur.seq == 0:
            self.cursor = fresh if cur is None or cur.log != head["log"] else cur
        elif cur.log != head["log"]:
            log.error(
                "the decision log is %s, the cursor names %s (acknowledged up to seq %d): the log was wiped and "
                "restarted; shipping %s from seq 0",
                head["log"],
                cur.log,
                cur.seq,
                head["log"],
            )
            self.cursor = fresh
        elif (found := record_at(self.directory, cur.seq)) is None or found["hash"] != cur.hash:
            what = "missing" if found is None else f"{found['hash']}, not {cur.hash}"
            log.error(
                "the cursor's record (log %s seq %d) is %s in the decision log: it was rewritten or truncated; "
                "shipping it again from seq 0",
                cur.log,
                cur.seq,
                what,
            )
            self.cursor = fresh
        assert self.cursor is not None
        self.tail.seek(self.cursor.seq, self.cursor.hash)
        return True

    def _fill(self) -> None:
        if not self._positioned:
            self._positioned = self._position()
            if not self._positioned:
                return
        records = self.tail.read(self.settings.decision_export_batch_records)
        for broken in self.tail.breaks:
            log.error("decision log chain broken: %s (shipped as it is; `aquifer audit prove` reports it)", broken)
        self.tail.breaks.clear()
        if self.tail.error != self._log_error:
            if self.tail.error:
                log.error("decision log unreadable at %s; reading it again", self.tail.error)
            else:
                log.info("decision log readable again")
            self._log_error = self.tail.error
        if self.tail.replaced:
            log.warning("a decision-log segment was replaced under the shipper; checking the cursor again")
            self.tail.replaced, self._positioned = False, False
        self._pending = [(r, self.encoder.encode(r)) for r in records]

    def run(self, *, follow: bool = True, stop: threading.Event | None = None, attempts: int | None = None) -> Summary:
        """Ship until stopped (``follow``), or until the head seen at the start is acknowledged. ``attempts``: give
        up after this many failed exports in a row (outcome ``unavailable``); None: retry for ever."""
        stop = stop or threading.Event()
        base, cap = self.settings.decision_export_backoff_base_s, self.settings.decision_export_backoff_max_s
        summary, started, failures = Summary(self.config.endpoint), time.monotonic(), 0
        head = last_record(self.directory) if self.directory.is_dir() else None
        until = (head["log"], head["seq"]) if head else None
        while not stop.is_set():
            if not self._pending:
                self._positioned = self._positioned or self._position()  # the cursor checked before it counts
                if not follow and (until is None or self._reached(until)):
                    break
                self._fill()
                if not self._pending:
                    if not follow:
                        break
                    stop.wait(self.settings.decision_export_poll_interval_s)
                    continue
            batch = self._pending[: self._limit]
            outcome = self.sender.send([encoded for _, encoded in batch], stop)
            if outcome.abandoned:
                break
            if not outcome.acked:
                failures += 1
                summary.failures += 1
                if failures == 1:
                    log.warning(
                        "OTLP endpoint %s is down (%s): retrying from seq %d with backoff (at most %g s); the cursor "
                        "stays at seq %d",
                        self.config.endpoint,
                        outcome.reason,
                        batch[0][0]["seq"],
                        cap,
                        self.cursor.seq if self.cursor else 0,
                    )
                self._limit = max(1, self._limit // 2)  # a collector's request-size limit: try smaller
                if attempts is not None and failures >= attempts:
                    summary.outcome = "unavailable"
                    break
                stop.wait(backoff_s(failures, base, cap, self.rng))
                continue
            last = batch[-1][0]
            self.cursor = Cursor(last["log"], last["seq"], last["hash"])
            write_cursor(self.cursor_file, self.cursor, decision_id=last["decision_id"], endpoint=self.config.endpoint)
            del self._pending[: len(batch)]
            if failures:
                log.info("OTLP endpoint %s is up again after %d failed attempts", self.config.endpoint, failures)
            failures, self._limit = 0, self.settings.decision_export_batch_records
            if outcome.rejected:
                log.error(
                    "the endpoint accepted the batch seq %d..%d but rejected %d of its records (%s): the OTLP "
                    "specification forbids sending them again; the decision log keeps them",
                    batch[0][0]["seq"],
                    last["seq"],
                    outcome.rejected,
                    outcome.reason,
                )
            summary.shipped += len(batch)
            summary.first_seq = summary.first_seq or batch[0][0]["seq"]
            summary.last_seq = last["seq"]
        if stop.is_set() and summary.outcome == "done":
            summary.outcome = "stopped"
        head = last_record(self.directory) if self.directory.is_dir() else None
        summary.head_seq, summary.cursor = (head["seq"] if head else 0), self.cursor
        summary.seconds = time.monotonic() - started
        return summary

    def _reached(self, until: tuple[str, int]) -> bool:
        return self.cursor is not None and self.cursor.log == until[0] and self.cursor.seq >= until[1]

    def close(self) -> None:
        self.sender.close()
