"""Pipeline benchmark: records/s per layer, full pipeline vs a bare polars pass, incremental vs full, and Dagster
executor overhead. Not a test: run it with ``make bench`` (or ``python bench/pipeline.py --scale 1000``) and copy
the printed table into docs/benchmarks.md.

What is measured, all in one process run so the ratios share the machine's state:
1. ``bare``: a polars pass over the same landing files that writes one parquet file per source, with no lineage,
   no validation, no PII, no chunking and no checks - the floor any pipeline reading these files must pay.
2. ``full``: a real Dagster run (in-process executor) of every asset and check on an empty lake; per-layer
   records/s come from the run's step events.
3. ``incremental``: ``aquifer sample --increment 0.01`` (1% new files), then a second run.
4. ``noop``: a third run with nothing new (what an idle schedule costs).
5. Dagster overhead: the full pipeline at ``--overhead-scale`` with the in-process vs the multiprocess executor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl

RESULTS = Path(__file__).parent / "results"


def _use_data_dir(data: Path) -> None:
    os.environ["AQUIFER_DATA_DIR"] = str(data)
    os.environ["DAGSTER_HOME"] = str(data / "dagster")
    from aquifer.settings import get_settings

    get_settings.cache_clear()


def bare_pass(landing: Path, out: Path) -> tuple[float, int]:
    """Read every landing file with polars and write parquet; returns (seconds, rows)."""
    from aquifer.catalog import load_catalog
    from aquifer.settings import PROJECT_ROOT

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = 0
    for source in load_catalog(PROJECT_ROOT / "catalog"):
        files = sorted(p for p in (landing / source.landing_path).rglob("*") if p.is_file())
        frames = []
        for path in files:
            if source.format == "jsonl":
                frames.append(pl.DataFrame({"line": path.read_bytes().decode("utf-8", "replace").splitlines()}))
            elif source.format == "csv":
                try:
                    frames.append(pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True))
                except Exception:  # the bare pass skips what it cannot read
                    continue
            else:
                frames.append(
                    pl.DataFrame({"uri": [str(path)], "text": [path.read_bytes().decode("utf-8", "replace")]})
                )
        frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        rows += frame.height
        frame.write_parquet(out / f"{source.id}.parquet")
    return time.perf_counter() - start, rows


def run_pipeline(executor: str) -> dict[str, Any]:
    from pipelines.runs import dagster_instance, materialize

    instance = dagster_instance()
    start = time.perf_counter()
    summary = materialize(executor=executor, instance=instance)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    if not summary.success or summary.checks_failed:
        sys.exit(f"pipeline failed: {summary.checks_failed or summary.errors}")
    steps: dict[str, dict[str, float]] = defaultdict(dict)
    for event in instance.all_logs(summary.run_id):
        de = event.dagster_event
        if de is not None and de.step_key and de.event_type_value in ("STEP_START", "STEP_SUCCESS"):
            steps[de.step_key][de.event_type_value] = event.timestamp
    per_layer: dict[str, float] = defaultdict(float)
    for key, times in steps.items():
        if "STEP_START" in times and "STEP_SUCCESS" in times:
            layer = key.split("__", 1)[0]
            per_layer[layer] += times["STEP_SUCCESS"] - times["STEP_START"]
    return {"seconds": seconds, "per_layer_seconds": dict(per_layer), "run_id": summary.run_id}


def layer_rows(data: Path) -> dict[str, int]:
    from aquifer.catalog import load_catalog
    from aquifer.lake import Lake
    from aquifer.settings import PROJECT_ROOT

    lake = Lake(str(data / "lake"))
    counts: dict[str, int] = defaultdict(int)
    for source in load_catalog(PROJECT_ROOT / "catalog"):
        for layer in ("bronze", "silver", "quarantine", "gold", "platinum"):
            if lake.exists(layer, source.id):
                counts[layer] += lake.scan(layer, source.id).select(pl.len()).collect().item()
    return dict(counts)


def fresh(root: Path, scale: int, seed: int, *, reuse: bool = False) -> tuple[Path, float]:
    """A landing zone of ``scale`` and an empty lake; ``reuse`` keeps a corpus of the same scale and seed."""
    from aquifer import sample

    manifest = root / "sample_manifest.json"
    if reuse and manifest.exists():
        kept = json.loads(manifest.read_text())
        if (kept["scale"], kept["seed"]) == (scale, seed):
            for leftover in [root / "lake", root / "dagster", *root.glob("landing/*/bench*")]:
                shutil.rmtree(leftover, ignore_errors=True)
            return root, float("nan")
    if root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    sample.generate(root / "landing", scale=scale, seed=seed)
    return root, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1000, help="sample scale (1000 = ~1,000,000 records)")
    parser.add_argument("--overhead-scale", type=int, default=5, help="scale for the executor comparison")
    parser.add_argument("--repeats", type=int, default=3, help="bare-pass repetitions (median reported)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/aquifer-bench"))
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--reuse-corpus", action="store_true", help="keep a landing zone of the same scale and seed")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(["python", *sys.argv]),
        "scale": args.scale,
    }
    data, generate_seconds = fresh(args.work_dir / "main", args.scale, seed=7, reuse=args.reuse_corpus)
    results["generate_seconds"] = generate_seconds
    _use_data_dir(data)

    bare = [bare_pass(data / "landing", args.work_dir / f"bare-{i}") for i in range(args.repeats)]
    results["bare_seconds_median"] = statistics.median(s for s, _ in bare)
    results["bare_rows"] = bare[0][1]

    full = run_pipeline("in_process")
    rows = layer_rows(data)
    results["full"] = full
    results["rows"] = rows
    entering = {
        "bronze": rows.get("bronze", 0),
        "silver": rows.get("bronze", 0),
        "gold": rows.get("silver", 0),
        "platinum": rows.get("gold", 0),
    }
    results["records_per_second"] = {
        layer: round(entering[layer] / seconds) for layer, seconds in full["per_layer_seconds"].items() if seconds
    }
    results["full_vs_bare"] = full["seconds"] / results["bare_seconds_median"]

    from aquifer import sample

    added = sample.generate_increment(data / "landing", fraction=0.01, seed=99, label="bench")
    incremental = run_pipeline("in_process")
    results["incremental"] = {**incremental, "records_added": added["records"]}
    results["incremental_vs_full"] = incremental["seconds"] / full["seconds"]
    results["noop"] = run_pipeline("in_process")

    if not args.skip_overhead:
        overhead: dict[str, float] = {}
        for executor in ("in_process", "multiprocess"):
            small, _ = fresh(args.work_dir / f"overhead-{executor}", args.overhead_scale, seed=7)
            _use_data_dir(small)
            overhead[executor] = run_pipeline(executor)["seconds"]
        results["executor_seconds"] = overhead
        results["multiprocess_vs_in_process"] = overhead["multiprocess"] / overhead["in_process"]

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pipeline-scale{args.scale}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
