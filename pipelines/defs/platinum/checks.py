from aquifer.catalog import Source
from aquifer.medallion import checks, platinum
from aquifer.medallion.common import utcnow
from pipelines.defs.shared import Gate, schema_gate


def gates(source: Source) -> list[Gate]:
    return [
        schema_gate(platinum.LAYER, source, platinum.SCHEMA),
        Gate(
            "certified_only",
            "Every served row is current, canonical, trusted and fresh in gold.",
            lambda lake: checks.certified_only(lake, source, now=utcnow()),
        ),
    ]
