"""Request-trace benchmark (issue 15): what exporting OpenTelemetry spans costs ``POST /v1/context``, in one run
against two real ``aquifer serve`` (uvicorn) processes over the same copy of the materialized sample: one with
tracing configured (``OTEL_EXPORTER_OTLP_ENDPOINT`` at a real OTLP/HTTP receiver, :mod:`tests.otlp_receiver`, run in
a child process), one without (nothing installed: the service as it is when tracing is not configured).

Not a test: run ``python bench/tracing.py`` (``make bench-tracing``) after ``make up`` or ``aquifer materialize``
has built the index of the sample corpus (``--data-dir``, default ``./data``; copied once per server, each writes
its decision log into its copy). Agent ``support_assistant`` (its development token), purpose ``customer_support``,
model ``local_smollm2``, top_k 8, one ``httpx.Client`` (keep-alive) per server.

* **Unique queries**, each sent to both servers (each has its own query-vector LRU, so both pay the embedding).
* **Interleaved**: per question one request to each server, who goes first alternating, so the machine's noise hits
  both alike; ``--warmup`` questions first, not measured. Reported: p50/p90/p99 per server, the ratio of p50s, the
  median of the per-question ratios, and the server's own stage time (``Server-Timing``) per server.
* **Spans**: the receiver's span count at the end (``OTEL_BSP_SCHEDULE_DELAY`` left at its default, 5 s): 8 per
  request (the server span; auth, policy twice, embedding, search, assembly, log).
* **Control** (``--control``): the same run with tracing configured on neither server (an A/A comparison): the
  ratio two identical processes show on this machine, the noise floor of the ratio above.
* **Stage cost in-process**: ``Timings.stage`` with tracing off against the same context manager without the
  tracing test (the code before traces), and with tracing on (a span per stage), in ns per stage.

Prints a JSON summary and a markdown table; writes the JSON (``--json``, default ``bench/results/tracing.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import AquiferServer  # noqa: E402

AGENT, PURPOSE, MODEL = "support_assistant", "customer_support", "local_smollm2"
TOP_K = 8
TOKEN = "aq_devsupport_development-only-support-assistant"
SERVERS = ("untraced", "traced")
STAGES = ("auth", "policy", "embedding", "search", "assembly", "log")

TEMPLATES = [
    "how do I handle {t}?",
    "what is the process for {t}?",
    "a customer asks about {t}: what should I tell them?",
    "can you explain {t} step by step?",
    "what did customers report about {t}?",
    "is there a known issue with {t}?",
    "where is {t} documented?",
    "what changed recently about {t}?",
    "who owns {t} and how do I escalate it?",
    "what are the limits on {t}?",
    "give me a short summary of {t}",
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
    "exporting the audit log",
    "two-factor authentication",
    "changing the billing email",
    "downgrading a plan",
    "SLA credits",
    "a GDPR data subject request",
    "webhook signatures",
    "resetting the device",
    "firmware updates",
    "a slow dashboard",
    "a failed payment",
    "inviting a new team member",
    "the mobile app crashing",
    "a locked account",
    "cancelling a subscription",
    "a data export that never finished",
    "importing a CSV file",
]

RECEIVER = """
import sys
from tests.otlp_receiver import OtlpReceiver
rx = OtlpReceiver()
print(rx.url, flush=True)
sys.stdin.read()
print(len(rx.spans), len(rx.requests), sum(r["bytes"] for r in rx.requests), flush=True)
"""


def questions(seed: int) -> list[str]:
    out = [t.format(t=topic) for t, topic in itertools.product(TEMPLATES, TOPICS)]
    random.Random(seed).shuffle(out)
    return out


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(values_ms),
        "p90_ms": pct(values_ms, 0.90),
        "p99_ms": pct(values_ms, 0.99),
        "mean_ms": statistics.fmean(values_ms),
        "n": len(values_ms),
    }


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


class Receiver:
    """The OTLP/HTTP receiver in a child process (its decoding never competes with this process's timing)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def close(self) -> dict[str, int]:
        out, _ = self.proc.communicate("", timeout=60)
        spans, posts, size = (int(x) for x in out.split())
        return {"spans": spans, "posts": posts, "bytes": size}


def stage_cost(n: int) -> dict[str, float]:
    """ns per ``Timings.stage`` (best of 5 samples): the code before traces, tracing off, and on (1,000 calls per
    sample, fewer than the span processor's queue holds, a pause between samples for it to export them to a
    receiver of their own)."""
    import logging

    from aquifer.export import tracing
    from aquifer.service.metrics import Timings

    seconds: dict[str, float] = {}

    @contextmanager
    def before(name: str) -> Iterator[None]:  # Timings.stage as it was before traces
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

    def per_stage(stage: Any, calls: int, pause_s: float = 0.0) -> float:
        best = float("inf")
        for _ in range(5):
            time.sleep(pause_s)
            start = time.perf_counter_ns()
            for _ in range(calls):
                with stage("policy"):
                    pass
            best = min(best, (time.perf_counter_ns() - start) / calls)
        return best

    tracing.reset()
    out = {"before_ns": per_stage(before, n), "off_ns": per_stage(Timings().stage, n)}
    receiver = Receiver()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)  # "Queue full, dropping span", once per span
    try:
        tracing.configure()
        out["on_ns"] = per_stage(Timings().stage, min(n, 1000), pause_s=1.0)
    finally:
        tracing.reset()
        del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        receiver.close()
    return out


