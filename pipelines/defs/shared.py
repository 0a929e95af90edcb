"""Helpers every layer's assets and checks share: catalog-derived owners, tags and metadata, result shaping."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl

from aquifer.catalog import Source
from aquifer.checks import CheckOutcome
from aquifer.lake import Lake
from aquifer.medallion import checks
from aquifer.medallion.common import PromotionResult
from pipelines.defs import lineage
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


def result_metadata(result: PromotionResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Materialization metadata: row count, table path, Delta version, what this run wrote."""
    return {
        "dagster/row_count": result.rows_total,
        "dagster/uri": result.table_uri,
        "table_path": dg.MetadataValue.path(result.table_uri),
        "delta_version": result.version if result.version is not None else -1,
        "rows_written": result.rows_written,
        **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in result.metadata.items()},
        **(extra or {}),
    }


@dataclass(frozen=True)
class Gate:
    """A blocking quality gate on one asset: it runs right after the write and, when it fails, stops promotion
    downstream and says why in the UI."""

    name: str
    description: str
    evaluate: Callable[[Lake], CheckOutcome]


def schema_gate(layer: str, source: Source, schema: dict[str, pl.DataType]) -> Gate:
    """Every layer's first gate: the table has exactly the layer's columns and types."""
    return Gate(
        "schema",
        f"The {layer} table has exactly the {layer} columns and types.",
        lambda lake: checks.schema_matches(lake, layer, source.id, schema),
    )


def check_result(name: str, outcome: CheckOutcome) -> dg.AssetCheckResult:
    """A check outcome as Dagster shows it (lists and dicts as JSON metadata)."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed,
        description=outcome.description,
        metadata={
            k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in outcome.metadata.items()
        },
    )


def layer_asset(
    layer: str,
    source: Source,
    *,
    upstream: str | None,
    description: str,
    code_version: str,
    promote: Callable[[AquiferResource, str], PromotionResult],
    gates: Sequence[Gate],
    extra_metadata: Callable[[AquiferResource], dict[str, Any]] | None = None,
) -> dg.AssetsDefinition:
    """The one shape every layer's asset has: promote, attach metadata, evaluate the layer's gates."""
    layer = str(layer)  # a Layer is a str; Dagster serialises plain ones only
    key = dg.AssetKey([layer, source.id])

    @dg.asset(
        key=key,
        group_name=layer,
        deps=[dg.AssetKey([str(upstream), source.id])] if upstream else None,
        description=description,
        owners=owners(source),
        tags=tags(source),
        kinds={"polars", "delta"},
        code_version=code_version,
        metadata=asset_metadata(source),
        check_specs=[dg.AssetCheckSpec(g.name, asset=key, description=g.description, blocking=True) for g in gates],
    )
    def _asset(context: dg.AssetExecutionContext, aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        settings, lake = aquifer.settings(), aquifer.lake()
        inputs, outputs = lineage.layer_datasets(layer, source, lake, str(settings.landing_dir))
        emitter = lineage.emitter(settings)
        with lineage.step(context, emitter, inputs, outputs) as step:
            read = lineage.versions(lake, inputs)
            result = promote(aquifer, context.run.run_id)
            metadata = result_metadata(result, extra_metadata(aquifer) if extra_metadata else None)
            outcomes = [(gate.name, gate.evaluate(lake)) for gate in gates]
        if emitter.enabled:
            emitter.complete(
                step,
                lineage.Outcome(
                    versions_read=read,
                    versions_written=lineage.versions(lake, outputs),
                    rows={outputs[0].logical_name: result.rows_total},
                    rows_written=result.rows_written,
                    assertions=[(name, o.passed) for name, o in outcomes],
                    column_lineage=lineage.layer_lineage(layer, source),
                    quarantined=lineage.quarantined(result.metadata, metadata),
                ),
                failed_gates=[name for name, o in outcomes if not o.passed],
            )
        return dg.MaterializeResult(
            metadata=metadata, check_results=[check_result(name, outcome) for name, outcome in outcomes]
        )

    return _asset
