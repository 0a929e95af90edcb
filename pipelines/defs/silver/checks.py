from aquifer.catalog import Source
from aquifer.medallion import checks, silver
from aquifer.medallion.common import utcnow
from pipelines.defs.shared import Gate, schema_gate


def gates(source: Source) -> list[Gate]:
    return [
        schema_gate(silver.LAYER, source, silver.SCHEMA),
        Gate(
            "conservation",
            "Every bronze record is a silver document, a quarantined record or a collapsed duplicate - exactly.",
            lambda lake: checks.conservation(lake, source.id),
        ),
        Gate(
            "pii_coverage",
            "Every document was scanned for PII by the current detector, and a PII-bearing source shows PII found.",
            lambda lake: checks.pii_coverage(lake, source),
        ),
        Gate(
            "document_acls",
            "Every document's ACL is what the catalog promises (required: present; none: absent), and well-formed.",
            lambda lake: checks.document_acls(lake, source),
        ),
        Gate(
            "freshness",
            f"The newest document is within the {source.freshness_sla} freshness SLA.",
            lambda lake: checks.freshness(lake, source, now=utcnow()),
        ),
    ]
