import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import silver
from aquifer.medallion.gold import CODE_VERSION, LAYER, promote_to_gold
from pipelines.defs.gold.checks import gates
from pipelines.defs.shared import layer_asset


def gold_asset(source: Source) -> dg.AssetsDefinition:
    return layer_asset(
        LAYER,
        source,
        upstream=silver.LAYER,
        description=f"Token-aware chunks of {source.id} with classification, PII, purposes and quality flags.",
        code_version=CODE_VERSION,
        promote=lambda aquifer, run_id: promote_to_gold(source, aquifer.run_context(run_id), catalog=aquifer.catalog()),
        gates=gates(source),
    )


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [gold_asset(source) for source in catalog]
