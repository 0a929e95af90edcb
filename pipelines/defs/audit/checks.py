"""The audit table's gate: the compacted decisions form one unbroken hash chain."""

from aquifer.audit.compact import chain_intact

CHAIN_INTACT = "chain_intact"
CHAIN_DESCRIPTION = (
    "audit/decisions holds one log's records with seq 1..N and no hole, each prev equal to the hash of the record "
    "before: no decision was lost, reordered or edited between the log and the table."
)

__all__ = ["CHAIN_DESCRIPTION", "CHAIN_INTACT", "chain_intact"]
