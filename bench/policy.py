"""Policy decision benchmark: microseconds per decision on the embedded engine (and OPA when ``--opa-url`` is given).

Not a test: run ``python bench/policy.py`` (``--repeats 200``). For batches of 1, 10, 50 and 100 resources it
reports the median over repeats of:

* ``raw``    the backend deciding N distinct resource classes on the compiled regopy bundle, no cache: what
             deciding every chunk from scratch costs (the baseline);
* ``cold``   ``PolicyEngine.decide`` with an empty cache: the raw cost plus validation and the worker-thread hop;
* ``warm``   ``PolicyEngine.decide`` for chunks whose classes were decided before (the retrieval hot path: a
             corpus has a few hundred classes, a request sees a handful);
* ``oracle`` the same decisions in plain Python (tests/policy_oracle.py), for scale.

and the request-level decision alone (cold and warm). Results go to stdout as a markdown table and to
``bench/results/policy.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aquifer.policy import EmbeddedBackend, OpaBackend, PolicyEngine, RequestContext, Resource  # noqa: E402
from tests import policy_oracle  # noqa: E402

LEVELS = ("public", "internal", "confidential")
PII = ((), ("email",), ("email", "phone"), ("person",), ("phone",))


def classes(n: int, salt: int) -> list[Resource]:
    """N distinct resource classes (distinct per salt, so a cold measurement never hits the cache)."""
    out = []
    datasets = ("support_tickets", "product_docs", "engineering_wiki")
    i = 0
    while len(out) < n:
        tag = (f"t{salt}_{i // 45}",)  # 3 datasets x 3 levels x 5 PII sets = 45 combinations, then a new tag
        out.append(Resource(datasets[i % 3], LEVELS[(i // 3) % 3], pii_types=PII[(i // 9) % 5] + tag))
        i += 1
    return out


def median_us(fn: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def run(engine: PolicyEngine, repeats: int) -> dict[str, object]:
    ctx = RequestContext("support_assistant", "customer_support", "local_smollm2")
    data = engine.catalog.policy_data()
    rows = []
    salt = iter(range(10**9))
    for n in (1, 10, 50, 100):
        warm_batch = classes(n, -1)
        engine.decide(ctx, warm_batch)

        def raw(n: int = n) -> None:
            resources = classes(n, next(salt))
            engine.backend.decide_many(ctx.as_input(), [r.as_input() for r in resources])

        def cold(n: int = n) -> None:
            engine.decide(
                RequestContext("support_assistant", "customer_support", "local_smollm2"), classes(n, next(salt))
            )

        def oracle(n: int = n) -> None:
            for r in classes(n, 0):
                policy_oracle.decide(data, ctx.agent, ctx.purpose, ctx.model, r.as_input())

        slow = max(5, repeats // (10 if n >= 50 else 2))
        row = {
            "batch": n,
            "raw_us": median_us(raw, slow),
            "cold_us": median_us(cold, slow),
            "warm_us": median_us(lambda b=warm_batch: engine.decide(ctx, b), repeats),
            "oracle_us": median_us(oracle, repeats),
        }
        row["raw_us_per_decision"] = row["raw_us"] / n
        row["warm_us_per_decision"] = row["warm_us"] / n
        row["raw_over_warm"] = row["raw_us"] / row["warm_us"]
        rows.append(row)
    counter = iter(range(10**9))
    request_cold = median_us(
        lambda: engine.decide(RequestContext("support_assistant", f"purpose_{next(counter)}", "local_smollm2")),
        max(5, repeats // 2),
    )
    request_warm = median_us(lambda: engine.decide(ctx), repeats)
    return {"batches": rows, "request_cold_us": request_cold, "request_warm_us": request_warm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--opa-url", default=None, help="Also measure a running OPA server (opa run --server).")
    args = parser.parse_args()
    engines = {"embedded": PolicyEngine(EmbeddedBackend(), ROOT / "policies", ROOT / "catalog")}
    if args.opa_url:
        engines["opa"] = PolicyEngine(OpaBackend(args.opa_url), ROOT / "policies", ROOT / "catalog")
    results: dict[str, object] = {
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "command": " ".join(["python", "bench/policy.py", *sys.argv[1:]]),
    }
    for name, engine in engines.items():
        if engine.error:
            print(f"{name}: unavailable: {engine.error}", file=sys.stderr)
            continue
        results[name] = res = run(engine, args.repeats)
        print(f"\n{name} engine (revision {engine.revision}), medians of {args.repeats} repeats (fewer for raw/cold)")
        print(
            "| batch | raw (no cache) | raw per decision | cold engine | warm engine | warm per decision "
            "| raw / warm | Python oracle |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in res["batches"]:  # type: ignore[index]
            print(
                f"| {r['batch']} | {r['raw_us']:,.0f} us | {r['raw_us_per_decision']:,.0f} us | "
                f"{r['cold_us']:,.0f} us | {r['warm_us']:,.1f} us | {r['warm_us_per_decision']:,.2f} us | "
                f"{r['raw_over_warm']:,.0f}x | {r['oracle_us']:,.1f} us |"
            )
        print(
            f"request-level decision: cold {res['request_cold_us']:,.0f} us, "  # type: ignore[index]
            f"warm {res['request_warm_us']:,.1f} us"
        )  # type: ignore[index]
    out = ROOT / "bench" / "results" / "policy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
