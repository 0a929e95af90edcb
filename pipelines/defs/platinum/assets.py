import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import gold
from aquifer.medallion.platinum import CODE_VERSION, LAYER, promote_to_platinum
from pipelines.defs.platinum.checks import gates
from pipelines.defs.shared import layer_asset


def platinum_asset(source: Source) -> dg.AssetsDefinition:
    return layer_asset(
        LAYER,
        source,
        upstream=gold.LAYER,
        description=f"Certified {source.id} context: current, canonical, trusted, fresh. The only layer served.",
        code_version=CODE_VERSION,
        promote=lambda aquifer, run_id: promote_to_platinum(source, aquifer.run_context(run_id)),
        gates=gates(source),
    )


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [platinum_asset(source) for source in catalog]
