"""MCP benchmark (issue 14): what a ``search_context`` tool call over Streamable HTTP costs against the same request
to ``POST /v1/context``, in one run against one real ``aquifer serve`` (uvicorn) over the materialized sample.

Not a test: run ``python bench/mcp.py`` (``make bench-mcp``) after ``make up`` or ``aquifer materialize`` has built
the index of the sample corpus (``--data-dir``, default ``./data``; it is copied, the server writes its decision log
into the copy). Agent ``support_assistant`` (its development token), purpose ``customer_support``, model
``local_smollm2`` for REST (the MCP tool uses the agent's default model, the same one), top_k 8 on both channels.

* **Unique queries.** The service keeps an LRU of query vectors, so a repeated query would skip the embedding (most
  of a call's CPU). Every measured call is a question the server has not seen: templates x topics, shuffled, one
  question per measurement. Both channels get the same question, the one going second with a trailing space
  appended: another LRU key, the same tokens for the embedding model's tokenizer (checked here: the two vectors are
  compared in process), so both channels pay the embedding and must return the same chunks.
* **Sequential.** One MCP session (one ``mcp.Client`` for the whole run, as an MCP client holds one) and one
  ``httpx.Client`` (keep-alive) for REST; per question one REST call and one tool call, the order alternating per
  question, so the machine's noise hits both. 10 calls per channel of warm-up first, not measured.
* **Chunk ids.** For every question, the chunk ids (in order) of both channels are compared; mismatches are
  counted and printed (expected: 0).
* **Session open.** A new ``mcp.Client`` per question: ``initialize`` (the handshake), then the first tool call
  (which also lists the tools: the client validates results against the tool's output schema); against a new
  ``httpx.Client`` (a new connection) and its first POST.
* **Concurrency.** ``--concurrency`` (4) MCP sessions (asyncio tasks, one event loop) against as many REST clients
  (threads), in rounds of ``--round`` questions, the channel order alternating per round: p50/p99 per call and
  throughput (calls over the summed wall time of that channel's rounds).

Prints a JSON summary and a markdown table; writes the JSON (``--json``, default ``bench/results/mcp.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this file's folder comes first on sys.path, and this file would shadow the `mcp` SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from tests.servers import AquiferServer  # noqa: E402

AGENT, PURPOSE, MODEL = "support_assistant", "customer_support", "local_smollm2"
TOKEN = "aq_devsupport_development-only-support-assistant"
TOP_K = 8
TOOL = "search_context"
TARGET = 1.15

TEMPLATES = [
    "how do I {t}?",
    "what is the process for {t}?",
    "a customer asks about {t}: what should I tell them?",
    "can you explain {t} step by step?",
    "what did customers report about {t}?",
    "is there a known issue with {t}?",
    "where is {t} documented?",
    "what changed recently in {t}?",
    "who owns {t} and how do I escalate it?",
    "why does {t} fail for some accounts?",
    "what are the limits on {t}?",
    "give me a short summary of {t}",
    "what is the policy for {t}?",
    "how long does {t} usually take?",
    "what should support check first about {t}?",
    "what are common mistakes with {t}?",
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
    "the on-call rotation",
    "a billing dispute",
    "workspace permissions",
    "the 3.2 release",
    "the legacy export API",
    "a customer who cannot log in",
    "API rate limits",
    "deleting a workspace",
    "exporting the audit log",
    "upgrading from the team plan",
    "failing scheduled pipelines",
    "two-factor authentication",
    "changing the billing email",
    "downgrading a plan",
    "the status page",
    "SLA credits",
    "a GDPR data subject request",
    "webhook signatures",
    "resetting the device",
    "firmware updates",
    "a slow dashboard",
]


# -- helpers ---------------------------------------------------------------------------------------------------------


def questions(seed: int) -> list[str]:
    out = [t.format(t=topic) for t, topic in itertools.product(TEMPLATES, TOPICS)]
    random.Random(seed).shuffle(out)
    assert len(set(out)) == len(out)
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


def variant(question: str, second: bool) -> str:
    """The question as the channel going first / second sends it (a different LRU key, the same tokens)."""
    return question + " " if second else question


def stages(header: str) -> dict[str, float]:
    """A ``Server-Timing`` header's durations (ms) by stage."""
    out: dict[str, float] = {}
    for part in header.split(","):
        name, *fields = part.strip().split(";")
        for field in fields:
            key, _, value = field.strip().partition("=")
            if key == "dur" and name:
                out[name] = float(value)
    return out


