import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import silver
from aquifer.medallion.gold import CODE_VERSION, LAYER, promote_to_gold
from pipelines.defs.resources import AquiferResource
from pipelines.defs.shared import asset_metadata, materialize_result, owners, tags


def gold_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=[LAYER, source.id],
        group_name=LAYER,
        deps=[dg.AssetKey([silver.LAYER, source.id])],
        description=f"Token-aware chunks of {source.id} with classification, PII, purposes and quality flags.",
        owners=owners(source),
        tags=tags(source),
        kinds={"polars", "delta"},
        code_version=CODE_VERSION,
        metadata=asset_metadata(source),
    )
    def _gold(context: dg.AssetExecutionContext, aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        return materialize_result(promote_to_gold(source, aquifer.catalog(), aquifer.run_context(context.run.run_id)))

    return _gold


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [gold_asset(source) for source in catalog]
