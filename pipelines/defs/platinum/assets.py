import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import gold
from aquifer.medallion.platinum import CODE_VERSION, LAYER, promote_to_platinum
from pipelines.defs.resources import AquiferResource
from pipelines.defs.shared import asset_metadata, materialize_result, owners, tags


def platinum_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=[LAYER, source.id],
        group_name=LAYER,
        deps=[dg.AssetKey([gold.LAYER, source.id])],
        description=f"Certified {source.id} context: current, canonical, trusted, fresh. The only layer served.",
        owners=owners(source),
        tags=tags(source),
        kinds={"polars", "delta"},
        code_version=CODE_VERSION,
        metadata=asset_metadata(source),
    )
    def _platinum(context: dg.AssetExecutionContext, aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        return materialize_result(promote_to_platinum(source, aquifer.run_context(context.run.run_id)))

    return _platinum


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [platinum_asset(source) for source in catalog]
