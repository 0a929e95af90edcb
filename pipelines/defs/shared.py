"""Helpers every layer's assets and checks share: catalog-derived owners, tags and metadata, result shaping."""

from collections.abc import Callable
from typing import Any

import dagster as dg

from aquifer.catalog import Source
from aquifer.medallion.checks import CheckOutcome
from aquifer.medallion.common import PromotionResult
from pipelines.defs.resources import AquiferResource


def owners(source: Source) -> list[str]:
    team = "".join(ch if ch.isalnum() else "_" for ch in source.owner.team.lower())
    return [source.owner.contact, f"team:{team}"]


def tags(source: Source) -> dict[str, str]:
    return {"classification": source.classification.value, "format": source.format}


def asset_metadata(source: Source) -> dict[str, Any]:
    return {
        "owner_team": source.owner.team,
        "classification": source.classification.value,
        "allowed_purposes": ", ".join(source.allowed_purposes),
        "freshness_sla": source.freshness_sla,
        "retention": source.retention,
    }


def materialize_result(result: PromotionResult, extra: dict[str, Any] | None = None) -> dg.MaterializeResult:  # type: ignore[type-arg]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows_total,
            "dagster/uri": result.table_uri,
            "table_path": dg.MetadataValue.path(result.table_uri),
            "delta_version": result.version if result.version is not None else -1,
            "rows_written": result.rows_written,
            **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in result.metadata.items()},
            **(extra or {}),
        }
    )


def blocking_check(
    layer: str,
    source: Source,
    name: str,
    description: str,
    evaluate: Callable[[AquiferResource], CheckOutcome],
) -> dg.AssetChecksDefinition:
    """A check that stops promotion downstream when it fails, and says why in the UI."""

    @dg.asset_check(asset=dg.AssetKey([layer, source.id]), name=name, description=description, blocking=True)
    def _check(aquifer: AquiferResource) -> dg.AssetCheckResult:
        outcome = evaluate(aquifer)
        return dg.AssetCheckResult(
            passed=outcome.passed,
            description=outcome.description,
            metadata={
                k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in outcome.metadata.items()
            },
        )

    return _check
