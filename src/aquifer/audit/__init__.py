"""The decision log and what is proven from it.

- :mod:`.log`: write-ahead, fsync'd, hash-chained JSON lines; every decision batch lands here before its answer.
- :mod:`.records`: the record shape, in the log and in the Delta table ``audit/decisions``.
- :mod:`.compact`: log -> ``audit/decisions`` (a Dagster asset runs it), idempotent.
- :mod:`.prove`: did any resource of a classification reach a model of a locality? With evidence, or a loud gap.
"""

from aquifer.audit.compact import compact
from aquifer.audit.log import DecisionLog, read_records
from aquifer.audit.prove import Proof, prove
from aquifer.audit.records import decision_record, request_record

__all__ = ["DecisionLog", "Proof", "compact", "decision_record", "prove", "read_records", "request_record"]
