"""What each asset reads and writes, as OpenLineage datasets, and the step wrapper every asset body runs in.

The library (:mod:`aquifer.export.openlineage`) knows events; this module knows the graph: a layer asset reads the
table of the layer below (bronze reads its landing folder) and writes its own (silver also writes the source's
quarantine), the index reads every platinum table and writes the LanceDB table, the audit asset reads the decision
log and writes ``audit/decisions``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import polars as pl

from aquifer.audit import records
from aquifer.audit.compact import LAYER as AUDIT_LAYER
from aquifer.audit.compact import TABLE as AUDIT_TABLE
from aquifer.catalog import Catalog, Source
from aquifer.export.openlineage import Dataset, LineageEmitter, Outcome, Step, configured_client
from aquifer.index import schema as index_schema
from aquifer.lake import Lake
from aquifer.medallion import bronze, columns, gold, platinum, silver
from aquifer.medallion.layers import QUARANTINE, Layer
from aquifer.settings import Settings

SCHEMAS: dict[str, Mapping[str, pl.DataType]] = {
    Layer.BRONZE: bronze.SCHEMA,
    Layer.SILVER: silver.SCHEMA,
    Layer.GOLD: gold.SCHEMA,
    Layer.PLATINUM: platinum.SCHEMA,
    QUARANTINE: silver.QUARANTINE_SCHEMA,
}


_READ_FIELDS = ("hash", "segment")
"""Fields of a decision row that say how the log was read, not what was logged."""


def emitter(settings: Settings) -> LineageEmitter:
    """The emitter of the standard OpenLineage configuration (a no-op one when none is configured)."""
    return LineageEmitter(
        configured_client(),
        namespace=settings.openlineage_namespace,
        state_dir=settings.data_dir / "openlineage" / "running",
        schema_base_url=settings.public_url or "http://127.0.0.1:8000",
        retry_after_s=settings.openlineage_retry_after_s,
    )


def _types(schema: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in schema.items()}


def source_tags(source: Source) -> dict[str, str]:
    """The catalog's governance labels of a source, as dataset tags."""
    tags = {
        "classification": source.classification.value,
        "format": source.format,
        "owner_team": source.owner.team,
        "allowed_purposes": ",".join(source.allowed_purposes),
        "retention": source.retention,
    }
    if source.pii.types:
        tags["pii_types"] = ",".join(sorted(source.pii.types))
    if source.document_acl != "none":
        tags["document_acl"] = source.document_acl
    return tags


def table(lake: Lake, layer: str, source: Source) -> Dataset:
    return Dataset(
        lake.uri(layer, source.id),
        f"{layer}/{source.id}",
        schema=_types(SCHEMAS[layer]),
        tags=source_tags(source),
    )


def layer_datasets(layer: str, source: Source, lake: Lake, landing: str) -> tuple[list[Dataset], list[Dataset]]:
    """The inputs and outputs of ``layer/source``."""
    if layer == Layer.BRONZE:
        folder = Dataset(
            f"{landing}/{source.landing_path}", f"landing/{source.id}", kind="DIRECTORY", tags=source_tags(source)
        )
        return [folder], [table(lake, layer, source)]
    below = Layer(layer).upstream
    assert below is not None
    outputs = [table(lake, layer, source)]
    if layer == Layer.SILVER:
        outputs.append(table(lake, QUARANTINE, source))
    return [table(lake, below, source)], outputs


def layer_lineage(layer: str, source: Source) -> dict[str, Mapping[str, columns.Derivation]]:
    lineage: dict[str, Mapping[str, columns.Derivation]] = {}
    if layer in columns.LINEAGE:
        lineage[f"{layer}/{source.id}"] = columns.LINEAGE[Layer(layer)]
    if layer == Layer.SILVER:
        lineage[f"{QUARANTINE}/{source.id}"] = columns.SILVER_QUARANTINE
    return lineage


def index_datasets(settings: Settings, lake: Lake, catalog: Catalog) -> tuple[list[Dataset], list[Dataset]]:
    inputs = [table(lake, Layer.PLATINUM, s) for s in catalog]
    out = Dataset(
        f"{settings.index_location.rstrip('/')}/{index_schema.TABLE}.lance",
        f"index/{index_schema.TABLE}",
        schema={f.name: str(f.type) for f in index_schema.SCHEMA},
    )
    return inputs, [out]


def audit_datasets(settings: Settings, lake: Lake) -> tuple[list[Dataset], list[Dataset]]:
    logged = {k: v for k, v in records.SCHEMA.items() if k not in _READ_FIELDS}
    log = Dataset(str(settings.decisions_dir), "audit/decision_log", kind="DIRECTORY", schema=_types(logged))
    return [log], [
        Dataset(lake.uri(AUDIT_LAYER, AUDIT_TABLE), f"{AUDIT_LAYER}/{AUDIT_TABLE}", schema=_types(records.SCHEMA))
    ]


def audit_columns() -> dict[str, columns.Derivation]:
    """``audit/decisions`` holds each log record's fields as they were logged (``hash`` and ``segment`` are where and
    how it was read)."""
    logged = [name for name in records.SCHEMA if name not in _READ_FIELDS]
    derived = {name: columns.same(name) for name in logged}
    derived["hash"] = columns.derived(*logged, how="SHA-256 of the record's line in the log")
    derived["segment"] = columns.stamped("the log segment the record was read from")
    return derived


@contextlib.contextmanager
def step(
    context: dg.AssetExecutionContext,
    lineage: LineageEmitter,
    inputs: list[Dataset],
    outputs: list[Dataset],
) -> Iterator[Step]:
    """START before the body, FAIL if it raises; the body ends with :meth:`LineageEmitter.complete`."""
    spec = context.assets_def.specs_by_key[context.asset_key] if context.assets_def else None
    current = Step(
        job=context.asset_key.to_user_string(),
        dagster_run_id=context.run.run_id,
        dagster_job=context.run.job_name,
        inputs=inputs,
        outputs=outputs,
        description=(spec.description or "") if spec else "",
        owners=list(spec.owners) if spec else [],
    )
    lineage.start(current)
    try:
        yield current
    except BaseException as exc:
        lineage.fail(current, exc)
        raise


def quarantined(promoted: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """Silver's quarantine counts (records rejected by this run, in all, by reason), None for other layers."""
    if "quarantined_now" not in promoted:
        return None
    by_reason = metadata.get("quarantined_by_reason")
    by_reason = getattr(by_reason, "data", by_reason) or {}  # a Dagster JSON metadata value
    return {
        "now": int(promoted["quarantined_now"]),
        "total": int(metadata.get("quarantined_total", promoted["quarantined_now"])),
        "byReason": {str(k): int(v) for k, v in dict(by_reason).items()},
    }


def versions(lake: Lake, datasets: list[Dataset]) -> dict[str, int | None]:
    """The current Delta version of each lake table among ``datasets`` (folders and the index have none)."""
    out: dict[str, int | None] = {}
    for ds in datasets:
        layer, _, dataset = ds.logical_name.partition("/")
        if ds.kind == "TABLE" and (layer in SCHEMAS or layer == AUDIT_LAYER):
            out[ds.logical_name] = lake.version(layer, dataset)
    return out


__all__ = [
    "Outcome",
    "audit_columns",
    "audit_datasets",
    "emitter",
    "index_datasets",
    "layer_datasets",
    "layer_lineage",
    "quarantined",
    "step",
    "versions",
]
