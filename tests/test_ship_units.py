"""The decision-log shipper's parts (aquifer.export.decisions), each against the real decision log on disk and a real
OTLP/HTTP receiver on loopback (tests/otlp_receiver.py): the record mapping, the cursor, delivery only after an
acknowledgement, a replaced or rewritten log, backoff, batch bounds, refused settings, the lag gauge, and the
`aquifer up` service list."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from aquifer.audit.log import DecisionLog, last_record, read_records
from aquifer.audit.records import SCHEMA
from aquifer.export import decisions
from aquifer.export._otlp import STOP_GRACE_S
from aquifer.export._tail import Cursor, CursorError, LogTail, read_cursor, write_cursor
from aquifer.export.decisions import (
    NEVER_EXPORT,
    ExportConfigError,
    LagCollector,
    Mapper,
    Shipper,
    backoff_s,
    export_config,
    export_lag,
    export_metadata,
)
from aquifer.settings import Settings
from aquifer.up import Service, _ready, aquifer_services
from tests.otlp_receiver import OtlpReceiver

KEY = "k3y-for-tests-0123456789"


def resource(i: int, *, allow: bool = True, served: bool = True) -> dict[str, Any]:
    return {
        "id": f"chunk-{i}",
        "doc_id": f"case-{i}",
        "dataset": "hr_case_notes",
        "layer": "platinum",
        "classification": "confidential",
        "pii_types": ["PHONE_NUMBER"],
        "acl": ["user:amira.haddad", "group:hr-leads"],
        "admitted_by": ["user:amira.haddad"] if allow else [],
        "allow": allow,
        "served": served and allow,
        "reasons": [] if allow else ["classification_not_permitted"],
        "redacted": ["PHONE_NUMBER"] if allow else [],
        "label": "confidential" if allow else None,
        "lineage": [f"bronze-{i}", f"silver-{i}"],
    }


def record(i: int) -> dict[str, Any]:
    return {
        "kind": "context",
        "channel": "mcp",
        "tool": "search_context",
        "agent": "hr_case_assistant",
        "user": "tidewater_dev_idp:amira.haddad",
        "user_groups": ["hr-leads", "hr-emea"],
        "purpose": "hr_casework",
        "model": "local_smollm2",
        "locality": "local",
        "revision": "rev-abc",
        "request_allow": True,
        "request_reasons": [],
        "resources": [resource(i), resource(i + 1000, allow=False)],
        "alerts": [],
    }


def logged(i: int, **chain: Any) -> dict[str, Any]:
    """:func:`record` as the log holds it (stand-in chain fields)."""
    base = {"seq": i, "decision_id": f"dec_{i}", "time": "2026-11-27T12:00:00+00:00", "log": "log_t", "prev": "p"}
    return record(i) | base | {"hash": "h", "segment": "segment-000000000001.jsonl"} | chain


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
        yield rx


def settings(tmp_path: Path, **extra: Any) -> Settings:
    fast = {"decision_export_backoff_base_s": 0.01, "decision_export_backoff_max_s": 0.05}
    return Settings(data_dir=tmp_path, **(fast | extra))


def fill(tmp_path: Path, n: int, **log: Any) -> DecisionLog:
    decision_log = DecisionLog(tmp_path / "decisions", fsync=False, **log)
    for i in range(n):
        decision_log.append(record(i))
    return decision_log


def seqs(rx: OtlpReceiver) -> list[int]:
    return [r.body["seq"] for r in rx.logs]


# -- mapping ---------------------------------------------------------------------------------------------------------


def test_a_record_leaves_with_opa_names_aquifer_fields_and_its_chain(tmp_path: Path) -> None:
    fill(tmp_path, 2)
    rec = list(read_records(tmp_path / "decisions"))[1]
    mapper = Mapper(labels={"id": "inst-1", "version": "0.1.0"})
    body = mapper.body(rec)
    assert body["decision_id"] == rec["decision_id"] and body["timestamp"] == rec["time"]
    assert body["path"] == "aquifer/context" and body["revision"] == "rev-abc"
    assert body["labels"] == {"id": "inst-1", "version": "0.1.0"}
    assert body["result"] == {"allow": True, "reasons": [], "resources": rec["resources"]}
    assert body["served"] == ["chunk-1"] and body["withheld"] == ["chunk-1001"]
    withheld = body["result"]["resources"][1]
    assert withheld["reasons"] == ["classification_not_permitted"] and withheld["allow"] is False
    assert {"id", "allow", "served", "reasons", "redacted", "label", "lineage"} <= set(withheld)
    for name in ("kind", "channel", "tool", "agent", "user", "user_groups", "purpose", "model", "locality", "alerts"):
        assert body[name] == rec[name], name
    for name in ("seq", "hash", "prev", "log", "segment"):
        assert body[name] == rec[name], name
    assert body["prev"] == next(read_records(tmp_path / "decisions"))["hash"], "prev: the previous line's hash"
    assert mapper.attributes(body) == {
        "decision_id": rec["decision_id"],
        "seq": 2,
        "agent": "hr_case_assistant",
        "kind": "context",
    }


def test_user_ids_are_hmac_sha256_everywhere_they_appear() -> None:
    mapper = Mapper(hash_key=KEY.encode(), hash_users=True, hash_groups=True)
    body = mapper.body(logged(1))

    def mac(value: str) -> str:
        return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()

    assert body["user"] == mac("tidewater_dev_idp:amira.haddad")
    assert body["user_groups"] == [mac("hr-leads"), mac("hr-emea")]
    served = body["result"]["resources"][0]
    assert served["acl"] == [f"user:{mac('amira.haddad')}", f"group:{mac('hr-leads')}"]
    assert served["admitted_by"] == [f"user:{mac('amira.haddad')}"]
    assert "amira" not in json.dumps(body) and "hr-leads" not in json.dumps(body)
    users_only = Mapper(hash_key=KEY.encode(), hash_users=True).body(logged(1))
    assert users_only["user_groups"] == ["hr-leads", "hr-emea"], "groups in clear unless asked"
    assert users_only["result"]["resources"][0]["acl"][1] == "group:hr-leads"


def test_text_never_leaves_at_any_depth_and_unknown_fields_stay_home() -> None:
    rec = logged(1, text="secret chunk")
    rec["resources"][0]["text"] = "secret chunk"
    rec["upstream"] = {"endpoint": "http://m", "outcome": "ok", "prompt": "secret chunk", "content": "secret chunk"}
    rec["future_field"] = "not in SCHEMA"
    body = Mapper().body(rec)
    dumped = json.dumps(body)
    assert "secret chunk" not in dumped and "future_field" not in dumped
    assert body["upstream"] == {"endpoint": "http://m", "outcome": "ok"}
    assert {"text", "prompt", "content"} <= NEVER_EXPORT
    with pytest.raises(ExportConfigError, match="AQUIFER_DECISION_EXPORT_FIELDS: 'text' is never exported"):
        Mapper(fields=["agent", "text"])


def test_the_allow_list_narrows_fields_but_never_the_chain() -> None:
    rec = record(1) | {"seq": 7, "decision_id": "d", "time": "t", "log": "l", "prev": "p", "hash": "h", "segment": "s"}
    body = Mapper(fields=["agent", "request_allow"]).body(rec)
    assert body["agent"] == "hr_case_assistant" and body["result"] == {"allow": True}
    assert not {"user", "user_groups", "served", "withheld", "revision", "purpose"} & set(body)
    assert {k: body[k] for k in ("seq", "decision_id", "timestamp", "log", "prev", "hash", "segment")} == {
        "seq": 7,
        "decision_id": "d",
        "timestamp": "t",
        "log": "l",
        "prev": "p",
        "hash": "h",
        "segment": "s",
    }
    assert set(Mapper().fields) == set(SCHEMA), "default: every field of the record schema"


def test_the_log_record_carries_event_name_timestamps_and_resource(
    tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer siem-token")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    fill(tmp_path, 3)
    summary = Shipper.from_settings(settings(tmp_path)).run(follow=False)
    assert summary.shipped == 3 and summary.outcome == "done" and summary.exit_code == 0
    first = receiver.logs[0]
    rec = next(read_records(tmp_path / "decisions"))
    assert first.event_name == "aquifer.decision" and first.severity_text == "INFO"
    assert first.time_unix_nano == decisions.unix_nanos(rec["time"])
    assert first.resource["service.name"] == "aquifer-decisions"
    assert first.resource["deployment.environment"] == "test"
    assert first.body["labels"]["id"] == first.resource["service.instance.id"]
    request = receiver.requests[0]
    assert request["headers"]["authorization"] == "Bearer siem-token"
    assert request["headers"]["content-encoding"] == "gzip"
    assert request["headers"]["content-type"] == "application/x-protobuf"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "siem-feed")
    (tmp_path / "export" / "decisions.cursor.json").unlink()
    Shipper.from_settings(settings(tmp_path)).run(follow=False)
    assert receiver.logs[-1].resource["service.name"] == "siem-feed"


# -- cursor and delivery ---------------------------------------------------------------------------------------------


def test_the_cursor_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "export" / "decisions.cursor.json"
    write_cursor(path, Cursor("log_a", 5, "h5"))
    assert read_cursor(path) == Cursor("log_a", 5, "h5")

    def crash(*args: Any) -> None:
        raise OSError("killed between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        write_cursor(path, Cursor("log_a", 9, "h9"))
    monkeypatch.undo()
    assert read_cursor(path) == Cursor("log_a", 5, "h5"), "the old cursor, whole"
    path.write_text('{"log": "log_a", "se')
    with pytest.raises(CursorError, match=r"not a decision-export cursor.*remove it"):
        read_cursor(path)
    assert read_cursor(tmp_path / "none.json") is None


def test_the_cursor_moves_only_after_the_endpoint_acknowledged(tmp_path: Path, receiver: OtlpReceiver) -> None:
    fill(tmp_path, 40)
    cursor = tmp_path / "export" / "decisions.cursor.json"
    receiver.mode = "error"
    summary = Shipper.from_settings(settings(tmp_path)).run(follow=False, attempts=3)
    assert summary.outcome == "unavailable" and summary.exit_code == 3 and summary.failures == 3
    assert not cursor.exists() and receiver.logs == []
    assert [r["status"] for r in receiver.requests] == [500, 500, 500]
    receiver.mode = "ok"
    summary = Shipper.from_settings(settings(tmp_path)).run(follow=False)
    assert seqs(receiver) == list(range(1, 41)), "all of them, in order"
    head = last_record(tmp_path / "decisions")
    assert head is not None and read_cursor(cursor) == Cursor(head["log"], 40, head["hash"])
    fill_more = DecisionLog(tmp_path / "decisions", fsync=False)
    for i in range(5):
        fill_more.append(record(i))
    receiver.mode = "error"
    Shipper.from_settings(settings(tmp_path)).run(follow=False, attempts=1)
    assert read_cursor(cursor) == Cursor(head["log"], 40, head["hash"]), "a failure leaves it where it was"
    receiver.mode = "ok"
    Shipper.from_settings(settings(tmp_path)).run(follow=False)
    assert seqs(receiver) == list(range(1, 46)), "resumed after the cursor: nothing again, nothing missing"


def test_a_hung_endpoint_costs_one_timeout_and_a_stop_abandons_the_batch(
    tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    fill(tmp_path, 5)
    receiver.mode = "hang"
    started = time.monotonic()
    summary = Shipper.from_settings(settings(tmp_path)).run(follow=False, attempts=1)
    assert summary.outcome == "unavailable" and time.monotonic() - started < 4, "one export is bounded"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "30")
    stop = threading.Event()
    shipper = Shipper.from_settings(settings(tmp_path))
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    summary = shipper.run(follow=True, stop=stop)
    assert summary.outcome == "stopped" and summary.shipped == 0
    assert time.monotonic() - started < 0.5 + STOP_GRACE_S + 1.5
    assert not (tmp_path / "export" / "decisions.cursor.json").exists()


class _Answering:
    """A loopback endpoint answering every POST with ``status`` and ``body`` (what OtlpReceiver cannot: redirects,
    partial successes)."""

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_redirect_is_not_an_acknowledgement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's exporter takes any status below 400 as success and does not follow redirects: the shipper
    acknowledges only a 2xx."""
    moved = _Answering(307, headers={"location": "http://127.0.0.1:9/v1/logs"})
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", moved.url)
    fill(tmp_path, 3)
    try:
        summary = Shipper.from_settings(settings(tmp_path)).run(follow=False, attempts=2)
    finally:
        moved.close()
    assert summary.outcome == "unavailable" and summary.shipped == 0
    assert not (tmp_path / "export" / "decisions.cursor.json").exists()


