"""The code location: one folder per layer under ``defs/``, each with ``assets.py`` and ``checks.py``.

Assets are generated from the source catalog, so adding a source is adding a YAML file to ``catalog/sources``.
"""

from __future__ import annotations

import dagster as dg

from aquifer.catalog import load_catalog
from aquifer.settings import get_settings
from pipelines.defs import bronze, gold, platinum, silver
from pipelines.defs.resources import AquiferResource


def build_definitions() -> dg.Definitions:
    catalog = load_catalog(get_settings().catalog_dir)
    layers = [bronze, silver, gold, platinum]
    return dg.Definitions(
        assets=[a for layer in layers for a in layer.assets.build(catalog)],
        asset_checks=[c for layer in layers for c in layer.checks.build(catalog)],
        resources={"aquifer": AquiferResource()},
    )


defs = build_definitions()


def all_assets_job() -> dg.JobDefinition:
    """The job that materializes every asset; module-level so the multiprocess executor can reconstruct it."""
    return defs.resolve_implicit_global_asset_job_def()
