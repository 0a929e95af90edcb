"""What the generator makes: the sources, their formats and sizes, and the fixed shapes of its output."""

from __future__ import annotations

from typing import NamedTuple

MANIFEST_NAME = "sample_manifest.json"
MAX_FILES_PER_DIR = 5000
MAX_RECORDS_PER_FILE = 5000
PII_MANIFEST_CAP = 5000
DOCUMENT_MANIFEST_CAP = 2000
"""Per source: the manifest lists the first this many documents with their ACLs (every document up to scale 5);
``acl_summary`` still counts them all."""
MIN_WORDS = 90
CSV_HEADER = (
    "ticket_id",
    "subject",
    "description",
    "customer_name",
    "customer_email",
    "priority",
    "status",
    "created_at",
    "updated_at",
    "acl",  # principals separated by ';' (escalated tickets), or empty
)
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DAY = 86_400


class SourceSpec(NamedTuple):
    """What the generator needs from a catalog entry; tests check it against catalog/sources/*.yaml."""

    source_id: str
    fmt: str
    per_unit: int  # records at scale 1
    freshness_days: int  # the catalog's freshness_sla, in days
    id_prefix: str


# What only the generator knows about each source: how many records it makes at scale 1, and their id prefix. The
# rest (format, freshness SLA) comes from the entry the corpus is written for: the demo catalog's
# catalog/sources/<id>.yaml (the checkout's, or the one the package ships), never a copy of it.
_GENERATED: dict[str, tuple[int, str]] = {
    "product_docs": (150, "pd"),
    "engineering_wiki": (150, "wiki"),
    "hr_handbook": (40, "hb"),
    "security_runbooks": (60, "rb"),
    "hr_case_notes": (200, "case"),
    "support_tickets": (350, "T"),
    "finance_reports": (40, "fin"),
}


def _specs() -> dict[str, SourceSpec]:
    from aquifer.catalog import load_catalog
    from aquifer.settings import DEMO, PROJECT_ROOT

    demo = PROJECT_ROOT / "catalog" if (PROJECT_ROOT / "catalog").is_dir() else DEMO / "catalog"
    catalog = load_catalog(demo)
    specs = {}
    for source_id, (per_unit, id_prefix) in _GENERATED.items():
        entry = catalog.source(source_id)
        specs[source_id] = SourceSpec(source_id, entry.format, per_unit, entry.freshness.days, id_prefix)
    return specs


SOURCES: dict[str, SourceSpec] = _specs()
