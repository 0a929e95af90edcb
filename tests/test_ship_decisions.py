"""The decision-log shipper end to end: a real ``aquifer serve`` (uvicorn) over a copy of the materialized sample
answers well over 1,000 requests from several agents while ``aquifer ship-decisions`` runs as its own process against
a real OTLP/HTTP receiver (tests/otlp_receiver.py). The receiver is closed mid-stream and started again on its port;
the shipper is SIGKILLed with a batch in flight and started again; every record of the log arrives, field by field,
and the duplicates are the same records. A hanging or failing receiver does not slow serving; the lag gauge at
/metrics falls to 0 once the log is shipped."""

from __future__ import annotations

import json
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from aquifer.audit.log import last_record, read_records
from aquifer.export._tail import read_cursor
from aquifer.export.decisions import Mapper
from aquifer.settings import get_settings
from tests.conftest import copy_materialized, use_issuer
from tests.demo_users import ACTING_FOR
from tests.otlp_receiver import OtlpReceiver
from tests.servers import AquiferServer, free_port, service_env
from tests.test_credentials import DEV_TOKENS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# (agent, purpose, model): allowed, and refused by the policy (another agent's purpose, an unregistered model)
ASKS = [
    ("support_assistant", "customer_support", "local_smollm2"),
    ("marketing_assistant", "marketing", "external_gpt"),
    ("hr_case_assistant", "hr_casework", "local_smollm2"),
    ("support_assistant", "marketing", "local_smollm2"),
    ("marketing_assistant", "hr_casework", "local_smollm2"),
    ("support_assistant", "customer_support", "gpt_99"),
]
QUERIES = [
    "how do I reset the device?",
    "what did customers report about refunds?",
    "what are the product's main features?",
    "an employee complained about their manager",
    "which cases mention a relocation?",
    "what is the data retention policy?",
]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, materialized_sample: Path, dev_idp: Any
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ship")
    data = copy_materialized(materialized_sample, root)
    use_issuer(root / "catalog", dev_idp.issuer)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/v1/logs"
    # the API only reads the cursor for its lag gauge: the logs endpoint says export is configured (not traces)
    env = service_env(root, data, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=endpoint)
    server = AquiferServer(env, root / "server.log", ready="/readyz")
    users = {agent: dev_idp.make_token(name) for agent, name in ACTING_FOR.items()}
    yield {"root": root, "data": data, "env": env, "url": server.url, "port": port, "users": users}
    server.stop()
    get_settings.cache_clear()


def ask(client: httpx.Client, world: dict[str, Any], i: int) -> int:
    agent, purpose, model = ASKS[i % len(ASKS)]
    headers = {"Authorization": f"Bearer {DEV_TOKENS[agent]}"}
    if agent in world["users"]:
        headers["X-Aquifer-User-Token"] = world["users"][agent]
    body = {"query": QUERIES[i % len(QUERIES)] + " " * (i % 3), "purpose": purpose, "model": model, "top_k": 8}
    return client.post(f"{world['url']}/v1/context", json=body, headers=headers).status_code


def shipper_env(world: dict[str, Any], cursor: Path, **extra: str) -> dict[str, str]:
    return world["env"] | {
        "AQUIFER_DECISION_EXPORT_CURSOR": str(cursor),
        "AQUIFER_DECISION_EXPORT_POLL_INTERVAL_S": "0.1",
        "AQUIFER_DECISION_EXPORT_BATCH_RECORDS": "50",
        "AQUIFER_DECISION_EXPORT_BACKOFF_BASE_S": "0.05",
        "AQUIFER_DECISION_EXPORT_BACKOFF_MAX_S": "0.5",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5",
        **extra,
    }


