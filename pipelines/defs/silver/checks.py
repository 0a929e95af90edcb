import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import checks, silver
from aquifer.medallion.common import utcnow
from pipelines.defs.shared import blocking_check


def _for(source: Source) -> list[dg.AssetChecksDefinition]:
    layer = silver.LAYER
    return [
        blocking_check(
            layer, source, "schema", "The silver table has exactly the silver columns and types.",
            lambda r: checks.schema_matches(r.lake(), layer, source.id, silver.SCHEMA),
        ),
        blocking_check(
            layer, source, "conservation",
            "Every bronze record is a silver document, a quarantined record or a collapsed duplicate - exactly.",
            lambda r: checks.conservation(r.lake(), source.id),
        ),
        blocking_check(
            layer, source, "pii_coverage",
            "Every document was scanned for PII by the current detector, and a PII-bearing source shows PII found.",
            lambda r: checks.pii_coverage(r.lake(), source),
        ),
        blocking_check(
            layer, source, "freshness", f"The newest document is within the {source.freshness_sla} freshness SLA.",
            lambda r: checks.freshness(r.lake(), source, now=utcnow()),
        ),
    ]  # fmt: skip


def build(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    return [check for source in catalog for check in _for(source)]
