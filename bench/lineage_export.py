"""OpenLineage benchmark (issue 15): what emitting lineage costs a pipeline run.

Not a test: ``python bench/lineage_export.py`` (``make bench-openlineage``). In one run:

* **Whole runs.** The sample (``--scale``, seed 7) landed in a fresh data dir and materialized bronze -> platinum
  (the index is left out: its embedding time would bury the difference) with lineage off, and again in another
  fresh data dir with the file transport on (every event written and fsync'd by the client), alternating
  ``--reps`` times; medians of the wall time and their ratio.
* **Per step.** ``start`` + ``complete`` of one gold step (real datasets, schema, column lineage of every gold
  column, tags, assertions), ``--steps`` times through the file transport: median and p90 per step, and the bytes
  the two events take.

Prints a JSON summary and a markdown table; writes the JSON (``--json``, default ``bench/results/lineage_export.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN = """
import sys, time
import dagster as dg
from aquifer import sample
from pathlib import Path
from pipelines.runs import materialize
data = Path(sys.argv[1])
sample.generate(data / "landing", scale=int(sys.argv[2]), seed=7)
t = time.perf_counter()
summary = materialize(["bronze", "silver", "gold", "platinum"], instance=dg.DagsterInstance.ephemeral())
assert summary.success, summary
print(time.perf_counter() - t)
"""


def whole_run(scale: int, lineage: bool) -> tuple[float, int]:
    """Seconds to materialize a fresh sample (in a child process: each run starts cold alike), and events written."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-ol-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
        env |= {"AQUIFER_DATA_DIR": str(tmp / "data"), "DAGSTER_HOME": str(tmp / "dagster"), "HF_HUB_OFFLINE": "1"}
        events = tmp / "events.jsonl"
        if lineage:
            env |= {
                "OPENLINEAGE__TRANSPORT__TYPE": "file",
                "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(events),
                "OPENLINEAGE__TRANSPORT__APPEND": "true",
            }
        out = subprocess.run(
            [sys.executable, "-c", _RUN, str(tmp / "data"), str(scale)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        count = len(events.read_text().splitlines()) if events.exists() else 0
        return float(out.stdout.strip().splitlines()[-1]), count
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def per_step(steps: int) -> dict[str, float]:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    from aquifer.catalog import load_catalog
    from aquifer.export import openlineage as ol
    from aquifer.lake import Lake
    from aquifer.settings import PROJECT_ROOT
    from pipelines.defs import lineage

    tmp = Path(tempfile.mkdtemp(prefix="bench-ol-"))
    try:
        source = load_catalog(PROJECT_ROOT / "catalog").source("hr_case_notes")
        path = tmp / "events.jsonl"
        client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))
        emitter = ol.LineageEmitter(client, namespace="aquifer", state_dir=tmp / "running", schema_base_url="http://x")
        inputs, outputs = lineage.layer_datasets("gold", source, Lake(str(tmp / "lake")), str(tmp))
        outcome = ol.Outcome(
            versions_read={"silver/hr_case_notes": 3},
            versions_written={"gold/hr_case_notes": 4},
            rows={"gold/hr_case_notes": 1000},
            rows_written=100,
            assertions=[("schema", True), ("chunk_tokens", True)],
            column_lineage=lineage.layer_lineage("gold", source),
        )
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step = ol.Step("gold/hr_case_notes", str(uuid.uuid4()), "__ASSET_JOB", inputs, outputs)
            emitter.start(step)
            emitter.complete(step, outcome)
            times.append(time.perf_counter() - start)
        times.sort()
        return {
            "median_ms": round(statistics.median(times) * 1000, 2),
            "p90_ms": round(times[int(len(times) * 0.9)] * 1000, 2),
            "bytes_per_step": round(path.stat().st_size / steps),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "lineage_export.json")
    args = parser.parse_args()

    off, on, events = [], [], 0
    for _ in range(args.reps):
        off.append(whole_run(args.scale, lineage=False)[0])
        seconds, events = whole_run(args.scale, lineage=True)
        on.append(seconds)
    step = per_step(args.steps)
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "scale": args.scale,
        "reps": args.reps,
        "run_off_s": [round(x, 2) for x in off],
        "run_on_s": [round(x, 2) for x in on],
        "median_off_s": round(statistics.median(off), 2),
        "median_on_s": round(statistics.median(on), 2),
        "ratio": round(statistics.median(on) / statistics.median(off), 3),
        "events_per_run": events,
        "per_step": step,
    }
    print(json.dumps(summary, indent=2))
    print(
        "\n| lineage | run bronze -> platinum (median of "
        f"{args.reps}) | events |\n| --- | ---: | ---: |\n"
        f"| off | {summary['median_off_s']} s | 0 |\n| on (file transport) | {summary['median_on_s']} s | {events} |\n"
        f"\nratio on/off: {summary['ratio']}; per step start+complete: {step['median_ms']} ms median, "
        f"{step['p90_ms']} ms p90, {step['bytes_per_step']} bytes"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
