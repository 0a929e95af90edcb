import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import bronze, checks
from pipelines.defs.shared import blocking_check


def _for(source: Source) -> list[dg.AssetChecksDefinition]:
    layer = bronze.LAYER
    return [
        blocking_check(
            layer, source, "schema", "The bronze table has exactly the bronze columns and types.",
            lambda r: checks.schema_matches(r.lake(), layer, source.id, bronze.SCHEMA),
        ),
    ]  # fmt: skip


def build(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    return [check for source in catalog for check in _for(source)]