def test_a_partial_success_is_said_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsPartialSuccess,
        ExportLogsServiceResponse,
    )

    answer = ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(rejected_log_records=2, error_message="body too deep")
    ).SerializeToString()
    partial = _Answering(200, answer, {"content-type": "application/x-protobuf"})
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", partial.url)
    fill(tmp_path, 3)
    try:
        with caplog.at_level(logging.ERROR, "aquifer.export.decisions"):
            summary = Shipper.from_settings(settings(tmp_path)).run(follow=False)
    finally:
        partial.close()
    assert summary.shipped == 3, "acknowledged: the specification forbids sending rejected records again"
    assert "rejected 2 of its records (body too deep)" in caplog.text


def test_a_wiped_log_is_shipped_from_seq_0_and_said_loudly(
    tmp_path: Path, receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    fill(tmp_path, 10)
    Shipper.from_settings(settings(tmp_path)).run(follow=False)
    old = read_cursor(tmp_path / "export" / "decisions.cursor.json")
    shutil.rmtree(tmp_path / "decisions")
    fill(tmp_path, 4)
    with caplog.at_level(logging.ERROR, "aquifer.export.decisions"):
        summary = Shipper.from_settings(settings(tmp_path)).run(follow=False)
    assert old is not None and "the log was wiped and restarted; shipping" in caplog.text and old.log in caplog.text
    assert summary.shipped == 4 and seqs(receiver) == [*range(1, 11), *range(1, 5)]
    new = read_cursor(tmp_path / "export" / "decisions.cursor.json")
    assert new is not None and new.log != old.log and new.seq == 4


def test_a_rewritten_record_at_the_cursor_is_said_loudly_and_shipped_again(
    tmp_path: Path, receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    fill(tmp_path, 6)
    Shipper.from_settings(settings(tmp_path)).run(follow=False)
    segment = next((tmp_path / "decisions").glob("segment-*.jsonl"))
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"hr_case_assistant"', b'"someone_else"')
    segment.write_bytes(b"".join(lines))
    with caplog.at_level(logging.ERROR, "aquifer.export.decisions"):
        summary = Shipper.from_settings(settings(tmp_path)).run(follow=False)
    assert "the cursor's record" in caplog.text and "rewritten or truncated" in caplog.text
    assert summary.shipped == 6 and seqs(receiver) == [*range(1, 7), *range(1, 7)]
    assert receiver.logs[-1].body["agent"] == "someone_else"


def test_following_the_log_across_segments_torn_tails_and_a_wipe(
    tmp_path: Path, receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    writer = fill(tmp_path, 5, segment_bytes=4096)
    stop = threading.Event()
    shipper = Shipper.from_settings(settings(tmp_path, decision_export_poll_interval_s=0.05))
    done: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: done.update(summary=shipper.run(follow=True, stop=stop)))
    thread.start()
    try:
        receiver.wait_for(lambda rx: len(rx.logs) == 5)
        newest = sorted((tmp_path / "decisions").glob("segment-*.jsonl"))[-1]
        with newest.open("ab") as fh:
            fh.write(b'{"seq": 999, "torn')  # a writer killed mid-append
        time.sleep(0.3)
        assert len(receiver.logs) == 5, "a torn line is not a record"
        for i in range(30):
            writer.append(record(i))
        receiver.wait_for(lambda rx: len(rx.logs) == 35)
        assert len(list((tmp_path / "decisions").glob("segment-*.jsonl"))) > 3, "it crossed segments"
        assert seqs(receiver) == list(range(1, 36))
        with caplog.at_level(logging.WARNING, "aquifer.export.decisions"):
            shutil.rmtree(tmp_path / "decisions")
            fresh = fill(tmp_path, 3, segment_bytes=4096)
            receiver.wait_for(lambda rx: len(rx.logs) == 38)
        assert receiver.logs[-1].body["log"] != receiver.logs[0].body["log"]
        assert seqs(receiver)[-3:] == [1, 2, 3] and "wiped and restarted" in caplog.text
        assert "chain broken" not in caplog.text
        fresh.append(record(0))
        receiver.wait_for(lambda rx: len(rx.logs) == 39)
    finally:
        stop.set()
        thread.join(10)
    assert done["summary"].outcome == "stopped" and done["summary"].shipped == 39


def test_readers_are_safe_against_concurrent_appends(tmp_path: Path) -> None:
    """Writers append with one write() per line under a lock, readers take no lock: a reader sees a prefix of whole
    lines plus at most a partial last one, which it skips (read again next time)."""
    writer = DecisionLog(tmp_path / "decisions", fsync=False, segment_bytes=16 * 1024)  # many rotations
    writer.append(record(0))
    n = 1500

    def write() -> None:
        for i in range(1, n):
            writer.append(record(i))

    thread = threading.Thread(target=write)
    tail, got, snapshots = LogTail(tmp_path / "decisions"), [], []
    thread.start()
    deadline = time.monotonic() + 60
    while (thread.is_alive() or len(got) < n) and time.monotonic() < deadline:
        new = [r["seq"] for r in tail.read(97)]
        got += new
        if new and len(snapshots) < 20:  # each reads the whole log: a few, as it grows
            snapshots.append([r["seq"] for r in read_records(tmp_path / "decisions")])
        assert tail.breaks == [] and tail.error is None and not tail.replaced
    thread.join()
    assert got == list(range(1, n + 1)), "every record once, in order, across segment rotations"
    assert all(snap == list(range(1, len(snap) + 1)) for snap in snapshots), "read_records: always a whole prefix"
    assert len({len(s) for s in snapshots}) > 2, "it did read while the log grew"


# -- bounds ----------------------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_within_its_bounds() -> None:
    import random

    rng = random.Random(7)
    for attempt in range(1, 200):
        ceiling = min(30.0, 0.5 * 2 ** min(attempt - 1, 60))
        waits = [backoff_s(attempt, 0.5, 30.0, rng) for _ in range(50)]
        assert all(0 <= w <= ceiling for w in waits)
    late = [backoff_s(12, 0.5, 30.0, rng) for _ in range(2000)]
    assert max(late) > 25 and min(late) < 5, "uniform over [0, cap], not a fixed step"


def test_batches_are_bounded_and_a_failure_halves_the_next(tmp_path: Path, receiver: OtlpReceiver) -> None:
    fill(tmp_path, 50)
    Shipper.from_settings(settings(tmp_path, decision_export_batch_records=7)).run(follow=False)
    sizes = [r["bytes"] for r in receiver.requests]
    assert len(sizes) == 8 and seqs(receiver) == list(range(1, 51)), "ceil(50 / 7) requests, in order"
    writer = DecisionLog(tmp_path / "decisions", fsync=False)
    for i in range(8):
        writer.append(record(i))
    receiver.mode = "error"
    Shipper.from_settings(settings(tmp_path, decision_export_batch_records=8)).run(follow=False, attempts=3)
    receiver.mode = "ok"
    assert len(receiver.requests) == 11
    halved = [r["bytes"] for r in receiver.requests[-3:]]
    assert halved[0] > halved[1] > halved[2], "8, then 4, then 2 records"


def test_the_tail_holds_at_most_a_batch(tmp_path: Path) -> None:
    fill(tmp_path, 25)
    tail = LogTail(tmp_path / "decisions")
    assert [len(tail.read(10)) for _ in range(4)] == [10, 10, 5, 0]
    assert tail.breaks == [] and tail.after == 25


# -- refused settings ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AQUIFER_DECISION_EXPORT_BATCH_RECORDS": "0"}, "decision_export_batch_records"),
        ({"AQUIFER_DECISION_EXPORT_BATCH_RECORDS": "100000"}, "decision_export_batch_records"),
        ({"AQUIFER_DECISION_EXPORT_POLL_INTERVAL_S": "0"}, "decision_export_poll_interval_s"),
        ({"AQUIFER_DECISION_EXPORT_BACKOFF_BASE_S": "nan"}, "decision_export_backoff_base_s"),
        ({"AQUIFER_DECISION_EXPORT_BACKOFF_BASE_S": "5", "AQUIFER_DECISION_EXPORT_BACKOFF_MAX_S": "1"}, "BASE_S"),
        ({"AQUIFER_DECISION_EXPORT_FIELDS": '["agent", "chunk_text"]'}, "'chunk_text' is not a decision-record"),
        ({"AQUIFER_DECISION_EXPORT_FIELDS": "agent"}, "decision_export_fields"),
        ({"AQUIFER_DECISION_EXPORT_HASH_USERS": "true"}, "decision_export_hash_key"),
        ({"AQUIFER_DECISION_EXPORT_HASH_GROUPS": "1"}, "decision_export_hash_key"),
    ],
)
def test_hostile_settings_name_the_setting(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(Exception, match=message) as caught:
        Settings(data_dir=tmp_path)
    assert isinstance(caught.value, ValidationError | ValueError)


@pytest.mark.parametrize(
    ("key", "environment", "message"),
    [
        ("s3cr3t-k3y", "development", "shorter than 16"),
        ("change-me-change-me", "production", "placeholder, refused in production"),
        ("aaaaaaaaaaaaaaaaaaaa", "production", "placeholder"),
    ],
)
def test_a_weak_hash_key_is_refused_without_repeating_it(
    key: str, environment: str, message: str, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    chosen = Settings(
        data_dir=tmp_path, environment=environment, decision_export_hash_users=True, decision_export_hash_key=key
    )
    with pytest.raises(ExportConfigError, match=message) as caught:
        Shipper.from_settings(chosen)
    assert key not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no OTLP endpoint"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_LOGS_EXPORTER": "none"}, "no OTLP endpoint"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318'"),
        ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "ftp://c/v1/logs"}, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "-1"}, "LOGS_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "COMPRESSION"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http/protobuf only"),
    ],
)
def test_the_otlp_environment_is_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(ExportConfigError, match=message):
        export_config(env)


