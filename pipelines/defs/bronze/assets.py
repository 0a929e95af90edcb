import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion.bronze import CODE_VERSION, LAYER, promote_to_bronze
from aquifer.medallion.readers import ReaderLimits
from pipelines.defs.bronze.checks import gates
from pipelines.defs.shared import layer_asset


def bronze_asset(source: Source) -> dg.AssetsDefinition:
    return layer_asset(
        LAYER,
        source,
        upstream=None,
        description=f"Every record of the {source.id} landing files, raw bytes kept. {source.description}",
        code_version=CODE_VERSION,
        promote=lambda aquifer, run_id: promote_to_bronze(
            source,
            aquifer.run_context(run_id),
            landing_root=aquifer.landing_dir,
            limits=ReaderLimits.from_settings(aquifer.settings()),
        ),
        gates=gates(source),
    )


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [bronze_asset(source) for source in catalog]