# -- the two channels ------------------------------------------------------------------------------------------------


class Rest:
    """One persistent ``httpx.Client`` (keep-alive)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)

    def call(self, query: str) -> tuple[float, list[str], dict[str, float]]:
        """(round trip ms, chunk ids, server stages in ms) of one ``POST /v1/context``."""
        body = {"query": query, "purpose": PURPOSE, "model": MODEL, "top_k": TOP_K}
        start = time.perf_counter()
        response = self.http.post("/v1/context", json=body)
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, response.text
        ids = [c["chunk_id"] for c in response.json()["chunks"]]
        return elapsed, ids, stages(response.headers.get("server-timing", ""))

    def close(self) -> None:
        self.http.close()


def mcp_client(url: str) -> Any:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    return Client(streamable_http_client(url + "/mcp", http_client=http))


async def mcp_call(client: Any, query: str) -> tuple[float, list[str]]:
    """(round trip ms, chunk ids) of one ``search_context`` tool call on an open session."""
    start = time.perf_counter()
    result = await client.call_tool(TOOL, {"query": query, "purpose": PURPOSE, "top_k": TOP_K})
    elapsed = (time.perf_counter() - start) * 1000
    assert not result.is_error, result.content
    return elapsed, [c["chunk_id"] for c in result.structured_content["chunks"]]


# -- the parts -------------------------------------------------------------------------------------------------------


class Mismatches:
    def __init__(self) -> None:
        self.count, self.checked = 0, 0
        self.examples: list[dict[str, Any]] = []

    def check(self, phase: str, question: str, rest: list[str], mcp: list[str]) -> None:
        self.checked += 1
        if rest != mcp:
            self.count += 1
            self.examples.append({"phase": phase, "question": question, "rest": rest, "mcp": mcp})
            print(f"MISMATCH ({phase}) {question!r}: rest {rest} mcp {mcp}", flush=True)


async def sequential(
    rest: Rest, client: Any, qs: Sequence[str], mismatches: Mismatches, phase: str
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"rest": [], "mcp": [], "rest_server": [], "rest_stages": [], "pair_ratio": []}
    for i, q in enumerate(qs):
        order = ("rest", "mcp") if i % 2 == 0 else ("mcp", "rest")
        ids: dict[str, list[str]] = {}
        ms: dict[str, float] = {}
        for position, channel in enumerate(order):
            query = variant(q, second=position == 1)
            if channel == "rest":
                ms["rest"], ids["rest"], server = rest.call(query)
                out["rest_server"].append(sum(server.values()))
                out["rest_stages"].append(server)
            else:
                ms["mcp"], ids["mcp"] = await mcp_call(client, query)
        out["rest"].append(ms["rest"])
        out["mcp"].append(ms["mcp"])
        out["pair_ratio"].append(ms["mcp"] / ms["rest"])
        mismatches.check(phase, q, ids["rest"], ids["mcp"])
    return out


async def session_open(url: str, qs: Sequence[str], mismatches: Mismatches) -> dict[str, Any]:
    """A new MCP session (initialize, first call) against a new REST client (connect, first POST), per question."""
    names = ("mcp_initialize", "mcp_first_call", "mcp_open_total", "mcp_close", "rest_new")
    rows: dict[str, list[float]] = {k: [] for k in names}
    for i, q in enumerate(qs):
        ids: dict[str, list[str]] = {}
        for position, channel in enumerate(("rest", "mcp") if i % 2 == 0 else ("mcp", "rest")):
            query = variant(q, second=position == 1)
            if channel == "rest":
                start = time.perf_counter()
                rest = Rest(url)
                _, ids["rest"], _ = rest.call(query)
                rows["rest_new"].append((time.perf_counter() - start) * 1000)
                rest.close()
            else:
                start = time.perf_counter()
                async with mcp_client(url) as client:
                    opened = time.perf_counter()
                    _, ids["mcp"] = await mcp_call(client, query)
                    done = time.perf_counter()
                closed = time.perf_counter()
                rows["mcp_initialize"].append((opened - start) * 1000)
                rows["mcp_first_call"].append((done - opened) * 1000)
                rows["mcp_open_total"].append((done - start) * 1000)
                rows["mcp_close"].append((closed - done) * 1000)
        mismatches.check("session_open", q, ids["rest"], ids["mcp"])
    return {k: {"median_ms": statistics.median(v), "values_ms": v} for k, v in rows.items()}


def rest_round(url: str, clients: Sequence[Rest], qs: Sequence[str], second: bool) -> tuple[float, list[Any]]:
    """The round's questions through ``len(clients)`` threads, each with its own client. (wall s, [(q, ms, ids)])"""
    work: queue.Queue[str] = queue.Queue()
    for q in qs:
        work.put(q)
    done: list[Any] = []
    lock = threading.Lock()

    def worker(rest: Rest) -> None:
        while True:
            try:
                q = work.get_nowait()
            except queue.Empty:
                return
            ms, ids, _ = rest.call(variant(q, second))
            with lock:
                done.append((q, ms, ids))

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, done


