"""The index's gate: it holds exactly the certified platinum chunks, each with a complete receipt."""

from aquifer.index.sync import in_sync

IN_SYNC = "in_sync_with_platinum"
IN_SYNC_DESCRIPTION = (
    "The index holds every current platinum chunk and nothing else (no superseded, stale or removed chunk can be "
    "retrieved), and every row carries a complete provenance receipt."
)

__all__ = ["IN_SYNC", "IN_SYNC_DESCRIPTION", "in_sync"]