def start_shipper(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "aquifer", "ship-decisions"]
    return subprocess.Popen(argv, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def received(*receivers: OtlpReceiver) -> list[Any]:
    return [r for rx in receivers for r in rx.logs]


def test_every_record_arrives_through_a_receiver_restart_and_a_killed_shipper(world: dict[str, Any]) -> None:
    directory, port = world["data"] / "decisions", world["port"]
    cursor, log = world["root"] / "e2e.cursor.json", world["root"] / "ship-e2e.log"
    env = shipper_env(world, cursor)
    first = OtlpReceiver(port=port)
    second: OtlpReceiver | None = None
    statuses: list[int] = []
    shipper = start_shipper(env, log)
    try:
        with ThreadPoolExecutor(4) as pool, httpx.Client(timeout=60) as client:

            def burst(start: int, n: int) -> list[int]:
                return list(pool.map(lambda i: ask(client, world, i), range(start, start + n)))

            statuses += burst(0, 400)
            assert first.logs, "shipping while serving"
            first.close()  # the collector goes away mid-stream
            statuses += burst(400, 300)
            second = OtlpReceiver(port=port)  # ... and comes back on its port
            statuses += burst(700, 200)
            assert shipper.poll() is None
            # a batch in flight: the receiver holds it unanswered, the shipper is SIGKILLed waiting for the answer
            pending = pool.map(lambda i: ask(client, world, i), range(900, 1200))
            second.mode = "hang"
            time.sleep(1.5)
            shipper.send_signal(signal.SIGKILL)
            shipper.wait(10)
            killed_at = read_cursor(cursor)
            assert killed_at is not None
            second.mode = "ok"  # the held batch is now recorded, never acknowledged to anyone
            second.wait_for(lambda rx: any(r.body["seq"] > killed_at.seq for r in rx.logs), timeout_s=10)
            shipper = start_shipper(env, log)
            statuses += list(pending)
        counts = {s: statuses.count(s) for s in set(statuses)}
        print(f"\nstatuses: {counts}")
        assert len(statuses) == 1200 and set(counts) <= {200, 403}, counts
        assert counts.get(200, 0) > 500 and counts.get(403, 0) > 300, counts
        head = last_record(directory)
        assert head is not None and head["seq"] >= 1200
        second.wait_for(
            lambda rx: {r.body["seq"] for r in received(first, rx)} >= set(range(1, head["seq"] + 1)), timeout_s=120
        )
        shipper.send_signal(signal.SIGTERM)
        assert shipper.wait(15) == 0, log.read_text()[-2000:]
    finally:
        if shipper.poll() is None:
            shipper.kill()
        for rx in (first, second):
            if rx is not None:
                rx.close()
    assert "stopped: shipped" in log.read_text()
    done = read_cursor(cursor)
    assert done is not None and done.seq == head["seq"] and done.hash == head["hash"]

    logged = {r["seq"]: r for r in read_records(directory)}
    arrived = received(first, second)
    assert {r.body["seq"] for r in arrived} == set(logged), "nothing missing, nothing invented"
    mapper = Mapper()
    by_seq: dict[int, list[Any]] = {}
    for rec in arrived:
        by_seq.setdefault(rec.body["seq"], []).append(rec)
        expected, got = mapper.body(logged[rec.body["seq"]]), dict(rec.body)
        labels, _ = got.pop("labels"), expected.pop("labels")
        assert labels == {"id": rec.resource["service.instance.id"], "version": rec.resource["service.version"]}
        assert got == expected, rec.body["seq"]
        assert rec.event_name == "aquifer.decision" and rec.resource["service.name"] == "aquifer-decisions"
        assert rec.attributes["decision_id"] == got["decision_id"] and rec.attributes["seq"] == got["seq"]
    duplicates = {seq: recs for seq, recs in by_seq.items() if len(recs) > 1}
    for recs in duplicates.values():
        assert len({(r.body["decision_id"], r.body["hash"]) for r in recs}) == 1, "a duplicate is the same record"
    assert any(seq > killed_at.seq for seq in duplicates), "the killed shipper's batch was sent again"
    seen_order = [r.body["seq"] for r in second.logs if r.body["seq"] > killed_at.seq + 60]
    assert seen_order == sorted(seen_order), "in seq order"
    users = {r.body.get("user") for r in arrived} - {None}
    print(f"records: {len(logged)}, arrived: {len(arrived)}, duplicated seqs: {len(duplicates)}, users: {users}")
    assert users, "records made for a user carry it"


def p50_ms(world: dict[str, Any], client: httpx.Client, n: int, rng: random.Random) -> list[float]:
    out = []
    for _ in range(n):
        i = rng.randrange(3)  # allowed asks only: the full path, embedding cached
        start = time.perf_counter()
        assert ask(client, world, i) == 200
        out.append((time.perf_counter() - start) * 1000)
    return out


def test_a_hanging_or_failing_receiver_does_not_slow_serving(world: dict[str, Any]) -> None:
    port = free_port()
    rx = OtlpReceiver(port=port, mode="hang")
    env = shipper_env(
        world,
        world["root"] / "latency.cursor.json",
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"http://127.0.0.1:{port}/v1/logs",
        AQUIFER_DECISION_EXPORT_BACKOFF_BASE_S="0.5",
        AQUIFER_DECISION_EXPORT_BACKOFF_MAX_S="60",
    )
    log = world["root"] / "ship-latency.log"
    shipper = start_shipper(env, log)
    times: dict[str, list[float]] = {"none": [], "hang": [], "error": []}
    rng = random.Random(15)
    try:
        with httpx.Client(timeout=60) as client:
            p50_ms(world, client, 20, rng)  # warm-up
            for _ in range(3):
                for condition in ("none", "hang", "error"):
                    # "none": the shipper stopped (SIGSTOP) - no process competing for the machine
                    shipper.send_signal(signal.SIGSTOP if condition == "none" else signal.SIGCONT)
                    if condition != "none":
                        rx.mode = condition  # type: ignore[assignment]
                    time.sleep(0.3)
                    times[condition] += p50_ms(world, client, 40, rng)
            shipper.send_signal(signal.SIGCONT)
            assert shipper.poll() is None
            rx.mode = "hang"
            time.sleep(0.5)
            started = time.monotonic()
            shipper.send_signal(signal.SIGTERM)  # a batch is held by the hanging receiver: abandoned, not acked
            assert shipper.wait(15) == 0
            stop_s = time.monotonic() - started
    finally:
        if shipper.poll() is None:
            shipper.kill()
        rx.close()
    medians = {c: statistics.median(v) for c, v in times.items()}
    print(f"\nserving p50 (ms): {json.dumps({c: round(m, 2) for c, m in medians.items()})}; stop took {stop_s:.1f} s")
    for condition in ("hang", "error"):
        assert medians[condition] <= max(medians["none"] * 1.25, medians["none"] + 3), (condition, medians)
    assert stop_s < 10
    text = log.read_text()
    assert text.count("is down") <= 3, "one line per state change, not one per retry"
    assert rx.logs == [] and read_cursor(world["root"] / "latency.cursor.json") is None, "nothing acknowledged"


def test_the_lag_gauge_falls_to_zero_once_shipped(world: dict[str, Any]) -> None:
    def gauges() -> dict[str, float]:
        text = httpx.get(f"{world['url']}/metrics", timeout=10).text
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("aquifer_decision_export_")
        }

    with httpx.Client(timeout=60) as client:
        for i in range(6):
            ask(client, world, i)
    head = last_record(world["data"] / "decisions")
    assert head is not None
    before = gauges()
    assert before["aquifer_decision_export_lag_records"] == head["seq"], "no cursor yet: the whole log"
    assert before["aquifer_decision_export_cursor_seq"] == 0
    with OtlpReceiver(port=world["port"]) as rx:
        env = {k: v for k, v in world["env"].items() if k != "AQUIFER_DECISION_EXPORT_CURSOR"}
        done = subprocess.run(
            [sys.executable, "-m", "aquifer", "ship-decisions", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert f"done: shipped {head['seq']} records" in done.stderr
        assert len({r.body["seq"] for r in rx.logs}) == head["seq"]
    after = gauges()
    assert after == {"aquifer_decision_export_lag_records": 0.0, "aquifer_decision_export_cursor_seq": head["seq"]}
    assert (world["data"] / "export" / "decisions.cursor.json").is_file()