async def mcp_round(clients: Sequence[Any], qs: Sequence[str], second: bool) -> tuple[float, list[Any]]:
    work: asyncio.Queue[str] = asyncio.Queue()
    for q in qs:
        work.put_nowait(q)
    done: list[Any] = []

    async def worker(client: Any) -> None:
        while not work.empty():
            q = work.get_nowait()
            ms, ids = await mcp_call(client, variant(q, second))
            done.append((q, ms, ids))

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return time.perf_counter() - start, done


async def concurrent(
    url: str, qs: Sequence[str], concurrency: int, round_size: int, mismatches: Mismatches
) -> dict[str, Any]:
    rests = [Rest(url) for _ in range(concurrency)]
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(mcp_client(url)) for _ in range(concurrency)]
        return await _concurrent(rests, sessions, url, qs, round_size, mismatches, concurrency)


async def _concurrent(
    rests: Sequence[Rest],
    sessions: Sequence[Any],
    url: str,
    qs: Sequence[str],
    round_size: int,
    mismatches: Mismatches,
    concurrency: int,
) -> dict[str, Any]:
    warm = [f"warm-up question number {i} about refunds" for i in range(concurrency * 2)]
    await mcp_round(sessions, warm, False)  # each session lists its tools once
    rest_round(url, rests, warm, True)
    lat: dict[str, list[float]] = {"rest": [], "mcp": []}
    wall = {"rest": 0.0, "mcp": 0.0}
    ids: dict[str, dict[str, list[str]]] = {"rest": {}, "mcp": {}}
    for r, start in enumerate(range(0, len(qs), round_size)):
        chunk = qs[start : start + round_size]
        for position, channel in enumerate(("rest", "mcp") if r % 2 == 0 else ("mcp", "rest")):
            if channel == "rest":
                seconds, done = rest_round(url, rests, chunk, position == 1)
            else:
                seconds, done = await mcp_round(sessions, chunk, position == 1)
            wall[channel] += seconds
            for q, ms, got in done:
                lat[channel].append(ms)
                ids[channel][q] = got
    for q in qs:
        mismatches.check(f"concurrency_{concurrency}", q, ids["rest"][q], ids["mcp"][q])
    for c in rests:
        c.close()
    out: dict[str, Any] = {}
    for channel in ("rest", "mcp"):
        out[channel] = summary(lat[channel]) | {
            "throughput_per_s": len(lat[channel]) / wall[channel],
            "wall_s": wall[channel],
        }
    out["p50_ratio"] = out["mcp"]["p50_ms"] / out["rest"]["p50_ms"]
    out["p99_ratio"] = out["mcp"]["p99_ms"] / out["rest"]["p99_ms"]
    out["throughput_ratio"] = out["mcp"]["throughput_per_s"] / out["rest"]["throughput_per_s"]
    return out


