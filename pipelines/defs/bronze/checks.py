from aquifer.catalog import Source
from aquifer.medallion import bronze, checks
from pipelines.defs.shared import Gate


def gates(source: Source) -> list[Gate]:
    return [
        Gate(
            "schema",
            "The bronze table has exactly the bronze columns and types.",
            lambda lake: checks.schema_matches(lake, bronze.LAYER, source.id, bronze.SCHEMA),
        ),
    ]
