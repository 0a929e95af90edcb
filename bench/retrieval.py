"""Retrieval benchmark: latency per stage and throughput of the governed API, the cost of enforcement, and filtered
recall of the ANN index, at 100,000 and 1,000,000 chunks.

Not a test: run ``python bench/retrieval.py`` after ``make up`` (or ``aquifer materialize``) has built the real
index of the sample corpus. Embedding a million chunks on two CPU cores takes hours, so the large indexes are
**derived from real chunk embeddings**: every row is a copy of a real platinum chunk (its text, class, receipt),
renamed, with its real vector perturbed by Gaussian noise (sigma 0.04 per dimension, then re-normalised) so the
copies spread around the original instead of stacking on it. Queries are real questions embedded by the real model.
A ``bucket`` column (row number mod 100) gives filters of exactly 50%, 10% and 1% selectivity for the recall test.

For each size it reports:

* exact search latency (no vector index) and the IVF_HNSW_SQ + scalar index build time;
* recall@10 of the ANN search against exact search with the same ``where`` (``bypass_vector_index``), at 50%,
  10% and 1% selectivity, for several (nprobes, refine_factor) settings;
* in-process, the same queries enforced (``Retriever.context``: request decision, prefilter, per-chunk decisions,
  redaction, packing, fsync'd decision log) and unenforced (embed + unfiltered search + the same response
  assembly without decisions, redaction or log): p50 and the ratio;
* over HTTP against a real ``aquifer serve`` (uvicorn), at concurrency 1, 4 and 8: p50/p99 latency, throughput,
  and p50 per stage from the ``Server-Timing`` header.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aquifer.embedding import DIMENSIONS, Embedder  # noqa: E402
from aquifer.index.lancedb import ROWS_PER_PARTITION, LanceDBStore  # noqa: E402

QUESTIONS = [
    "how do I get a refund for a duplicate charge",
    "reset my password",
    "single sign-on setup",
    "invoice rejected",
    "export jobs migration",
    "pricing for the enterprise plan",
    "data retention policy",
    "connector hub retries",
    "usage analytics dashboard",
    "incident response for a database outage",
    "rotate API keys",
    "on-call rotation",
    "billing disputes",
    "workspace permissions",
    "release notes for 3.2",
    "legacy export API deprecation",
    "customer cannot log in",
    "rate limits on the API",
    "delete a workspace",
    "audit log export",
    "quarterly revenue",
    "parental leave policy",
    "expense reimbursement",
    "security review board approval",
    "how to contact support",
    "upgrade from the team plan",
    "scheduled pipelines failing",
    "two-factor authentication",
    "change the billing email",
    "downgrade takes effect when",
    "status page incident us-east-1",
    "SLA credits",
    "GDPR data subject request",
    "webhook signatures",
    "custom domain setup",
    "slow dashboard performance",
    "merge two accounts",
    "trial extension",
    "invoice PO number missing",
    "charge in a different currency",
]
AGENT, PURPOSE, MODEL = "support_assistant", "customer_support", "local_smollm2"
TOKEN = "aq_devsupport_development-only-support-assistant"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build(source: LanceDBStore, target: Path, n: int, seed: int = 7) -> LanceDBStore:
    """A table of n rows derived from the real index (see the module docstring)."""
    import lancedb

    real = source.table().to_arrow()
    vectors = np.asarray(real.column("vector").combine_chunks().flatten(), dtype=np.float32).reshape(-1, DIMENSIONS)
    rng = np.random.default_rng(seed)
    db = lancedb.connect(str(target))
    if "chunks" in db.list_tables().tables:
        db.drop_table("chunks")
    tbl = None
    batch = 100_000
    for start in range(0, n, batch):
        rows = np.arange(start, min(n, start + batch))
        origin = rows % real.num_rows
        part = real.take(pa.array(origin))
        noisy = vectors[origin] + rng.normal(0, 0.04, size=(len(rows), DIMENSIONS)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        suffix = pa.array([f"_{i}" for i in rows])
        for name in ("platinum_id", "chunk_id"):
            col = pa.compute.binary_join_element_wise(part.column(name), suffix, "")
            part = part.set_column(part.schema.get_field_index(name), name, col)
        part = part.set_column(
            part.schema.get_field_index("vector"),
            "vector",
            pa.FixedSizeListArray.from_arrays(pa.array(noisy.reshape(-1)), DIMENSIONS),
        )
        part = part.append_column("bucket", pa.array(rows % 100, pa.int32()))
        if tbl is None:
            tbl = db.create_table("chunks", data=part)
        else:
            tbl.add(part)
    return LanceDBStore(str(target), ann_min_rows=0)


def search_ids(
    index: LanceDBStore, q: np.ndarray, where: str, *, exact: bool, nprobes: int = 0, refine: int = 0
) -> list[str]:
    query = index.table().search(q).distance_type("cosine").where(where, prefilter=True).select(["chunk_id"]).limit(10)
    query = query.bypass_vector_index() if exact else query.nprobes(nprobes).refine_factor(refine)
    return [r["chunk_id"] for r in query.to_list()]


def recall(index: LanceDBStore, queries: np.ndarray, settings: list[tuple[int, int]]) -> list[dict[str, Any]]:
    out = []
    truth = {s: [search_ids(index, q, f"bucket < {s}", exact=True) for q in queries] for s in (50, 10, 1)}
    for nprobes, refine in settings:
        row: dict[str, Any] = {"nprobes": nprobes, "refine_factor": refine}
        for s in (50, 10, 1):
            hits, lat = [], []
            for q, exact in zip(queries, truth[s], strict=True):
                t = time.perf_counter()
                got = search_ids(index, q, f"bucket < {s}", exact=False, nprobes=nprobes, refine=refine)
                lat.append((time.perf_counter() - t) * 1000)
                hits.append(len(set(got) & set(exact)) / max(1, len(exact)))
            row[f"recall_{s}pct"] = statistics.mean(hits)
            row[f"p50_ms_{s}pct"] = statistics.median(lat)
        out.append(row)
    return out


def in_process(index_dir: Path, work: Path, nprobes: int, refine: int, repeats: int) -> dict[str, Any]:
    from aquifer.service.metrics import Timings
    from aquifer.service.retrieval import Retriever
    from aquifer.service.schemas import ContextRequest
    from aquifer.settings import Settings
    from aquifer.tokenizer import count_tokens

    settings = Settings(
        data_dir=work, index_uri=str(index_dir), index_nprobes=nprobes, index_refine_factor=refine, index_ann_min_rows=0
    )
    retriever = Retriever(settings)
    enforced, bare = [], []
    stages: dict[str, list[float]] = {}
    for i in range(repeats):
        question = QUESTIONS[i % len(QUESTIONS)]
        timings = Timings()
        t = time.perf_counter()
        retriever.context(AGENT, ContextRequest(query=question, purpose=PURPOSE, model=MODEL, top_k=10), timings)
        enforced.append(time.perf_counter() - t)
        for stage, seconds in timings.seconds.items():
            stages.setdefault(stage, []).append(seconds * 1000)
        t = time.perf_counter()
        vector = retriever.embedder.encode([question])[0]
        # the same search with no policy at all: LanceDB directly, no filter (this bench measures the store too)
        rows = retriever.index.table().search(vector).distance_type("cosine").limit(10).to_list()  # type: ignore[attr-defined]
        for row in rows:
            row["score"] = 1.0 - float(row.pop("_distance"))
        texts = [r["text"] for r in rows]
        count_tokens(texts)
        [dict(chunk_id=r["chunk_id"], text=r["text"], score=r["score"]) for r in rows]
        bare.append(time.perf_counter() - t)
    p50_e, p50_b = statistics.median(enforced) * 1000, statistics.median(bare) * 1000
    return {
        "enforced_p50_ms": p50_e,
        "unenforced_p50_ms": p50_b,
        "overhead": p50_e / p50_b - 1,
        "enforced_stage_p50_ms": {k: statistics.median(v) for k, v in stages.items()},
    }


def over_http(
    index_dir: Path, work: Path, nprobes: int, refine: int, levels: list[int], requests: int
) -> list[dict[str, Any]]:
    import httpx

    port = 8765
    env = {
        **os.environ,
        "AQUIFER_DATA_DIR": str(work),
        "AQUIFER_INDEX_URI": str(index_dir),
        "AQUIFER_INDEX_NPROBES": str(nprobes),
        "AQUIFER_INDEX_REFINE_FACTOR": str(refine),
        "AQUIFER_INDEX_ANN_MIN_ROWS": "0",
        "HF_HUB_OFFLINE": "1",
    }
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aquifer", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=60) as warm:
            for q in QUESTIONS[:10]:
                warm.post(
                    "/v1/context",
                    json={"query": q, "purpose": PURPOSE, "model": MODEL, "top_k": 10},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
        results = []
        for level in levels:
            latencies: list[float] = []
            stages: dict[str, list[float]] = {}
            lock = threading.Lock()
            per_thread = max(1, requests // level)

            threads = [
                threading.Thread(target=_load, args=(url, i, per_thread, latencies, stages, lock)) for i in range(level)
            ]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            results.append(
                {
                    "concurrency": level,
                    "requests": len(latencies),
                    "p50_ms": pct(latencies, 0.5),
                    "p99_ms": pct(latencies, 0.99),
                    "throughput_rps": len(latencies) / wall,
                    "stage_p50_ms": {k: statistics.median(v) for k, v in stages.items()},
                }
            )
        return results
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _load(
    url: str, offset: int, count: int, latencies: list[float], stages: dict[str, list[float]], lock: threading.Lock
) -> None:
    import httpx

    body = {"purpose": PURPOSE, "model": MODEL, "top_k": 10}
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for i in range(count):
            start = time.perf_counter()
            r = http.post("/v1/context", json={**body, "query": QUESTIONS[(offset * 7 + i) % len(QUESTIONS)]})
            elapsed = (time.perf_counter() - start) * 1000
            assert r.status_code == 200, r.text
            with lock:
                latencies.append(elapsed)
                for part in r.headers.get("server-timing", "").split(","):
                    name, _, dur = part.strip().partition(";dur=")
                    if dur:
                        stages.setdefault(name, []).append(float(dur))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--source-index", type=Path, default=ROOT / "data" / "index")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "results" / "retrieval")
    parser.add_argument("--queries", type=int, default=40, help="Queries for the recall test.")
    parser.add_argument("--repeats", type=int, default=120, help="Requests for the in-process comparison.")
    parser.add_argument("--requests", type=int, default=240, help="Requests per concurrency level over HTTP.")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    source = LanceDBStore(str(args.source_index))
    if not source.exists():
        sys.exit(f"no index at {args.source_index}: run `make up` or `aquifer materialize` first")
    embedder = Embedder()
    queries = embedder.encode((QUESTIONS * 3)[: args.queries])
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
        "command": " ".join(["python", "bench/retrieval.py", *sys.argv[1:]]),
        "sizes": {},
    }
    for n in args.sizes:
        work = args.work_dir / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        index = build(source, work / "index", n)
        entry: dict[str, Any] = {"build_table_s": time.perf_counter() - t}
        exact = []
        for q in queries[:20]:
            t = time.perf_counter()
            search_ids(index, q, "bucket < 50", exact=True)
            exact.append((time.perf_counter() - t) * 1000)
        entry["exact_p50_ms_50pct"] = statistics.median(exact)
        entry["indexes"] = index.ensure_indexes()
        t = time.perf_counter()
        index.table().create_index("bucket", config=__import__("lancedb.index", fromlist=["BTree"]).BTree())
        entry["bucket_index_s"] = time.perf_counter() - t
        parts = max(1, n // ROWS_PER_PARTITION)
        settings = sorted({(max(1, parts // 4), 5), (max(1, parts // 2), 5), (parts, 1), (parts, 5), (parts, 10)})
        entry["recall"] = recall(index, queries, settings)
        ok = [r for r in entry["recall"] if min(r["recall_50pct"], r["recall_10pct"], r["recall_1pct"]) >= 0.98]
        chosen = ok[0] if ok else entry["recall"][-1]
        entry["chosen"] = {"nprobes": chosen["nprobes"], "refine_factor": chosen["refine_factor"]}
        entry["in_process"] = in_process(work / "index", work, chosen["nprobes"], chosen["refine_factor"], args.repeats)
        if not args.skip_http:
            entry["http"] = over_http(
                work / "index", work, chosen["nprobes"], chosen["refine_factor"], [1, 4, 8], args.requests
            )
        results["sizes"][str(n)] = entry
        print(json.dumps({str(n): entry}, indent=1, default=str), flush=True)
    out = args.work_dir / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