def run(clients: dict[str, httpx.Client], qs: Sequence[str]) -> dict[str, list[tuple[float, dict[str, float]]]]:
    """Per question one request to each server, who goes first alternating: (round trip, Server-Timing stages) in
    ms."""
    out: dict[str, list[tuple[float, dict[str, float]]]] = {s: [] for s in SERVERS}
    for i, q in enumerate(qs):
        for name in SERVERS if i % 2 == 0 else SERVERS[::-1]:
            body = {"query": q, "purpose": PURPOSE, "model": MODEL, "top_k": TOP_K}
            start = time.perf_counter()
            response = clients[name].post("/v1/context", json=body)
            response.json()
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, response.text
            out[name].append((elapsed, stages(response.headers.get("server-timing", ""))))
    return out


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

    names = ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "opentelemetry-instrumentation-asgi")
    return {p: version(p) for p in (*names, "fastapi", "starlette", "uvicorn")}


def table(results: dict[str, Any]) -> str:
    u, t = results["untraced"], results["traced"]
    c = results["stage_cost"]
    rows = [
        "| measure | not configured | "
        + ("not configured either (control)" if results["args"]["control"] else "traced (OTLP/HTTP)")
        + " | ratio |",
        "|---|---:|---:|---:|",
        f"| p50 | {u['p50_ms']:.1f} ms | {t['p50_ms']:.1f} ms | **{results['p50_ratio']:.3f}** |",
        f"| p90 | {u['p90_ms']:.1f} ms | {t['p90_ms']:.1f} ms | {t['p90_ms'] / u['p90_ms']:.3f} |",
        f"| p99 | {u['p99_ms']:.1f} ms | {t['p99_ms']:.1f} ms | {t['p99_ms'] / u['p99_ms']:.3f} |",
        f"| median of per-question ratios | | | {results['paired_median_ratio']:.3f} |",
        f"| p50 difference | | {t['p50_ms'] - u['p50_ms']:+.2f} ms | |",
        f"| server stages p50 (`Server-Timing`) | {u['server_p50_ms']:.1f} ms | {t['server_p50_ms']:.1f} ms | "
        f"{t['server_p50_ms'] / u['server_p50_ms']:.3f} |",
        *(
            f"| &nbsp;&nbsp;{k} p50 | {us:.2f} ms | {ts:.2f} ms | {ts - us:+.2f} ms |"
            for k, us in u["server_stage_p50_ms"].items()
            for ts in [t["server_stage_p50_ms"].get(k, 0.0)]
        ),
        f"| `Timings.stage`, in-process | {c['off_ns']:.0f} ns (before traces: {c['before_ns']:.0f} ns) | "
        f"{c['on_ns']:.0f} ns | |",
        f"| spans received | | {results['receiver']['spans']} ({results['spans_per_request']:.1f} per request) | |",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="A materialized data dir (copied)")
    parser.add_argument("--requests", type=int, default=300, help="Measured requests per server")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--stage-calls", type=int, default=100_000, help="Timings.stage calls per in-process sample")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--control", action="store_true", help="Configure tracing on neither server (A/A)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "tracing.json")
    args = parser.parse_args()
    if not (args.data_dir / "index").exists():
        sys.exit(f"no index under {args.data_dir}: run `make up` or `aquifer materialize` first")
    qs = questions(args.seed)
    if args.warmup + args.requests > len(qs):
        sys.exit(f"{args.warmup + args.requests} distinct questions needed, {len(qs)} available")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="aquifer-bench-tracing-"))
    receiver = Receiver()
    results: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "command": " ".join(["python", "bench/tracing.py", *sys.argv[1:]]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "agent": AGENT,
    }
    results["stage_cost"] = stage_cost(args.stage_calls)
    print(json.dumps({"stage_cost": results["stage_cost"]}), flush=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    servers: dict[str, AquiferServer] = {}
    try:
        for name in SERVERS:
            data = root / name / "data"
            shutil.copytree(args.data_dir, data, ignore=shutil.ignore_patterns("dagster", "decisions"))
            env = {
                **clean,
                "AQUIFER_DATA_DIR": str(data),
                "AQUIFER_CATALOG_DIR": str(ROOT / "catalog"),
                "AQUIFER_POLICY_DIR": str(ROOT / "policies"),
                "AQUIFER_DECISION_LOG_DIR": str(root / name / "decisions"),
                "DAGSTER_HOME": str(data / "dagster"),
                "HF_HUB_OFFLINE": "1",
            }
            if name == "traced" and not args.control:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
            servers[name] = AquiferServer(env, root / f"{name}.log", ready="/readyz")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        clients = {n: httpx.Client(base_url=s.url, headers=headers, timeout=120) for n, s in servers.items()}
        run(clients, qs[: args.warmup])
        start = time.perf_counter()
        measured = run(clients, qs[args.warmup : args.warmup + args.requests])
        results["measured_wall_s"] = time.perf_counter() - start
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()  # the traced one flushes its spans
        results["receiver"] = receiver.close()
    for name in SERVERS:
        calls = measured[name]
        names = [k for k in STAGES if any(k in st for _, st in calls)]
        results[name] = summary([ms for ms, _ in calls]) | {
            "server_p50_ms": statistics.median(sum(st.values()) for _, st in calls),
            "server_stage_p50_ms": {k: statistics.median(st.get(k, 0.0) for _, st in calls) for k in names},
        }
    u, t = measured["untraced"], measured["traced"]
    results["p50_ratio"] = results["traced"]["p50_ms"] / results["untraced"]["p50_ms"]
    results["paired_median_ratio"] = statistics.median(a[0] / b[0] for a, b in zip(t, u, strict=True))
    results["spans_per_request"] = results["receiver"]["spans"] / (args.warmup + args.requests)
    results["machine"]["load_avg_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - started
    results["raw_ms"] = {name: [ms for ms, _ in measured[name]] for name in SERVERS}
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({k: v for k, v in results.items() if k != "raw_ms"}, indent=1))
    print()
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
