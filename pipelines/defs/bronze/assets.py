import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion.bronze import CODE_VERSION, LAYER, promote_to_bronze
from pipelines.defs.resources import AquiferResource
from pipelines.defs.shared import asset_metadata, materialize_result, owners, tags


def bronze_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=[LAYER, source.id],
        group_name=LAYER,
        description=f"Every record of the {source.id} landing files, raw bytes kept. {source.description}",
        owners=owners(source),
        tags=tags(source),
        kinds={"polars", "delta"},
        code_version=CODE_VERSION,
        metadata=asset_metadata(source),
    )
    def _bronze(context: dg.AssetExecutionContext, aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        result = promote_to_bronze(source, aquifer.landing_dir, aquifer.run_context(context.run.run_id))
        return materialize_result(result)

    return _bronze


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [bronze_asset(source) for source in catalog]
