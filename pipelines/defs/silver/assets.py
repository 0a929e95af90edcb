from typing import Any

import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import bronze
from aquifer.medallion.layers import QUARANTINE
from aquifer.medallion.silver import CODE_VERSION, LAYER, QUARANTINE_SCHEMA, promote_to_silver
from pipelines.defs.resources import AquiferResource
from pipelines.defs.shared import layer_asset
from pipelines.defs.silver.checks import gates


def _quarantine_metadata(source: Source, aquifer: AquiferResource) -> dict[str, Any]:
    lake = aquifer.lake()
    quarantine = lake.read(QUARANTINE, source.id, columns=["reason"], schema=QUARANTINE_SCHEMA)
    return {
        "quarantined_total": quarantine.height,
        "quarantined_by_reason": dg.MetadataValue.json(dict(quarantine.group_by("reason").len().sort("reason").rows())),
        "quarantine_path": dg.MetadataValue.path(lake.uri(QUARANTINE, source.id)),
        "quarantine_delta_version": lake.version(QUARANTINE, source.id) or 0,
    }


def silver_asset(source: Source) -> dg.AssetsDefinition:
    return layer_asset(
        LAYER,
        source,
        upstream=bronze.LAYER,
        description=f"Validated {source.id} documents with PII spans; rejects in quarantine/{source.id}.",
        code_version=CODE_VERSION,
        promote=lambda aquifer, run_id: promote_to_silver(
            source, aquifer.run_context(run_id), catalog=aquifer.catalog()
        ),
        gates=gates(source),
        extra_metadata=lambda aquifer: _quarantine_metadata(source, aquifer),
    )


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [silver_asset(source) for source in catalog]