def test_the_endpoint_follows_the_standard_variables() -> None:
    assert export_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}).endpoint == "http://c:4318/v1/logs"
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://s/in"}
    assert export_config(both).endpoint == "https://s/in"
    assert export_config(both | {"OTEL_EXPORTER_OTLP_TIMEOUT": "2.5"}).timeout_s == 2.5


def test_the_command_without_an_endpoint_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | {"AQUIFER_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "aquifer", "ship-decisions", "--once"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("error: no OTLP endpoint") and len(done.stderr.strip().splitlines()) == 1


# -- lag -------------------------------------------------------------------------------------------------------------


def test_the_lag_comes_from_the_cursor_and_the_log_tail(
    tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = settings(tmp_path)
    registry = CollectorRegistry()
    registry.register(LagCollector(chosen))
    assert export_lag(chosen) == {"head_seq": 0, "cursor_seq": 0, "lag_records": 0}
    fill(tmp_path, 12)
    assert export_lag(chosen) == {"head_seq": 12, "cursor_seq": 0, "lag_records": 12}, "no cursor: all of it"
    assert b"aquifer_decision_export_lag_records 12.0" in generate_latest(registry)
    Shipper.from_settings(chosen).run(follow=False)
    assert export_metadata(chosen) == {"export_lag_records": 0, "export_cursor_seq": 12}
    scraped = generate_latest(registry)
    assert b"aquifer_decision_export_lag_records 0.0" in scraped
    assert b"aquifer_decision_export_cursor_seq 12.0" in scraped
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert export_lag(chosen) is None and export_metadata(chosen) == {}
    assert b"aquifer_decision_export" not in generate_latest(registry), "not configured: no gauge"


def test_the_last_record_is_read_from_the_end_and_skips_a_torn_line(tmp_path: Path) -> None:
    writer = fill(tmp_path, 3)
    segment = next((tmp_path / "decisions").glob("segment-*.jsonl"))
    with segment.open("ab") as fh:
        fh.write(b'{"seq": 4, "torn": "x' * 5000)  # longer than one 64 KiB read back
    head = last_record(tmp_path / "decisions")
    assert head is not None and head["seq"] == 3 and head["hash"] == list(read_records(segment.parent))[-1]["hash"]
    writer.append(record(9))  # the writer repairs the torn tail first
    head = last_record(tmp_path / "decisions")
    assert head is not None and head["seq"] == 4
    assert last_record(tmp_path / "nowhere") is None


# -- aquifer up ------------------------------------------------------------------------------------------------------


def test_up_supervises_the_shipper_when_an_endpoint_is_configured(tmp_path: Path) -> None:
    common = {"ui_port": 3000, "api_port": 8000, "model_port": 8080, "model_argv": None}
    names = [s.name for s in aquifer_services(tmp_path, **common)]
    assert "ship-decisions" not in names
    services = aquifer_services(tmp_path, **common, ship_decisions=True)
    shipper = next(s for s in services if s.name == "ship-decisions")
    assert shipper.argv[1:] == ["-m", "aquifer", "ship-decisions"] and shipper.url is None
    assert shipper.log == tmp_path / "logs" / "ship-decisions.log"
    worker = Service("worker", [sys.executable, "-c", "import time; time.sleep(30)"], None)
    assert not _ready(worker), "not started"
    worker.proc = subprocess.Popen(worker.argv)
    try:
        assert _ready(worker), "no URL: ready while alive"
    finally:
        worker.proc.kill()
        worker.proc.wait()
    assert not _ready(worker), "dead: not ready"


def test_the_up_command_adds_the_shipper_when_the_environment_names_an_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import aquifer.up
    from aquifer.cli import app
    from aquifer.settings import get_settings

    started: list[list[str]] = []

    def run(services: list[Service], *, on_ready: Any) -> int:
        started.append([s.name for s in services])
        return 0

    monkeypatch.setattr(aquifer.up, "run", run)
    monkeypatch.setenv("AQUIFER_DATA_DIR", str(tmp_path))
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        argv = ["up", "--no-model", "--no-idp"]
        assert CliRunner().invoke(app, argv).exit_code == 0
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:4318/v1/logs")
        assert CliRunner().invoke(app, argv).exit_code == 0
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "not-a-url")
        refused = CliRunner().invoke(app, argv)
    finally:
        get_settings.cache_clear()
    assert started == [["dagster", "api"], ["dagster", "api", "ship-decisions"]]
    assert refused.exit_code == 2 and started[2:] == [], "a bad endpoint stops `up` before anything starts"
