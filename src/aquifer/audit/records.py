"""The shape of a decision record, in the log and in the Delta table ``audit/decisions``.

One record per decision batch (one request): who asked (the agent, and the user it acted for: issuer id and subject,
with their groups, never a token), for what, through which model and where it runs, under which policy revision;
the request-level decision; and per resource its id, class, document ACL, lineage ids, allow/deny, reasons, the
obligations applied and the principals that admitted it; the channel it came through (``rest``, ``gateway``,
``mcp``, with the MCP ``tool``). :func:`decision_record` builds it; :func:`to_frame` gives its table rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from aquifer.policy.decision import BatchDecision, Resource

SERVING_KINDS = ("context", "chat")
"""Record kinds whose allowed resources were actually sent to an agent (and its model). Other kinds, such as
``explain`` (a reviewer asking the policy about a chunk), are logged as decisions but served nothing."""

RESOURCE = pl.Struct(
    {
        "id": pl.String,
        "doc_id": pl.String,
        "dataset": pl.String,
        "layer": pl.String,
        "classification": pl.String,
        "pii_types": pl.List(pl.String),
        "acl": pl.List(pl.String),
        "admitted_by": pl.List(pl.String),
        "allow": pl.Boolean,
        "served": pl.Boolean,
        "reasons": pl.List(pl.String),
        "redacted": pl.List(pl.String),
        "label": pl.String,
        "lineage": pl.List(pl.String),
    }
)

UPSTREAM = pl.Struct(
    {
        "endpoint": pl.String,
        "served_name": pl.String,
        "prompt_sha256": pl.String,
        "outcome": pl.String,
        "http_status": pl.Int64,
        "latency_ms": pl.Float64,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
        "detail": pl.String,
    }
)
"""Where a chat request went and how it ended. A ``chat`` record (written before anything is sent) names the endpoint,
the served model name and the SHA-256 of the exact request body; the ``upstream`` record that follows it (``ref`` =
the chat record's decision id) gives the outcome: ``ok``, ``upstream_error``, ``upstream_timeout``,
``upstream_unreachable`` or ``client_disconnected``."""

SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "decision_id": pl.String(),
    "time": pl.Datetime("us", "UTC"),
    "log": pl.String(),
    "prev": pl.String(),
    "hash": pl.String(),
    "segment": pl.String(),
    "kind": pl.String(),
    "channel": pl.String(),
    "tool": pl.String(),
    "agent": pl.String(),
    "user": pl.String(),
    "user_groups": pl.List(pl.String),
    "purpose": pl.String(),
    "model": pl.String(),
    "locality": pl.String(),
    "revision": pl.String(),
    "request_allow": pl.Boolean(),
    "request_reasons": pl.List(pl.String),
    "resources": pl.List(RESOURCE),
    "alerts": pl.List(pl.String),
    "withheld": pl.List(pl.String),
    "ref": pl.String(),
    "upstream": UPSTREAM,
}


def decision_record(
    batch: BatchDecision,
    *,
    kind: str,
    locality: str | None,
    resources: Sequence[Resource] = (),
    ids: Sequence[str] = (),
    lineage: Sequence[Sequence[str]] = (),
    served: Sequence[bool] = (),
    admitted_by: Sequence[Sequence[str]] = (),
    documents: Sequence[str | None] = (),
    alerts: Sequence[str] = (),
) -> dict[str, Any]:
    """The log record of one batch. ``resources``, ``ids``, ``lineage``, ``served`` (was it in the answer;
    default: allowed and of a serving kind) and ``admitted_by`` (the request's principals its ACL or dataset access
    list names) run parallel to ``batch.resources``."""
    if not (len(resources) == len(batch.resources) and len(ids) == len(resources)):
        msg = f"{len(batch.resources)} decisions but {len(resources)} resources and {len(ids)} ids"
        raise ValueError(msg)
    lineage = list(lineage) or [[] for _ in ids]
    served = list(served) or [d.allow and kind in SERVING_KINDS for d in batch.resources]
    admitted_by = list(admitted_by) or [[] for _ in ids]
    documents = list(documents) or [None for _ in ids]
    user = batch.context.user
    return {
        "kind": kind,
        "agent": batch.context.agent,
        "user": user.ref if user else None,
        "user_groups": list(user.groups) if user else None,
        "purpose": batch.context.purpose,
        "model": batch.context.model,
        "locality": locality,
        "revision": batch.revision,
        "request_allow": batch.request.allow,
        "request_reasons": list(batch.request.reasons),
        "resources": [
            {
                "id": rid,
                "doc_id": doc,
                "dataset": res.dataset,
                "layer": res.layer,
                "classification": res.classification,
                "pii_types": list(res.pii_types),
                "acl": list(res.acl) if isinstance(res.acl, tuple) else None,
                "admitted_by": list(admitted) if d.allow else [],
                "allow": d.allow,
                "served": bool(was_served and d.allow),
                "reasons": list(d.reasons),
                "redacted": list(d.obligations.redact) if d.allow else [],
                "label": d.obligations.label if d.allow else None,
                "lineage": list(lin),
            }
            for rid, res, d, lin, was_served, admitted, doc in zip(
                ids, resources, batch.resources, lineage, served, admitted_by, documents, strict=True
            )
        ],
        "alerts": list(alerts),
    }


def request_record(
    *,
    kind: str,
    agent: str,
    purpose: str | None,
    model: str | None,
    locality: str | None,
    reasons: Sequence[str],
    revision: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The log record of a request refused before the policy could be asked (e.g. no purpose declared), or of an
    event that decides nothing (``upstream``): no resources."""
    return {
        "kind": kind,
        "agent": agent,
        "purpose": purpose,
        "model": model,
        "locality": locality,
        "revision": revision,
        "request_allow": not reasons,
        "request_reasons": list(reasons),
        "resources": [],
        "alerts": [],
    } | fields


def to_frame(records: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Table rows of log records (as :func:`aquifer.audit.log.read_records` yields them)."""
    rows = [{name: rec.get(name) for name in SCHEMA if name != "time"} | {"time": rec["time"]} for rec in records]
    frame = pl.DataFrame(
        rows, schema={**{k: v for k, v in SCHEMA.items() if k != "time"}, "time": pl.String()}, strict=False
    )
    return frame.with_columns(pl.col("time").str.to_datetime(time_zone="UTC", time_unit="us")).select(list(SCHEMA))
