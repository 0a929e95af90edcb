"""MCP benchmark (issue 14): what a ``search_context`` tool call over Streamable HTTP costs against the same request
to ``POST /v1/context``, in one run against one real ``aquifer serve`` (uvicorn) over the materialized sample.

Not a test: run ``python bench/mcp.py`` (``make bench-mcp``) after ``make up`` or ``aquifer materialize`` has built
the index of the sample corpus (``--data-dir``, default ``./data``; it is copied, the server writes its decision log
into the copy). Agent ``support_assistant`` (its development token), purpose ``customer_support``, model
``local_smollm2`` for REST (the MCP tool uses the agent's default model, the same one), top_k 8 on every channel.

Three channels, each a client of the same server:

* ``rest``: one ``httpx.Client`` (keep-alive), ``POST /v1/context``, the JSON parsed;
* ``mcp``: the official SDK's ``mcp.Client`` as it comes (``mode="auto"``: it negotiates the newest protocol the
  server speaks, 2026-07-28 with this SDK: ``server/discover``, then each call a plain JSON response);
* ``mcp_legacy``: the same client with ``mode="legacy"``: the ``initialize`` handshake of the 2025 protocol, an
  ``Mcp-Session-Id``, SSE-framed responses (what clients built on the 2025 protocol do).

Each MCP channel is one long-lived client (one ``mcp.Client`` for the whole run, as an MCP host holds one); each
measured call is one ``call_tool`` round trip, the SDK's result parsing and output-schema validation included.

* **Unique queries.** The service keeps an LRU of query vectors, so a repeated query would skip the embedding (most
  of a call's CPU). Every measured call is a question the server has not seen: templates x topics, shuffled, one
  question per measurement, sent to every channel. The channel going k-th sends it with k trailing spaces: another
  LRU key, the same tokens for the embedding model (checked: the vectors are compared, in a child process), so
  every channel pays the embedding and all must return the same chunks.
* **Sequential.** Per question one call per channel, the order cycling through all six permutations, so the
  machine's noise hits every channel alike. 10 questions of warm-up first, not measured.
* **Chunk ids.** For every question, the chunk ids (in order) of every channel are compared with REST's; mismatches
  are counted and printed (expected: 0).
* **Session open.** A new client per question (constructed outside the timing): the handshake (``server/discover``
  or ``initialize``), then the first tool call, which also lists the tools (the client validates results against
  the tool's output schema, compiled on first use); against a new ``httpx.Client``'s first POST (a new connection).
* **Concurrency.** ``--concurrency`` (4) clients per channel (MCP: asyncio tasks in one event loop; REST: threads),
  in rounds of ``--round`` questions, the channel order cycling per round: p50/p99 per call and throughput (calls
  over the summed wall time of that channel's rounds).
* **Attribution.** One repeated question (an LRU hit: no embedding, so the transport's share is largest), in blocks
  per channel: round trip p50, this process's CPU per call (``time.process_time``), the server's CPU per call
  (``/proc/<pid>/stat`` over the blocks) and the SDK client's output-schema validation per call (measured by
  wrapping ``ClientSession.validate_tool_result``; the wrapper costs microseconds).

The measuring process stays lean (the vector check runs in a child process) and records its own garbage
collections per part (``client_gc``): a full collection lands on every call in flight.

Prints a JSON summary and a markdown table; writes the JSON (``--json``, default ``bench/results/mcp.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import platform
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    "how do I handle {t}?",
    "what is the process for {t}?",
    "a customer asks about {t}: what should I tell them?",
    "can you explain {t} step by step?",
    "what did customers report about {t}?",
    "is there a known issue with {t}?",
    "where is {t} documented?",
    "what changed recently about {t}?",
    "who owns {t} and how do I escalate it?",
    "why do problems with {t} affect only some accounts?",
    "what are the limits on {t}?",
    "give me a short summary of {t}",
    "what is the policy for {t}?",
    "how long does dealing with {t} usually take?",
    "what should support check first for {t}?",
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
    "a failed payment",
    "inviting a new team member",
    "the mobile app crashing",
    "a lost order confirmation",
    "changing the account owner",
    "the warranty",
    "a late delivery",
    "the sandbox environment",
    "importing a CSV file",
    "the search index being out of date",
    "a locked account",
    "the developer portal",
    "the invoice currency",
    "cancelling a subscription",
    "the support hours",
    "a data export that never finished",
]

CHANNELS = ("rest", "mcp", "mcp_legacy")
MCP_MODES = {"mcp": "auto", "mcp_legacy": "legacy"}
"""The MCP channels and the ``mcp.Client`` mode of each."""
ORDERS = list(itertools.permutations(CHANNELS))
"""Who goes first: cycled per question (sequential, session open) or per round (concurrency, attribution)."""


# -- helpers ---------------------------------------------------------------------------------------------------------


def questions(seed: int) -> list[str]:
    out = [t.format(t=topic) for t, topic in itertools.product(TEMPLATES, TOPICS)]
    random.Random(seed).shuffle(out)
    assert len(set(out)) == len(out)
    return out


def variant(question: str, position: int) -> str:
    """The question as the channel going ``position``-th sends it: another LRU key, the same tokens."""
    return question + " " * position


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


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_validation() -> list[float]:
    """Wrap the SDK client's output-schema check of every tool result (``ClientSession.validate_tool_result``:
    jsonschema over ``structured_content``) to record its milliseconds; returns the list it appends to."""
    from mcp.client.session import ClientSession

    spent: list[float] = []
    original = ClientSession.validate_tool_result

    async def timed(self: Any, name: str, result: Any) -> None:
        start = time.perf_counter()
        try:
            await original(self, name, result)
        finally:
            spent.append((time.perf_counter() - start) * 1000)

    ClientSession.validate_tool_result = timed  # type: ignore[method-assign]
    return spent


# -- the channels ----------------------------------------------------------------------------------------------------


@dataclass
class Call:
    ms: float
    ids: list[str]
    cpu_ms: float
    """This process's CPU time in the call (meaningful only when nothing else runs in this process meanwhile)."""
    validation_ms: float = 0.0
    server: dict[str, float] = field(default_factory=dict)
    """REST: the ``Server-Timing`` stages (ms)."""


