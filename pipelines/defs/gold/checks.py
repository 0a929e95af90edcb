from aquifer.catalog import Source
from aquifer.medallion import checks, gold
from pipelines.defs.shared import Gate


def gates(source: Source) -> list[Gate]:
    return [
        Gate(
            "schema",
            "The gold table has exactly the gold columns and types.",
            lambda lake: checks.schema_matches(lake, gold.LAYER, source.id, gold.SCHEMA),
        ),
        Gate(
            "chunk_size",
            f"Every chunk is non-empty and at most {gold.CHUNK_TOKENS} tokens.",
            lambda lake: checks.chunk_sizes(lake, source.id),
        ),
    ]
