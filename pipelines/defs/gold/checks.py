import dagster as dg

from aquifer.catalog import Catalog, Source
from aquifer.medallion import checks, gold
from pipelines.defs.shared import blocking_check


def _for(source: Source) -> list[dg.AssetChecksDefinition]:
    layer = gold.LAYER
    return [
        blocking_check(
            layer, source, "schema", "The gold table has exactly the gold columns and types.",
            lambda r: checks.schema_matches(r.lake(), layer, source.id, gold.SCHEMA),
        ),
        blocking_check(
            layer, source, "chunk_size", f"Every chunk is non-empty and at most {gold.CHUNK_TOKENS} tokens.",
            lambda r: checks.chunk_sizes(r.lake(), source.id),
        ),
    ]  # fmt: skip


def build(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    return [check for source in catalog for check in _for(source)]