class Rest:
    """One persistent ``httpx.Client`` (keep-alive)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)

    def call(self, query: str) -> Call:
        """One ``POST /v1/context``, its JSON parsed (a tool call's time includes its parsing too)."""
        body = {"query": query, "purpose": PURPOSE, "model": MODEL, "top_k": TOP_K}
        cpu, start = time.process_time(), time.perf_counter()
        response = self.http.post("/v1/context", json=body)
        answer = response.json()
        elapsed, cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
        assert response.status_code == 200, response.text
        ids = [c["chunk_id"] for c in answer["chunks"]]
        return Call(elapsed, ids, cpu_ms, server=stages(response.headers.get("server-timing", "")))

    def close(self) -> None:
        self.http.close()


class Mcp:
    """One ``mcp.Client`` over Streamable HTTP (connected by ``async with``); ``validation`` is
    :func:`time_validation`'s list."""

    def __init__(self, url: str, mode: str, validation: list[float]) -> None:
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
        self.client = Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode)  # type: ignore[arg-type]
        self.validation = validation

    async def __aenter__(self) -> Mcp:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)

    async def call(self, query: str) -> Call:
        """One ``search_context`` round trip (``validation_ms`` is exact only when no other call runs meanwhile)."""
        seen = len(self.validation)
        cpu, start = time.process_time(), time.perf_counter()
        result = await self.client.call_tool(TOOL, {"query": query, "purpose": PURPOSE, "top_k": TOP_K})
        elapsed, cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
        assert not result.is_error, result.content
        ids = [c["chunk_id"] for c in result.structured_content["chunks"]]
        return Call(elapsed, ids, cpu_ms, validation_ms=sum(self.validation[seen:]))


async def call(client: Rest | Mcp, query: str) -> Call:
    return client.call(query) if isinstance(client, Rest) else await client.call(query)


class Mismatches:
    def __init__(self) -> None:
        self.count, self.checked = 0, 0
        self.examples: list[dict[str, Any]] = []

    def check(self, phase: str, question: str, ids: dict[str, list[str]]) -> None:
        """Every MCP channel's chunk ids against REST's."""
        for channel in MCP_MODES:
            self.checked += 1
            if ids[channel] != ids["rest"]:
                self.count += 1
                self.examples.append({"phase": phase, "question": question, "channel": channel} | ids)
                print(f"MISMATCH ({phase}, {channel}) {question!r}: {ids}", flush=True)


