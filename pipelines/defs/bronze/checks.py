from aquifer.catalog import Source
from aquifer.medallion import bronze
from pipelines.defs.shared import Gate, schema_gate


def gates(source: Source) -> list[Gate]:
    return [
        schema_gate(bronze.LAYER, source, bronze.SCHEMA),
    ]
