"""The audit table's gate: the compacted decisions form one unbroken hash chain."""

from aquifer.audit.compact import chain_gaps
from aquifer.lake import Lake
from aquifer.medallion.checks import CheckOutcome

CHAIN_INTACT = "chain_intact"
CHAIN_DESCRIPTION = (
    "audit/decisions holds one log's records with seq 1..N and no hole, each prev equal to the hash of the record "
    "before: no decision was lost, reordered or edited between the log and the table."
)


def chain_intact(lake: Lake, from_seq: int) -> CheckOutcome:
    gaps = chain_gaps(lake, from_seq=from_seq)
    return CheckOutcome(
        passed=not gaps,
        description="hash chain intact" if not gaps else f"{len(gaps)} gap(s) in the decision chain",
        metadata={"gaps": gaps[:20], "checked_from_seq": from_seq},
    )