# -- the parts -------------------------------------------------------------------------------------------------------


async def sequential(
    clients: dict[str, Rest | Mcp], qs: Sequence[str], mismatches: Mismatches, phase: str
) -> dict[str, list[Call]]:
    """Per question one call per channel, the order cycling through every permutation."""
    out: dict[str, list[Call]] = {c: [] for c in CHANNELS}
    for i, q in enumerate(qs):
        got = {}
        for position, channel in enumerate(ORDERS[i % len(ORDERS)]):
            got[channel] = await call(clients[channel], variant(q, position))
            out[channel].append(got[channel])
        mismatches.check(phase, q, {c: got[c].ids for c in CHANNELS})
    return out


def compare(calls: dict[str, list[Call]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for channel in CHANNELS:
        out[channel] = summary([c.ms for c in calls[channel]]) | {
            "client_cpu_p50_ms": statistics.median(c.cpu_ms for c in calls[channel])
        }
    rest = calls["rest"]
    names = sorted({k for c in rest for k in c.server})
    out["rest"]["server_p50_ms"] = statistics.median(sum(c.server.values()) for c in rest)
    out["rest"]["server_stage_p50_ms"] = {k: statistics.median(c.server.get(k, 0.0) for c in rest) for k in names}
    out["rest"]["outside_server_p50_ms"] = statistics.median(c.ms - sum(c.server.values()) for c in rest)
    for channel in MCP_MODES:
        mine, base = out[channel], out["rest"]
        mine["validation_p50_ms"] = statistics.median(c.validation_ms for c in calls[channel])
        mine["vs_rest"] = {
            "p50_ratio": mine["p50_ms"] / base["p50_ms"],
            "p99_ratio": mine["p99_ms"] / base["p99_ms"],
            "paired_median_ratio": statistics.median(m.ms / r.ms for m, r in zip(calls[channel], rest, strict=True)),
            "p50_diff_ms": mine["p50_ms"] - base["p50_ms"],
            "paired_median_diff_ms": statistics.median(m.ms - r.ms for m, r in zip(calls[channel], rest, strict=True)),
            "client_cpu_diff_ms": mine["client_cpu_p50_ms"] - base["client_cpu_p50_ms"],
        }
        mine["vs_rest"]["meets_target"] = mine["vs_rest"]["p50_ratio"] <= TARGET
    return out


async def session_open(url: str, qs: Sequence[str], validation: list[float], mismatches: Mismatches) -> dict[str, Any]:
    """Per question: a new client per MCP channel (the handshake, the first call, the close) and a new REST client
    (its first POST: a new connection), each constructed outside the timing."""
    rows: dict[str, list[float]] = {"rest_first_call": []}
    versions: dict[str, set[str]] = {c: set() for c in MCP_MODES}
    for channel in MCP_MODES:
        for part in ("handshake", "first_call", "open_total", "close"):
            rows[f"{channel}_{part}"] = []
    for i, q in enumerate(qs):
        ids: dict[str, list[str]] = {}
        for position, channel in enumerate(ORDERS[i % len(ORDERS)]):
            query = variant(q, position)
            if channel == "rest":
                rest = Rest(url)
                got = rest.call(query)
                rest.close()
                rows["rest_first_call"].append(got.ms)
            else:
                client = Mcp(url, MCP_MODES[channel], validation)
                start = time.perf_counter()
                async with client:
                    opened = time.perf_counter()
                    got = await client.call(query)
                    done = time.perf_counter()
                    versions[channel].add(client.client.protocol_version)
                closed = time.perf_counter()
                rows[f"{channel}_handshake"].append((opened - start) * 1000)
                rows[f"{channel}_first_call"].append((done - opened) * 1000)
                rows[f"{channel}_open_total"].append((done - start) * 1000)
                rows[f"{channel}_close"].append((closed - done) * 1000)
            ids[channel] = got.ids
        mismatches.check("session_open", q, ids)
    out: dict[str, Any] = {k: {"median_ms": statistics.median(v), "values_ms": v} for k, v in rows.items()}
    out["protocol_versions"] = {c: sorted(v) for c, v in versions.items()}
    return out


def rest_round(clients: Sequence[Rest], qs: Sequence[str], position: int) -> tuple[float, list[tuple[str, Call]]]:
    """The round's questions through one thread per client. (wall seconds, [(question, call)])"""
    work: queue.Queue[str] = queue.Queue()
    for q in qs:
        work.put(q)
    done: list[tuple[str, Call]] = []
    lock = threading.Lock()

    def worker(rest: Rest) -> None:
        while True:
            try:
                q = work.get_nowait()
            except queue.Empty:
                return
            got = rest.call(variant(q, position))
            with lock:
                done.append((q, got))

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, done


async def mcp_round(clients: Sequence[Mcp], qs: Sequence[str], position: int) -> tuple[float, list[tuple[str, Call]]]:
    """The round's questions through one asyncio task per client (each its own session)."""
    work: asyncio.Queue[str] = asyncio.Queue()
    for q in qs:
        work.put_nowait(q)
    done: list[tuple[str, Call]] = []

    async def worker(client: Mcp) -> None:
        while not work.empty():
            q = work.get_nowait()
            done.append((q, await client.call(variant(q, position))))

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return time.perf_counter() - start, done


async def concurrent(
    url: str, qs: Sequence[str], concurrency: int, round_size: int, validation: list[float], mismatches: Mismatches
) -> dict[str, Any]:
    rests = [Rest(url) for _ in range(concurrency)]
    lat: dict[str, list[float]] = {c: [] for c in CHANNELS}
    wall = dict.fromkeys(CHANNELS, 0.0)
    ids: dict[str, dict[str, list[str]]] = {c: {} for c in CHANNELS}
    async with contextlib.AsyncExitStack() as stack:
        pools: dict[str, list[Mcp]] = {}
        for channel, mode in MCP_MODES.items():
            pools[channel] = [await stack.enter_async_context(Mcp(url, mode, validation)) for _ in range(concurrency)]

        async def one_round(channel: str, chunk: Sequence[str], position: int) -> tuple[float, list[tuple[str, Call]]]:
            if channel == "rest":
                return rest_round(rests, chunk, position)
            return await mcp_round(pools[channel], chunk, position)

        warm = [f"warm-up question number {i} about refunds" for i in range(concurrency * 2)]
        for position, channel in enumerate(CHANNELS):  # every client lists the tools once
            await one_round(channel, warm, position)
        for r, start in enumerate(range(0, len(qs), round_size)):
            chunk = qs[start : start + round_size]
            for position, channel in enumerate(ORDERS[r % len(ORDERS)]):
                seconds, done = await one_round(channel, chunk, position)
                wall[channel] += seconds
                for q, got in done:
                    lat[channel].append(got.ms)
                    ids[channel][q] = got.ids
    for c in rests:
        c.close()
    for q in qs:
        mismatches.check(f"concurrency_{concurrency}", q, {c: ids[c][q] for c in CHANNELS})
    out: dict[str, Any] = {}
    for channel in CHANNELS:
        out[channel] = summary(lat[channel]) | {
            "throughput_per_s": len(lat[channel]) / wall[channel],
            "wall_s": wall[channel],
            "values_ms": lat[channel],
        }
    for channel in MCP_MODES:
        mine, base = out[channel], out["rest"]
        mine["vs_rest"] = {
            "p50_ratio": mine["p50_ms"] / base["p50_ms"],
            "p99_ratio": mine["p99_ms"] / base["p99_ms"],
            "throughput_ratio": mine["throughput_per_s"] / base["throughput_per_s"],
        }
    return out


async def attribution(url: str, pid: int, calls: int, validation: list[float]) -> dict[str, Any]:
    """Where a call's fixed cost goes: one repeated question (an LRU hit: no embedding), ``calls`` per block, one
    block per channel per order of :data:`ORDERS`."""
    q = "how do I reset the device?"
    acc: dict[str, dict[str, Any]] = {c: {"calls": [], "server_s": 0.0} for c in CHANNELS}
    rest = Rest(url)
    async with Mcp(url, "auto", validation) as auto, Mcp(url, "legacy", validation) as legacy:
        clients: dict[str, Rest | Mcp] = {"rest": rest, "mcp": auto, "mcp_legacy": legacy}
        for _ in range(10):
            for channel in CHANNELS:
                await call(clients[channel], q)
        for order in ORDERS:
            for channel in order:
                before = process_cpu_s(pid)
                for _ in range(calls):
                    acc[channel]["calls"].append(await call(clients[channel], q))
                acc[channel]["server_s"] += process_cpu_s(pid) - before
    rest.close()
    out: dict[str, Any] = {"question": q, "calls_per_channel": calls * len(ORDERS)}
    for channel, a in acc.items():
        done: list[Call] = a["calls"]
        out[channel] = {
            "p50_ms": statistics.median(c.ms for c in done),
            "client_cpu_p50_ms": statistics.median(c.cpu_ms for c in done),
            "server_cpu_per_call_ms": a["server_s"] / len(done) * 1000,
        }
        if channel in MCP_MODES:
            out[channel]["validation_p50_ms"] = statistics.median(c.validation_ms for c in done)
    for channel in MCP_MODES:
        mine, base = out[channel], out["rest"]
        mine["vs_rest"] = {
            "p50_diff_ms": mine["p50_ms"] - base["p50_ms"],
            "client_cpu_diff_ms": mine["client_cpu_p50_ms"] - base["client_cpu_p50_ms"],
            "server_cpu_diff_ms": mine["server_cpu_per_call_ms"] - base["server_cpu_per_call_ms"],
        }
    return out


VECTORS_CHECK = """
import json, sys
import numpy as np
from aquifer.embedding import Embedder
questions, copies = json.load(sys.stdin)
embedder = Embedder()
base = embedder.encode(questions)
print(max(float(np.max(np.abs(base - embedder.encode([q + " " * k for q in questions])))) for k in range(1, copies)))
"""


def same_vectors(qs: Sequence[str]) -> dict[str, Any]:
    """Whether ``q``, ``q + " "`` and ``q + "  "`` embed to the same vector (what keeps every channel cold). In a
    child process: with the model loaded here, every full garbage collection of this (measuring) process would take
    ~200 ms instead of ~30, and land on whichever calls are in flight."""
    done = subprocess.run(
        [sys.executable, "-c", VECTORS_CHECK],
        input=json.dumps([list(qs), len(CHANNELS)]),
        capture_output=True,
        text=True,
        check=True,
    )
    diff = float(done.stdout.split()[-1])
    return {"checked": len(qs), "max_abs_diff": diff, "same": diff < 1e-5}


class GcWatch:
    """This process's garbage collections (``gc.callbacks``): how many and how long, per part of the run."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((int(info["generation"]), (time.perf_counter() - self._start) * 1000))

    def take(self) -> dict[str, Any]:
        """What was collected since the last take."""
        pauses, self.pauses = self.pauses, []
        full = [ms for gen, ms in pauses if gen == 2]
        return {
            "collections": len(pauses),
            "full_collections": len(full),
            "full_max_ms": max(full, default=0.0),
            "total_ms": sum(ms for _, ms in pauses),
        }


# -- main ------------------------------------------------------------------------------------------------------------


def without_values(obj: Any) -> Any:
    """``obj`` without its raw ``values_ms`` lists (for printing)."""
    if isinstance(obj, dict):
        return {k: without_values(v) for k, v in obj.items() if k != "values_ms"}
    return obj


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

    names = ("mcp", "httpx", "httpx2", "uvicorn", "uvloop", "starlette", "fastapi", "pydantic", "jsonschema")
    return {p: version(p) for p in names}


def table(results: dict[str, Any]) -> str:
    seq, conc, opened = results["sequential"], results["concurrency"], results["session_open"]
    n = results["args"]["concurrency"]
    r, a, g = seq["rest"], seq["mcp"], seq["mcp_legacy"]
    va, vg = a["vs_rest"], g["vs_rest"]
    ra, rg = va["p50_ratio"], vg["p50_ratio"]
    proto = opened["protocol_versions"]
    rows = [
        f"| measure | REST | MCP `{'/'.join(proto['mcp'])}` | ratio | MCP legacy `{'/'.join(proto['mcp_legacy'])}` "
        "| ratio |",
        "|---|---:|---:|---:|---:|---:|",
        f"| sequential p50 | {r['p50_ms']:.1f} ms | {a['p50_ms']:.1f} ms | **{ra:.3f}** | {g['p50_ms']:.1f} ms "
        f"| **{rg:.3f}** |",
        f"| sequential p99 | {r['p99_ms']:.1f} ms | {a['p99_ms']:.1f} ms | {va['p99_ratio']:.3f} | "
        f"{g['p99_ms']:.1f} ms | {vg['p99_ratio']:.3f} |",
        f"| sequential, median of per-question ratios | | | {va['paired_median_ratio']:.3f} | | "
        f"{vg['paired_median_ratio']:.3f} |",
        f"| sequential p50 difference | | {va['p50_diff_ms']:+.1f} ms | | {vg['p50_diff_ms']:+.1f} ms | |",
        f"| client CPU per call, p50 | {r['client_cpu_p50_ms']:.2f} ms | {a['client_cpu_p50_ms']:.2f} ms | | "
        f"{g['client_cpu_p50_ms']:.2f} ms | |",
        f"| of which output-schema validation, p50 | | {a['validation_p50_ms']:.2f} ms | | "
        f"{g['validation_p50_ms']:.2f} ms | |",
        f"| REST server stages p50 (`Server-Timing`) | {r['server_p50_ms']:.1f} ms | | | | |",
    ]
    cr, ca, cg = conc["rest"], conc["mcp"], conc["mcp_legacy"]
    rows += [
        f"| concurrency {n} p50 | {cr['p50_ms']:.1f} ms | {ca['p50_ms']:.1f} ms | {ca['vs_rest']['p50_ratio']:.3f} "
        f"| {cg['p50_ms']:.1f} ms | {cg['vs_rest']['p50_ratio']:.3f} |",
        f"| concurrency {n} p99 | {cr['p99_ms']:.1f} ms | {ca['p99_ms']:.1f} ms | {ca['vs_rest']['p99_ratio']:.3f} "
        f"| {cg['p99_ms']:.1f} ms | {cg['vs_rest']['p99_ratio']:.3f} |",
        f"| concurrency {n} throughput | {cr['throughput_per_s']:.1f} /s | {ca['throughput_per_s']:.1f} /s | "
        f"{ca['vs_rest']['throughput_ratio']:.3f} | {cg['throughput_per_s']:.1f} /s | "
        f"{cg['vs_rest']['throughput_ratio']:.3f} |",
    ]
    first = opened["rest_first_call"]["median_ms"]
    cells = []
    for channel in MCP_MODES:
        total = opened[f"{channel}_open_total"]["median_ms"]
        cells.append(
            f"{total:.1f} ms ({opened[f'{channel}_handshake']['median_ms']:.1f} + "
            f"{opened[f'{channel}_first_call']['median_ms']:.1f}) | {total / first:.3f}"
        )
    rows.append(f"| new client: handshake + first call, median | {first:.1f} ms | {cells[0]} | {cells[1]} |")
    if "attribution" in results:
        at = results["attribution"]
        ar, aa, ag = at["rest"], at["mcp"], at["mcp_legacy"]
        rows += [
            f"| repeated question (LRU hit) p50 | {ar['p50_ms']:.1f} ms | {aa['p50_ms']:.1f} ms | "
            f"{aa['vs_rest']['p50_diff_ms']:+.1f} ms | {ag['p50_ms']:.1f} ms | "
            f"{ag['vs_rest']['p50_diff_ms']:+.1f} ms |",
            f"| repeated question: client CPU per call | {ar['client_cpu_p50_ms']:.2f} ms | "
            f"{aa['client_cpu_p50_ms']:.2f} ms | {aa['vs_rest']['client_cpu_diff_ms']:+.2f} ms | "
            f"{ag['client_cpu_p50_ms']:.2f} ms | {ag['vs_rest']['client_cpu_diff_ms']:+.2f} ms |",
            f"| repeated question: of which output-schema validation | | {aa['validation_p50_ms']:.2f} ms | | "
            f"{ag['validation_p50_ms']:.2f} ms | |",
            f"| repeated question: server CPU per call (`/proc`) | {ar['server_cpu_per_call_ms']:.2f} ms | "
            f"{aa['server_cpu_per_call_ms']:.2f} ms | {aa['vs_rest']['server_cpu_diff_ms']:+.2f} ms | "
            f"{ag['server_cpu_per_call_ms']:.2f} ms | {ag['vs_rest']['server_cpu_diff_ms']:+.2f} ms |",
        ]
    rows.append(
        f"| chunk-id mismatches (vs REST) | | {results['mismatches']} of {results['checked']} comparisons | | | |"
    )
    return "\n".join(rows)


async def run(args: argparse.Namespace, url: str, pid: int) -> dict[str, Any]:
    validation = time_validation()
    gcs = GcWatch()
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
    async with Mcp(url, "auto", validation) as auto, Mcp(url, "legacy", validation) as legacy:
        clients: dict[str, Rest | Mcp] = {"rest": rest, "mcp": auto, "mcp_legacy": legacy}
        await sequential(clients, warm, mismatches, "warm-up")
        gcs.take()
        start = time.perf_counter()
        seq = await sequential(clients, measured, mismatches, "sequential")
        results["sequential_wall_s"] = time.perf_counter() - start
    rest.close()
    results["sequential"] = compare(seq)
    results["client_gc"] = {"sequential": gcs.take()}
    print(json.dumps({"sequential": results["sequential"]}, indent=1), flush=True)

    results["session_open"] = await session_open(url, opening, validation, mismatches)
    results["client_gc"]["session_open"] = gcs.take()
    medians = {k: v.get("median_ms", v) for k, v in results["session_open"].items()}
    print(json.dumps({"session_open": medians}, indent=1), flush=True)

    results["concurrency"] = await concurrent(url, conc, args.concurrency, args.round, validation, mismatches)
    results["client_gc"]["concurrency"] = gcs.take()
    print(json.dumps({"concurrency": without_values(results["concurrency"])}, indent=1), flush=True)

    if args.attribution_calls:
        results["attribution"] = await attribution(url, pid, args.attribution_calls, validation)
        results["client_gc"]["attribution"] = gcs.take()
        print(json.dumps({"attribution": results["attribution"]}, indent=1), flush=True)
    print(json.dumps({"client_gc": results["client_gc"]}, indent=1), flush=True)
    results["mismatches"], results["checked"] = mismatches.count, mismatches.checked
    results["mismatch_examples"] = mismatches.examples[:10]
    results["raw_sequential_ms"] = {c: [x.ms for x in seq[c]] for c in CHANNELS}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="A materialized data dir (copied)")
    parser.add_argument("--calls", type=int, default=200, help="Measured sequential calls per channel")
    parser.add_argument("--sessions", type=int, default=10, help="New clients measured per channel")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--concurrent-calls", type=int, default=200, help="Calls per channel at --concurrency")
    parser.add_argument("--round", type=int, default=40, help="Questions per round at --concurrency")
    parser.add_argument(
        "--attribution-calls", type=int, default=50, help="Calls per block of the fixed-cost attribution (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "mcp.json")
    args = parser.parse_args()
    if not (args.data_dir / "index").exists():
        sys.exit(f"no index under {args.data_dir}: run `make up` or `aquifer materialize` first")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="aquifer-bench-mcp-"))
    data = root / "data"
    shutil.copytree(args.data_dir, data, ignore=shutil.ignore_patterns("dagster", "decisions"))
    check = same_vectors(questions(args.seed)[:40])
    print(json.dumps({"trailing_spaces_same_vector": check}), flush=True)
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
        "agent": AGENT,
        "trailing_spaces_same_vector": check,
    }
    try:
        results |= asyncio.run(run(args, server.url, server.proc.pid))
    finally:
        server.stop()
    results["machine"]["load_avg_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - started
    shutil.rmtree(root, ignore_errors=True)
    brief = without_values({k: v for k, v in results.items() if not k.startswith("raw_")})
    brief["session_open"] = {k: v.get("median_ms", v) for k, v in results["session_open"].items()}
    print(json.dumps(brief, indent=1))
    print()
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
