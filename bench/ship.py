"""Decision-export benchmark (issue 15): how fast ``aquifer ship-decisions`` ships the decision log over OTLP/HTTP,
and what running it costs the service, in one run.

Not a test: run ``python bench/ship.py`` (``make bench-ship``) after ``make up`` or ``aquifer materialize`` has built
the index of the sample corpus (``--data-dir``, default ``./data``; it is copied, the server writes its decision log
into the copy). Everything crosses real processes and real HTTP on loopback.

* **Serving, shipper on vs off.** One ``aquifer serve`` (uvicorn). Blocks of ``--block-s`` seconds alternate
  ``off`` (no shipper process) and ``on`` (``aquifer ship-decisions`` following the log, shipping every new record
  to a receiver as it is written). Before each ``on`` block the shipper's cursor is set to the log's head and the
  shipper started; the block begins once it has logged that it is shipping (its import time is not charged to
  serving). Agent ``support_assistant``, purpose ``customer_support``, top_k 8, every query one the server has not
  seen (the embedding is paid: templates x topics, trailing spaces for more keys), at ``--concurrency`` 1 and 4:
  p50/p99 per condition, the ratio on/off, and the shipper's CPU per record shipped (``/proc``).
* **Throughput.** A decision log of ``--records`` real records (the serving part's, appended again through
  ``DecisionLog``: same shape, 8 resources each, a fresh chain) shipped by ``aquifer ship-decisions --once`` to a
  sink that answers every export 200 (an empty ``ExportLogsServiceResponse``; a real collector decodes elsewhere),
  ``--runs`` times from an empty cursor: records/s from the shipper's own summary (its shipping time, not its
  start-up), the median of the runs. One more run against the decoding receiver (tests/otlp_receiver.py) checks that
  every record arrived once.

The receivers run in this process (threads); the measuring client too, so it stays lean: httpx, no SDK.

Prints a JSON summary and a markdown table; writes the JSON (``--json``, default ``bench/results/ship.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aquifer.audit.log import DecisionLog, last_record, read_records  # noqa: E402
from aquifer.export._tail import Cursor, write_cursor  # noqa: E402
from tests.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.servers import AquiferServer  # noqa: E402

AGENT, PURPOSE, MODEL = "support_assistant", "customer_support", "local_smollm2"
TOKEN = "aq_devsupport_development-only-support-assistant"
TARGET = 1.02
TEMPLATES = [
    "how do I handle {t}?",
    "what is the process for {t}?",
    "a customer asks about {t}: what should I tell them?",
    "what did customers report about {t}?",
    "is there a known issue with {t}?",
    "where is {t} documented?",
    "what changed recently about {t}?",
    "give me a short summary of {t}",
    "what is the policy for {t}?",
    "what should support check first for {t}?",
]
TOPICS = [
    "getting a refund for a duplicate charge",
    "resetting a password",
    "setting up single sign-on",
    "a rejected invoice",
    "migrating export jobs",
    "the enterprise plan pricing",
    "the data retention policy",
    "connector retries",
    "the usage analytics dashboard",
    "a database outage",
    "rotating API keys",
    "a billing dispute",
    "workspace permissions",
    "the legacy export API",
    "a customer who cannot log in",
    "API rate limits",
    "deleting a workspace",
    "two-factor authentication",
    "cancelling a subscription",
    "webhook signatures",
    "resetting the device",
    "firmware updates",
    "a failed payment",
    "the warranty",
]


def queries(seed: int) -> list[str]:
    base = [t.format(t=topic) for t, topic in itertools.product(TEMPLATES, TOPICS)]
    out = [q + " " * k for k in range(32) for q in base]  # another LRU key each, the same tokens
    random.Random(seed).shuffle(out)
    return out


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def stages(header: str) -> dict[str, float]:
    """A ``Server-Timing`` header's durations (ms) by stage."""
    out: dict[str, float] = {}
    for part in header.split(","):
        name, *fields = part.strip().split(";")
        for item in fields:
            key, _, value = item.strip().partition("=")
            if key == "dur" and name:
                out[name] = float(value)
    return out


