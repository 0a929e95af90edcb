"""The code location: one folder per layer under ``defs/``, each with ``assets.py`` and ``checks.py`` (the
blocking gates evaluated inside the asset step, right after the write).

Assets are generated from the source catalog, so adding a source is adding a YAML file to ``catalog/sources``.
Runs use the in-process executor by default: on a small machine a process per step costs more (interpreter,
polars, Dagster, PII recognizers imported 28 times) than it gains; ``materialize_all_multiprocess`` is there for
bigger machines and for the benchmark that measures the difference.
"""

from __future__ import annotations

import dagster as dg

from aquifer.catalog import load_catalog
from aquifer.settings import get_settings
from pipelines.defs import audit, bronze, gold, index, platinum, silver
from pipelines.defs.resources import AquiferResource

MULTIPROCESS_JOB = "materialize_all_multiprocess"


def build_definitions() -> dg.Definitions:
    catalog = load_catalog(get_settings().catalog_dir)
    layers = [bronze, silver, gold, platinum]
    return dg.Definitions(
        assets=[
            *(a for layer in layers for a in layer.assets.build(catalog)),
            *index.assets.build(catalog),
            *audit.assets.build(),
        ],
        schedules=[audit.assets.compaction_schedule],
        jobs=[
            dg.define_asset_job(
                MULTIPROCESS_JOB, selection=dg.AssetSelection.all(), executor_def=dg.multiprocess_executor
            )
        ],
        resources={"aquifer": AquiferResource()},
        executor=dg.in_process_executor,
    )


defs = build_definitions()


def all_assets_job() -> dg.JobDefinition:
    """The job that materializes every asset (in-process executor)."""
    return defs.resolve_implicit_global_asset_job_def()


def multiprocess_job() -> dg.JobDefinition:
    """The same assets, one process per step; module-level so Dagster can reconstruct it in each process."""
    return defs.resolve_job_def(MULTIPROCESS_JOB)
