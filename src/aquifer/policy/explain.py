"""A reviewer's question to the policy is a decision too: ``aquifer policy explain`` logs it (kind ``explain``,
nothing served) like every other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aquifer.audit import DecisionLog, decision_record

if TYPE_CHECKING:
    from aquifer.catalog import Catalog
    from aquifer.policy.decision import BatchDecision, Resource
    from aquifer.settings import Settings


def log_explanation(
    batch: BatchDecision,
    catalog: Catalog,
    resources: list[Resource],
    row: dict[str, Any] | None,
    settings: Settings,
) -> None:
    """Append the decision of an explain (``row``: the chunk asked about, if any) to the decision log."""
    model = catalog.models.get(batch.context.model) if batch.context.model else None
    ids = [str(row.get("platinum_id") or row["chunk_id"])] if row else []
    lineage = [[str(row[k]) for k in ("chunk_id", "silver_id") if row.get(k)]] if row else []
    record = decision_record(
        batch,
        kind="explain",
        locality=model.locality.value if model else None,
        resources=resources,
        ids=ids,
        lineage=lineage,
    )
    DecisionLog(settings.decisions_dir, segment_bytes=settings.decision_log_segment_bytes).append(record)
