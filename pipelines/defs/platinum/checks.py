import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import checks, platinum
from aquifer.medallion.common import utcnow
from pipelines.defs.shared import blocking_check


def _for(source: Source) -> list[dg.AssetChecksDefinition]:
    layer = platinum.LAYER
    return [
        blocking_check(
            layer, source, "schema", "The platinum table has exactly the platinum columns and types.",
            lambda r: checks.schema_matches(r.lake(), layer, source.id, platinum.SCHEMA),
        ),
        blocking_check(
            layer, source, "certified_only",
            "Every served row is current, canonical, trusted and fresh in gold.",
            lambda r: checks.certified_only(r.lake(), source, now=utcnow()),
        ),
    ]  # fmt: skip


def build(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    return [check for source in catalog for check in _for(source)]
