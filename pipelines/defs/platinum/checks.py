from aquifer.catalog import Source
from aquifer.medallion import checks, platinum
from aquifer.medallion.common import utcnow
from pipelines.defs.shared import Gate


def gates(source: Source) -> list[Gate]:
    return [
        Gate(
            "schema",
            "The platinum table has exactly the platinum columns and types.",
            lambda lake: checks.schema_matches(lake, platinum.LAYER, source.id, platinum.SCHEMA),
        ),
        Gate(
            "certified_only",
            "Every served row is current, canonical, trusted and fresh in gold.",
            lambda lake: checks.certified_only(lake, source, now=utcnow()),
        ),
    ]