def stage_p50(taken: list[dict[str, float]]) -> dict[str, float]:
    names = sorted({k for t in taken for k in t})
    return {k: round(statistics.median(t.get(k, 0.0) for t in taken), 2) for k in names} | {
        "total": round(statistics.median(sum(t.values()) for t in taken), 2)
    }


def machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy since boot (``/proc/stat``)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sink:
    """Answers every POST 200 with an empty ``ExportLogsServiceResponse``, counting requests and bytes."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

        answer = ExportLogsServiceResponse().SerializeToString()
        self.requests, self.bytes = 0, 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                self.rfile.read(size)
                sink.requests, sink.bytes = sink.requests + 1, sink.bytes + size
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Load:
    """``concurrency`` clients posting unique questions for ``seconds``; latencies in ms."""

    def __init__(self, url: str, qs: list[str]) -> None:
        self.url, self.qs, self.next = url, qs, 0
        self.stages: list[dict[str, float]] = []
        """The ``Server-Timing`` stages (ms) of every answer since last taken."""
        self.lock = threading.Lock()
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)

    def question(self) -> str:
        with self.lock:
            q, self.next = self.qs[self.next % len(self.qs)], self.next + 1
        return q

    def run(self, seconds: float, concurrency: int) -> list[float]:
        deadline = time.perf_counter() + seconds

        def client() -> list[float]:
            out = []
            while time.perf_counter() < deadline:
                body = {"query": self.question(), "purpose": PURPOSE, "model": MODEL, "top_k": 8}
                start = time.perf_counter()
                response = self.http.post("/v1/context", json=body)
                out.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text
                self.stages.append(stages(response.headers.get("server-timing", "")))
            return out

        with ThreadPoolExecutor(concurrency) as pool:
            return [ms for part in pool.map(lambda _: client(), range(concurrency)) for ms in part]


def start_shipper(env: dict[str, str], log: Path, *, once: bool = False) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "aquifer", "ship-decisions", *(["--once"] if once else [])]
    return subprocess.Popen(argv, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_started(proc: subprocess.Popen[bytes], log: Path, seen: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        if log.read_text().count("shipping ") > seen:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the shipper did not start: {log.read_text()[-2000:]}")


def serving(
    args: argparse.Namespace, server: AquiferServer, env: dict[str, str], root: Path, decisions: Path
) -> dict[str, Any]:
    """Blocks alternating off/on per concurrency level; the on blocks with a following shipper. Each block also
    records the CPU the rest of the machine used meanwhile (other processes: noise, reported)."""
    url, server_pid = server.url, server.proc.pid
    sink = Sink()
    load = Load(url, queries(args.seed))
    load.run(5, 1)  # warm-up: the first requests pay for caches and the prefilter
    log, cursor = root / "ship-serving.log", root / "serving.cursor.json"
    ship_env = env | {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "AQUIFER_DECISION_EXPORT_CURSOR": str(cursor)}
    out: dict[str, Any] = {}
    for concurrency in args.concurrency:
        ms: dict[str, list[float]] = {"off": [], "on": []}
        timing: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        pairs: list[dict[str, float]] = []
        cpu_s, shipped = 0.0, 0
        foreign: dict[str, float] = {"off": 0.0, "on": 0.0}
        for block in range(args.blocks):
            order = ("off", "on") if block % 2 == 0 else ("on", "off")
            pair: dict[str, float] = {}
            for condition in order:
                proc = None
                if condition == "on":
                    head = last_record(decisions)
                    assert head is not None
                    write_cursor(cursor, Cursor(head["log"], head["seq"], head["hash"]))
                    proc = start_shipper(ship_env, log)
                    wait_started(proc, log, log.read_text().count("shipping ") if log.exists() else 0)
                    time.sleep(1.0)  # its imports done: what is left is following the log
                    cpu0, first = process_cpu_s(proc.pid), head["seq"]
                load.stages = []
                ours = [server_pid, os.getpid(), *([proc.pid] if proc is not None else [])]
                busy0, ours0 = machine_busy_s(), sum(process_cpu_s(p) for p in ours)
                got = load.run(args.block_s, concurrency)
                foreign[condition] += machine_busy_s() - busy0 - (sum(process_cpu_s(p) for p in ours) - ours0)
                timing[condition] += load.stages
                if proc is not None:
                    time.sleep(0.5)  # the last records of the block shipped
                    cpu_s += process_cpu_s(proc.pid) - cpu0
                    head = last_record(decisions)
                    assert head is not None
                    shipped += head["seq"] - first
                    proc.send_signal(signal.SIGTERM)
                    assert proc.wait(30) == 0, log.read_text()[-2000:]
                ms[condition] += got
                pair[condition] = statistics.median(got)
            pairs.append(pair)
        level = {c: {"p50_ms": statistics.median(v), "p99_ms": pct(v, 0.99), "n": len(v)} for c, v in ms.items()}
        level["ratio"] = {
            "p50": level["on"]["p50_ms"] / level["off"]["p50_ms"],
            "p99": level["on"]["p99_ms"] / level["off"]["p99_ms"],
            "median_of_block_pairs": statistics.median(p["on"] / p["off"] for p in pairs),
            "meets_target": level["on"]["p50_ms"] / level["off"]["p50_ms"] <= TARGET,
        }
        level["throughput_per_s"] = {c: len(v) / (args.block_s * args.blocks) for c, v in ms.items()}
        level["shipper_cpu_ms_per_record"] = cpu_s * 1000 / max(1, shipped)
        level["server_stage_p50_ms"] = {c: stage_p50(v) for c, v in timing.items()}
        cores_s = args.block_s * args.blocks * (os.cpu_count() or 1)
        level["other_processes_cpu_share"] = {c: max(0.0, f) / cores_s for c, f in foreign.items()}
        level["shipped_during_on_blocks"] = shipped
        out[f"concurrency_{concurrency}"] = level
        print(json.dumps({f"concurrency_{concurrency}": level}, indent=1), flush=True)
    load.http.close()
    sink.close()
    return out


SUMMARY = re.compile(r"done: shipped (\d+) records .* in ([0-9.]+) s")


def throughput(args: argparse.Namespace, env: dict[str, str], root: Path, decisions: Path) -> dict[str, Any]:
    """``--records`` real records in a log of their own, shipped ``--runs`` times by ``ship-decisions --once``."""
    template = [
        {k: v for k, v in r.items() if k not in ("seq", "prev", "log", "hash", "segment")}
        for r in itertools.islice(read_records(decisions), 2000)
    ]
    data = root / "throughput"
    big = DecisionLog(data / "decisions", fsync=False)
    for i in range(args.records):
        big.append(template[i % len(template)] | {"decision_id": None, "time": None})
    size = sum(p.stat().st_size for p in (data / "decisions").glob("segment-*.jsonl"))
    ship_env = env | {
        "AQUIFER_DATA_DIR": str(data),
        "AQUIFER_DECISION_LOG_DIR": str(data / "decisions"),
        "AQUIFER_DECISION_EXPORT_CURSOR": str(data / "cursor.json"),
    }
    runs = []
    for _ in range(args.runs):
        sink = Sink()
        (data / "cursor.json").unlink(missing_ok=True)
        log = root / "ship-throughput.log"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "aquifer", "ship-decisions", "--once"],
            env=ship_env | {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url},
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.perf_counter() - started
        sink.close()
        match = SUMMARY.search(done.stderr)
        assert done.returncode == 0 and match, done.stderr[-2000:]
        assert int(match[1]) == args.records, done.stderr[-500:]
        seconds = float(match[2])
        runs.append(
            {
                "shipping_s": seconds,
                "wall_s": wall,
                "records_per_s": args.records / seconds,
                "requests": sink.requests,
                "mib_sent": sink.bytes / 2**20,
            }
        )
        print(json.dumps({"throughput_run": runs[-1]}), flush=True)
        log.write_text(done.stderr)
    with OtlpReceiver() as rx:  # the check: every record once, in order
        (data / "cursor.json").unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "aquifer", "ship-decisions", "--once"],
            env=ship_env | {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url},
            capture_output=True,
            text=True,
            timeout=600,
        )
        arrived = [r.body["seq"] for r in rx.logs]
    assert done.returncode == 0 and arrived == list(range(1, args.records + 1)), done.stderr[-2000:]
    return {
        "records": args.records,
        "log_mib": size / 2**20,
        "bytes_per_record_in_log": size / args.records,
        "batch_records": int(env.get("AQUIFER_DECISION_EXPORT_BATCH_RECORDS", "512")),
        "runs": runs,
        "records_per_s_median": statistics.median(r["records_per_s"] for r in runs),
        "checked_every_record_arrived_once_in_order": True,
    }


def machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.machine())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "load_avg_start": os.getloadavg(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "protobuf", "requests", "uvicorn")
    return {p: version(p) for p in names}


def table(results: dict[str, Any]) -> str:
    rows = [
        "| measure | shipper off | shipper on | ratio on/off |",
        "|---|---:|---:|---:|",
    ]
    for name, level in results["serving"].items():
        n = name.removeprefix("concurrency_")
        off, on, ratio = level["off"], level["on"], level["ratio"]
        rows += [
            f"| concurrency {n}: p50 | {off['p50_ms']:.1f} ms | {on['p50_ms']:.1f} ms | **{ratio['p50']:.3f}** |",
            f"| concurrency {n}: p99 | {off['p99_ms']:.1f} ms | {on['p99_ms']:.1f} ms | {ratio['p99']:.3f} |",
            f"| concurrency {n}: median of per-block-pair p50 ratios | | | {ratio['median_of_block_pairs']:.3f} |",
            f"| concurrency {n}: requests/s | {level['throughput_per_s']['off']:.1f} | "
            f"{level['throughput_per_s']['on']:.1f} | |",
            f"| concurrency {n}: shipper CPU per record shipped | | {level['shipper_cpu_ms_per_record']:.2f} ms "
            f"({level['shipped_during_on_blocks']} records) | |",
            f"| concurrency {n}: other processes' CPU (noise), share of the machine | "
            f"{level['other_processes_cpu_share']['off']:.1%} | {level['other_processes_cpu_share']['on']:.1%} | |",
        ]
    t = results["throughput"]
    per_run = ", ".join(f"{r['records_per_s']:.0f}" for r in t["runs"])
    rows.append(
        f"| shipping throughput, {t['records']:,} records ({t['bytes_per_record_in_log']:.0f} B each in the log), "
        f"batch {t['batch_records']} | | **{t['records_per_s_median']:.0f} records/s** (runs: {per_run}) | |"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="A materialized data dir (copied)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--blocks", type=int, default=6, help="Blocks per condition and concurrency level")
    parser.add_argument("--block-s", type=float, default=6.0, help="Seconds of load per block")
    parser.add_argument("--records", type=int, default=5000, help="Records in the throughput log")
    parser.add_argument("--runs", type=int, default=3, help="Throughput runs (the median is reported)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "ship.json")
    args = parser.parse_args()
    if not (args.data_dir / "index").exists():
        sys.exit(f"no index under {args.data_dir}: run `make up` or `aquifer materialize` first")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="aquifer-bench-ship-"))
    data = root / "data"
    shutil.copytree(args.data_dir, data, ignore=shutil.ignore_patterns("dagster", "decisions", "export"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_")  # no traces: only the shipper exports
    } | {
        "AQUIFER_DATA_DIR": str(data),
        "AQUIFER_CATALOG_DIR": str(ROOT / "catalog"),
        "AQUIFER_POLICY_DIR": str(ROOT / "policies"),
        "AQUIFER_DECISION_LOG_DIR": str(root / "decisions"),
        "DAGSTER_HOME": str(data / "dagster"),
        "HF_HUB_OFFLINE": "1",
    }
    server = AquiferServer(env, root / "server.log", ready="/readyz")
    results: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "command": " ".join(["python", "bench/ship.py", *sys.argv[1:]]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    try:
        results["serving"] = serving(args, server, env, root, root / "decisions")
    finally:
        server.stop()
    results["throughput"] = throughput(args, env, root, root / "decisions")
    print(json.dumps({"throughput": results["throughput"]}, indent=1), flush=True)
    results["machine"]["load_avg_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - started
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({k: v for k, v in results.items() if k not in ("serving", "throughput")}, indent=1))
    print()
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
