"""Run the medallion pipelines from the CLI, the way the Dagster UI does, and summarise what happened.

Runs are recorded in the Dagster instance under ``$DAGSTER_HOME`` (default ``<data_dir>/dagster``), so a run
started from the CLI shows in the UI with its asset checks and metadata.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dagster as dg

from aquifer.settings import get_settings

Executor = Literal["in_process", "multiprocess"]
# The CLI prints its own summary; Dagster's step-by-step DEBUG log stays in the instance (and the UI).
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class RunSummary:
    run_id: str
    success: bool
    materialized: list[str] = field(default_factory=list)
    checks_failed: list[str] = field(default_factory=list)
    checks_passed: int = 0
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def dagster_instance() -> dg.DagsterInstance:
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str((get_settings().data_dir / "dagster").resolve())
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():  # nothing leaves this machine: no telemetry
        config.write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.get()


def resolve_selection(select: list[str] | None, keys: list[dg.AssetKey]) -> list[dg.AssetKey]:
    """``bronze`` (a layer), ``silver/hr_case_notes`` (one asset) or ``*`` (everything)."""
    if not select or "*" in select:
        return keys
    chosen: list[dg.AssetKey] = []
    for item in select:
        parts = item.strip("/").split("/")
        matches = [k for k in keys if k.path[: len(parts)] == parts]
        if not matches:
            known = sorted({k.path[0] for k in keys})
            msg = f"--select {item!r} matches no asset; use a layer {known}, layer/dataset, or '*'"
            raise ValueError(msg)
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def materialize(
    select: list[str] | None = None,
    *,
    executor: Executor = "in_process",
    instance: dg.DagsterInstance | None = None,
) -> RunSummary:
    warnings.filterwarnings("ignore", category=dg.BetaWarning)  # raised by Dagster's own internals, not actionable
    # the code location loads the catalog and every asset: import it only when a run is asked for
    from pipelines.definitions import all_assets_job, defs, multiprocess_job

    instance = instance or dagster_instance()
    job = all_assets_job()
    keys = resolve_selection(select, list(defs.resolve_all_asset_keys()))
    result: dg.ExecuteInProcessResult | dg.JobExecutionResult
    if executor == "in_process":
        result = job.execute_in_process(
            run_config=_QUIET, instance=instance, asset_selection=keys, raise_on_error=False
        )
    else:
        result = dg.execute_job(dg.reconstructable(multiprocess_job), instance, run_config=_QUIET, asset_selection=keys)
    return summarise(result, instance)


def summarise(result: dg.ExecuteInProcessResult | dg.JobExecutionResult, instance: dg.DagsterInstance) -> RunSummary:
    summary = RunSummary(run_id=result.run_id, success=result.success)
    for event in instance.all_logs(result.run_id):
        dagster_event = event.dagster_event
        if dagster_event is None:
            continue
        if dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            key = dagster_event.asset_key
            if key is not None:
                summary.materialized.append(key.to_user_string())
        elif dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = dagster_event.event_specific_data
            assert isinstance(evaluation, dg.AssetCheckEvaluation)
            if evaluation.passed:
                summary.checks_passed += 1
            else:
                name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                description = evaluation.description or ""
                summary.checks_failed.append(f"{name} - {description}".rstrip(" -"))
        elif dagster_event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            summary.skipped.append(dagster_event.step_key or "?")
        elif dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = dagster_event.event_specific_data.error  # type: ignore[union-attr]
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # already reported with its description as a failed check
            while (
                error is not None and error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError"
            ):
                error = error.cause  # the user code's own exception, not Dagster's wrapper
            message = f"{error.cls_name}: {error.message.strip()}" if error else "unknown error"
            summary.errors.append(f"{dagster_event.step_key}: {message}")
    return summary