def same_tokens(qs: Sequence[str]) -> dict[str, Any]:
    """Whether ``q`` and ``q + " "`` embed to the same vector (the trick that keeps both channels cold)."""
    import numpy as np

    from aquifer.embedding import Embedder

    embedder = Embedder()
    a = embedder.encode(list(qs))
    b = embedder.encode([variant(q, True) for q in qs])
    diff = float(np.max(np.abs(a - b)))
    return {"checked": len(qs), "max_abs_diff": diff, "same": diff < 1e-5}


# -- main ------------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "load_avg_start": os.getloadavg(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("mcp", "httpx", "httpx2", "uvicorn", "starlette", "fastapi", "pydantic")}


def table(results: dict[str, Any]) -> str:
    seq, conc, opened = results["sequential"], results["concurrency"], results["session_open"]
    c = results["args"]["concurrency"]
    rows = [
        "| measure | REST `POST /v1/context` | MCP `search_context` | MCP / REST |",
        "|---|---:|---:|---:|",
        f"| sequential p50 | {seq['rest']['p50_ms']:.1f} ms | {seq['mcp']['p50_ms']:.1f} ms | "
        f"**{seq['p50_ratio']:.3f}** |",
        f"| sequential p99 | {seq['rest']['p99_ms']:.1f} ms | {seq['mcp']['p99_ms']:.1f} ms | {seq['p99_ratio']:.3f} |",
        f"| sequential, median of per-question ratios | | | {seq['paired_median_ratio']:.3f} |",
        f"| sequential p50 difference | | | {seq['p50_diff_ms']:+.1f} ms |",
        f"| REST server stages p50 (`Server-Timing`) | {seq['rest_server_p50_ms']:.1f} ms | | |",
        f"| concurrency {c} p50 | {conc['rest']['p50_ms']:.1f} ms | {conc['mcp']['p50_ms']:.1f} ms | "
        f"{conc['p50_ratio']:.3f} |",
        f"| concurrency {c} p99 | {conc['rest']['p99_ms']:.1f} ms | {conc['mcp']['p99_ms']:.1f} ms | "
        f"{conc['p99_ratio']:.3f} |",
        f"| concurrency {c} throughput | {conc['rest']['throughput_per_s']:.1f} /s | "
        f"{conc['mcp']['throughput_per_s']:.1f} /s | {conc['throughput_ratio']:.3f} |",
        f"| new client + first call (median) | {opened['rest_new']['median_ms']:.1f} ms | "
        f"{opened['mcp_open_total']['median_ms']:.1f} ms | "
        f"{opened['mcp_open_total']['median_ms'] / opened['rest_new']['median_ms']:.3f} |",
        f"| of which MCP initialize / first call (median) | | {opened['mcp_initialize']['median_ms']:.1f} / "
        f"{opened['mcp_first_call']['median_ms']:.1f} ms | |",
        f"| chunk-id mismatches | | {results['mismatches']} of {results['checked']} questions | |",
    ]
    return "\n".join(rows)


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    qs = questions(args.seed)
    need = 10 + args.calls + args.sessions + args.concurrent_calls
    if need > len(qs):
        sys.exit(f"{need} distinct questions needed, {len(qs)} available: lower --calls/--concurrent-calls")
    warm, measured = qs[:10], qs[10 : 10 + args.calls]
    opening = qs[10 + args.calls : 10 + args.calls + args.sessions]
    conc = qs[10 + args.calls + args.sessions : need]
    mismatches = Mismatches()
    results: dict[str, Any] = {}

    rest = Rest(url)
    async with mcp_client(url) as client:
        await sequential(rest, client, warm, mismatches, "warm-up")
        t = time.perf_counter()
        seq = await sequential(rest, client, measured, mismatches, "sequential")
        results["sequential_wall_s"] = time.perf_counter() - t
    rest.close()
    s = results["sequential"] = {
        "rest": summary(seq["rest"]),
        "mcp": summary(seq["mcp"]),
        "rest_server_p50_ms": statistics.median(seq["rest_server"]),
        "rest_stage_p50_ms": {
            k: statistics.median([st.get(k, 0.0) for st in seq["rest_stages"]])
            for k in sorted({k for st in seq["rest_stages"] for k in st})
        },
    }
    s["p50_ratio"] = s["mcp"]["p50_ms"] / s["rest"]["p50_ms"]
    s["p99_ratio"] = s["mcp"]["p99_ms"] / s["rest"]["p99_ms"]
    s["p50_diff_ms"] = s["mcp"]["p50_ms"] - s["rest"]["p50_ms"]
    s["paired_median_ratio"] = statistics.median(seq["pair_ratio"])
    s["rest_transport_p50_ms"] = statistics.median(
        [total - server for total, server in zip(seq["rest"], seq["rest_server"], strict=True)]
    )
    s["meets_target"] = s["p50_ratio"] <= TARGET
    print(json.dumps({"sequential": s}, indent=1), flush=True)

    results["session_open"] = await session_open(url, opening, mismatches)
    print(json.dumps({k: v["median_ms"] for k, v in results["session_open"].items()}, indent=1), flush=True)

    results["concurrency"] = await concurrent(url, conc, args.concurrency, args.round, mismatches)
    print(json.dumps({"concurrency": results["concurrency"]}, indent=1), flush=True)
    results["mismatches"], results["checked"] = mismatches.count, mismatches.checked
    results["mismatch_examples"] = mismatches.examples[:10]
    results["raw_sequential_ms"] = {k: seq[k] for k in ("rest", "mcp", "rest_server", "rest_stages")}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="A materialized data dir (copied)")
    parser.add_argument("--calls", type=int, default=200, help="Measured sequential calls per channel")
    parser.add_argument("--sessions", type=int, default=10, help="New sessions / new REST clients measured")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--concurrent-calls", type=int, default=160, help="Calls per channel at --concurrency")
    parser.add_argument("--round", type=int, default=40, help="Questions per round at --concurrency")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "mcp.json")
    args = parser.parse_args()
    if not (args.data_dir / "index").exists():
        sys.exit(f"no index under {args.data_dir}: run `make up` or `aquifer materialize` first")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="aquifer-bench-mcp-"))
    data = root / "data"
    shutil.copytree(args.data_dir, data, ignore=shutil.ignore_patterns("dagster", "decisions"))
    check = same_tokens(questions(args.seed)[:40])
    print(json.dumps({"trailing_space_same_vector": check}), flush=True)
    env = {
        **os.environ,
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
        "command": " ".join(["python", "bench/mcp.py", *sys.argv[1:]]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "trailing_space_same_vector": check,
    }
    try:
        results |= asyncio.run(run(args, server.url))
    finally:
        server.stop()
    results["machine"]["load_avg_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - started
    shutil.rmtree(root, ignore_errors=True)
    brief = {k: v for k, v in results.items() if not k.startswith("raw_")}
    brief["session_open"] = {k: v["median_ms"] for k, v in results["session_open"].items()}
    print(json.dumps(brief, indent=1))
    print()
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
