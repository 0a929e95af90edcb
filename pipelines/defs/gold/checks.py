from aquifer.catalog import Source
from aquifer.medallion import checks, gold
from pipelines.defs.shared import Gate, schema_gate


def gates(source: Source) -> list[Gate]:
    return [
        schema_gate(gold.LAYER, source, gold.SCHEMA),
        Gate(
            "chunk_size",
            f"Every chunk is non-empty and at most {gold.CHUNK_TOKENS} tokens.",
            lambda lake: checks.chunk_sizes(lake, source.id),
        ),
    ]
