import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import bronze
from aquifer.medallion.common import QUARANTINE
from aquifer.medallion.silver import CODE_VERSION, LAYER, QUARANTINE_SCHEMA, promote_to_silver
from pipelines.defs.resources import AquiferResource
from pipelines.defs.shared import asset_metadata, materialize_result, owners, tags


def silver_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=[LAYER, source.id],
        group_name=LAYER,
        deps=[dg.AssetKey([bronze.LAYER, source.id])],
        description=f"Validated {source.id} documents with PII spans; rejects in quarantine/{source.id}.",
        owners=owners(source),
        tags=tags(source),
        kinds={"polars", "delta"},
        code_version=CODE_VERSION,
        metadata=asset_metadata(source),
    )
    def _silver(context: dg.AssetExecutionContext, aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        ctx = aquifer.run_context(context.run.run_id)
        result = promote_to_silver(source, aquifer.catalog(), ctx)
        quarantine = ctx.lake.read(QUARANTINE, source.id, columns=["reason"], schema=QUARANTINE_SCHEMA)
        by_reason = dict(quarantine.group_by("reason").len().sort("reason").rows())
        return materialize_result(
            result,
            {
                "quarantined_total": quarantine.height,
                "quarantined_by_reason": dg.MetadataValue.json(by_reason),
                "quarantine_path": dg.MetadataValue.path(ctx.lake.uri(QUARANTINE, source.id)),
                "quarantine_delta_version": ctx.lake.version(QUARANTINE, source.id) or 0,
            },
        )

    return _silver


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [silver_asset(source) for source in catalog]
