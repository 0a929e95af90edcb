"""Silver: records become validated, normalised documents with PII spans; rejects go to quarantine.

- Every bronze record ends in exactly one place: a silver document (``upstream_ids`` lists every bronze record
  that collapsed into it, so exact duplicates are counted, not lost) or ``quarantine/<dataset>`` with a stable
  reason code and a message naming the field. Conservation is exact: bronze = documents + quarantined +
  collapsed duplicates (the silver ``conservation`` check).
- Classification = max(catalog default, the floor of every detected PII type) (``catalog/classification.yaml``).
- A document's ACL (``acl``: the sorted, de-duplicated principals of ``source.fields.acl``, read only when the
  source's ``document_acl`` is ``optional`` or ``required``) is null when the document carries none, never an empty
  list. A required ACL that is missing is quarantined (``missing_acl``); a malformed one is quarantined under
  either mode (``invalid_acl``): an ACL that cannot be read is never served to everyone. The ACL is part of the
  document's identity (``silver_id``), so an ACL change on otherwise unchanged content is a new document
  downstream and takes effect on the next materialization.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from aquifer import pii
from aquifer.catalog import Catalog, Classification, Source
from aquifer.ids import is_identifier, is_principal, is_principal_name
from aquifer.medallion import bronze, promotion, readers
from aquifer.medallion.common import PII_SPAN, PromotionResult, RunContext, nested_spans
from aquifer.medallion.layers import LINEAGE_SCHEMA, QUARANTINE, Layer

CODE_VERSION = "silver-1"
LAYER = Layer.SILVER

# Stable reason codes for records silver rejects (bronze parse failures keep their bronze status code).
VALIDATION_ERRORS = {
    "missing_field": "a required field is missing or empty",
    "invalid_field_type": "a field has the wrong type",
    "invalid_timestamp": "a timestamp field is not ISO 8601",
    "missing_acl": "the source requires a document ACL (document_acl: required) and the record has none",
    "invalid_acl": "the document ACL cannot be read (wrong type, unknown key, a name that is no principal, or nobody)",
}
REASONS = {**readers.PARSE_ERRORS, **VALIDATION_ERRORS}

SCHEMA: dict[str, pl.DataType] = {
    "silver_id": pl.String(),
    "source_id": pl.String(),
    "doc_id": pl.String(),
    "title": pl.String(),
    "body": pl.String(),
    "language": pl.String(),
    "updated_at": pl.Datetime("us", "UTC"),
    "owner": pl.String(),
    "acl": pl.List(pl.String),
    "classification": pl.String(),
    "pii_types": pl.List(pl.String),
    "pii_spans": pl.List(PII_SPAN),
    "title_pii_spans": pl.List(PII_SPAN),
    "detector_version": pl.String(),
    "content_sha256": pl.String(),
    **LINEAGE_SCHEMA,
    "processed_at": pl.Datetime("us", "UTC"),
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "source_id": pl.String(),
    "uri": pl.String(),
    "record_ordinal": pl.Int64(),
    "reason": pl.String(),
    "message": pl.String(),
    "upstream_table": pl.String(),
    "upstream_version": pl.Int64(),
    "run_id": pl.String(),
    "code_version": pl.String(),
    "quarantined_at": pl.Datetime("us", "UTC"),
}

_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class Rejected(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Normalised:
    doc_id: str
    title: str
    body: str
    language: str
    updated_at: dt.datetime
    owner: str
    acl: tuple[str, ...] | None = None  # sorted, unique principals; None: the document carries no ACL


def _text_field(payload: Mapping[str, Any], field: str, role: str, *, required: bool = True) -> str | None:
    value = payload.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Rejected("missing_field", f"field {field!r} ({role}) is missing or empty")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected("invalid_field_type", f"field {field!r} ({role}) is a {type(value).__name__}, not text")
    return str(value).strip()


def parse_timestamp(value: str, field: str) -> dt.datetime:
    """ISO 8601 date or datetime; naive values are taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("invalid_timestamp", f"field {field!r} is {value!r}, not an ISO 8601 timestamp") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


ACL_KEYS = {"groups": "group", "users": "user", "agents": "agent"}
"""The keys of an ACL object and the principal kind each lists."""
MAX_ACL_PRINCIPALS = 1000
"""More principals than this is refused (``invalid_acl``): every chunk carries its document's ACL into the index
and every decision reads it, and real ACLs name groups, not thousands of users."""
_PRINCIPAL_FORM = "group:<name>, user:<subject> or agent:<agent id>; names of letters, digits and ._@+=:/-"


def _shown(value: Any) -> str:
    """A short repr of one offending entry: quarantine messages name what is wrong, never dump the whole value."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _acl_entries(value: Any, field: str) -> list[str]:
    """The principals an ACL value lists, or :class:`Rejected` (``invalid_acl``) naming the field and what is wrong.

    Accepted shapes: an object ``{groups: [...], users: [...], agents: [...]}`` of names (Markdown front matter, a
    JSON object), a list of principal strings (JSON), or principal strings separated by ``;`` (a CSV column, or any
    text value). Agent ids must be identifiers, as the catalog's are."""

    def invalid(what: str) -> Rejected:
        return Rejected("invalid_acl", f"field {field!r} (acl) {what}")

    def checked(entry: Any, where: str, kind: str | None = None) -> str:
        if isinstance(entry, bool) or not isinstance(entry, str):
            raise invalid(f"{where} is a {type(entry).__name__}, not text")
        if kind is not None:  # a bare name under groups/users/agents
            if not is_principal_name(entry) or (kind == "agent" and not is_identifier(entry)):
                raise invalid(f"{where} ({_shown(entry)}) is not a valid {kind} name ({_PRINCIPAL_FORM})")
            if entry.split(":", 1)[0] in ACL_KEYS.values():  # groups: [group:x] would never match anyone
                raise invalid(f"{where} ({_shown(entry)}) is a principal; list the bare {kind} name")
            return f"{kind}:{entry}"
        if not is_principal(entry) or (entry.startswith("agent:") and not is_identifier(entry[6:])):
            raise invalid(f"{where} ({_shown(entry)}) is not a principal ({_PRINCIPAL_FORM})")
        return entry

    if isinstance(value, dict):
        principals = []
        for key, names in value.items():
            kind = ACL_KEYS.get(key) if isinstance(key, str) else None
            if kind is None:
                raise invalid(f"has unknown key {_shown(key)}; an ACL object has only {', '.join(ACL_KEYS)}")
            if names is None:  # `groups:` left empty in YAML
                continue
            if not isinstance(names, list):
                raise invalid(f"{key} is a {type(names).__name__}, not a list of names")
            principals += [checked(name, f"{key} entry {i + 1}", kind) for i, name in enumerate(names)]
        return principals
    if isinstance(value, list):
        return [checked(entry, f"entry {i + 1}") for i, entry in enumerate(value)]
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(";")]
        return [checked(part, f"entry {i + 1}") for i, part in enumerate(parts) if part]
    raise invalid(
        f"is a {type(value).__name__}, not an object of groups/users/agents, a list of principals or "
        "principals separated by ';'"
    )


def document_acl(source: Source, payload: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The document's ACL as sorted, unique principals; None when it carries none (or the source does not read
    ACLs: ``document_acl: none``). Missing under ``required`` is ``missing_acl``; a malformed ACL is ``invalid_acl``
    under ``optional`` and ``required`` alike (fail closed: it is never read as "no ACL")."""
    if source.document_acl == "none":
        return None
    field = source.fields.acl
    value = payload.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if source.document_acl == "required":
            raise Rejected(
                "missing_acl", f"field {field!r} (acl) is missing or empty; source {source.id} requires a document ACL"
            )
        return None
    principals = sorted(set(_acl_entries(value, field)))
    if not principals:
        raise Rejected(
            "invalid_acl", f"field {field!r} (acl) lists nobody; an ACL names at least one group, user or agent"
        )
    if len(principals) > MAX_ACL_PRINCIPALS:
        raise Rejected(
            "invalid_acl",
            f"field {field!r} (acl) lists {len(principals):,} principals, more than {MAX_ACL_PRINCIPALS:,}; "
            "grant groups instead",
        )
    return tuple(principals)


def normalise(source: Source, payload: Mapping[str, Any], uri: str) -> Normalised:
    """Map a bronze payload onto the document schema, or raise :class:`Rejected` naming the field."""
    fields = source.fields
    whole_file = readers.READERS[source.format].whole_file
    body = _text_field(payload, fields.body, "body")
    assert body is not None
    doc_id = _text_field(payload, fields.id, "id", required=not whole_file)
    if doc_id is None:  # a whole-file document (a Markdown page) without an id is identified by its path
        doc_id = uri.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    title = _text_field(payload, fields.title, "title", required=not whole_file)
    if title is None:
        heading = _HEADING.search(body)
        if heading is None:
            raise Rejected(
                "missing_field", f"field {fields.title!r} (title) is missing and the body has no '# ' heading"
            )
        title = heading.group(1)
    updated_raw = _text_field(payload, fields.updated_at, "updated_at")
    assert updated_raw is not None
    language = _text_field(payload, fields.language or "language", "language", required=False) or "en"
    owner = _text_field(payload, fields.owner or "owner", "owner", required=False) or source.owner.contact
    return Normalised(
        doc_id=doc_id,
        title=title,
        body=body,
        language=language.lower(),
        updated_at=parse_timestamp(updated_raw, fields.updated_at),
        owner=owner,
        acl=document_acl(source, payload),
    )


def classify(default: Classification, pii_types: list[str], floors: Mapping[str, Classification]) -> Classification:
    """max(catalog default, the floor of each detected PII type)."""
    return max([default, *(floors[t] for t in pii_types)])


def triage(
    pending: pl.DataFrame, source: Source, stamp: Mapping[str, Any]
) -> tuple[list[tuple[str, Normalised]], list[dict[str, Any]]]:
    """The records that normalise (with their bronze ids) and the quarantine rows of those that do not, each with
    its reason code (the bronze parse status, or silver's own) and a message naming the file."""
    rejects: list[dict[str, Any]] = []
    accepted: list[tuple[str, Normalised]] = []
    for row in pending.iter_rows(named=True):
        if row["parse_status"] != readers.OK:
            reason, message = row["parse_status"], row["parse_error"]
        else:
            try:
                accepted.append((row["record_id"], normalise(source, json.loads(row["payload"]), row["uri"])))
                continue
            except Rejected as exc:
                reason, message = exc.reason, str(exc)
        rejects.append(
            {
                "record_id": row["record_id"],
                "source_id": source.id,
                "uri": row["uri"],
                "record_ordinal": row["record_ordinal"],
                "reason": reason,
                "message": f"{row['uri']}: {message}",
                **stamp,
            }
        )
    return accepted, rejects


def document_key(source: Source, doc: Normalised, content_sha: str) -> list[str]:
    """What identifies a silver document (its ``silver_id``): source, doc id, content hash and, when the document
    carries one, its ACL. A changed ACL is a new document, so it reaches gold and platinum as new rows on the next
    run and the old version is superseded; a document without an ACL keeps the id it had before ACLs existed."""
    key = [source.id, doc.doc_id, content_sha]
    if doc.acl is not None:
        key.append("acl=" + ";".join(doc.acl))  # no principal holds a ';'
    return key


def collapse_duplicates(accepted: list[tuple[str, Normalised]], source: Source) -> list[dict[str, Any]]:
    """One document per (id, title, body, timestamp, ACL): exact duplicates collapse into the first, which lists
    every bronze record it stands for in ``upstream_ids``."""
    documents: dict[str, dict[str, Any]] = {}
    for record_id, doc in accepted:
        content_sha = hashlib.sha256(
            "\x1f".join([doc.title, doc.body, doc.updated_at.isoformat()]).encode()
        ).hexdigest()
        silver_id = LAYER.stable_id(*document_key(source, doc, content_sha))
        if silver_id in documents:
            documents[silver_id]["upstream_ids"].append(record_id)
            continue
        documents[silver_id] = {
            "silver_id": silver_id,
            "source_id": source.id,
            "doc_id": doc.doc_id,
            "title": doc.title,
            "body": doc.body,
            "language": doc.language,
            "updated_at": doc.updated_at,
            "owner": doc.owner,
            "acl": list(doc.acl) if doc.acl is not None else None,
            "content_sha256": content_sha,
            "upstream_ids": [record_id],
        }
    return list(documents.values())


def with_pii(docs: list[dict[str, Any]], source: Source, catalog: Catalog, stamp: Mapping[str, Any]) -> pl.DataFrame:
    """The documents as silver rows: PII spans of body and title, the types found, the classification they raise
    the document to, the detector's version and the run's lineage columns (``stamp``)."""
    if not docs:  # guarded: loading the recognizers costs seconds, and a run with nothing new should cost nothing
        return pl.DataFrame(schema=SCHEMA)
    body_spans = pii.detect_parallel([d["body"] for d in docs])
    title_spans = pii.detect_many([d["title"] for d in docs])
    floors = catalog.vocabulary.pii_floor
    types = [sorted({s.type for s in b} | {s.type for s in t}) for b, t in zip(body_spans, title_spans, strict=True)]
    return (
        pl.DataFrame({c: [d[c] for d in docs] for c in docs[0]}, schema={c: SCHEMA[c] for c in docs[0]})
        .with_columns(
            pl.Series("pii_types", types, pl.List(pl.String)),
            nested_spans(
                len(docs), {i: [(s.type, s.start, s.end) for s in f] for i, f in enumerate(body_spans) if f}
            ).alias("pii_spans"),
            nested_spans(
                len(docs), {i: [(s.type, s.start, s.end) for s in f] for i, f in enumerate(title_spans) if f}
            ).alias("title_pii_spans"),
            pl.Series("classification", [classify(source.classification, t, floors).value for t in types], pl.String),
            pl.lit(pii.DETECTOR_VERSION).alias("detector_version"),
            *(pl.lit(value, SCHEMA[name]).alias(name) for name, value in stamp.items()),
        )
        .select(SCHEMA.keys())
    )


def promote_to_silver(source: Source, ctx: RunContext, *, catalog: Catalog) -> PromotionResult:
    """Validate and normalise the bronze records of ``source`` that silver has not accounted for yet."""
    lake = ctx.lake
    records = promotion.upstream(ctx, bronze.LAYER, source.id, bronze.SCHEMA)
    bronze_version = records.version
    existing = lake.read(LAYER, source.id, columns=["silver_id", "upstream_ids"], schema=SCHEMA)
    quarantined = lake.read(QUARANTINE, source.id, columns=["record_id"], schema=QUARANTINE_SCHEMA)
    accounted = pl.concat([existing.select(pl.col("upstream_ids").explode().alias("record_id")), quarantined])
    # payloads are decoded only for the records silver has not accounted for (kept or quarantined)
    pending = (
        promotion.pending(records.frame, accounted, "record_id")
        .select("record_id", "uri", "record_ordinal", "payload", "parse_status", "parse_error")
        .sort("uri", "record_ordinal", "record_id")
        .collect()
    )
    lineage = records.lineage(ctx, CODE_VERSION)

    accepted, rejects = triage(pending, source, {**lineage, "quarantined_at": ctx.now})
    docs = collapse_duplicates(accepted, source)
    new_docs = with_pii(docs, source, catalog, {**lineage, "processed_at": ctx.now})
    types = new_docs["pii_types"].to_list()

    # A duplicate of a document silver already holds extends that row's upstream_ids instead of adding a row.
    overlap = new_docs.join(existing, on="silver_id", how="inner", suffix="_old")
    merged_existing = (
        lake.scan(LAYER, source.id)
        .filter(pl.col("silver_id").is_in(overlap["silver_id"].implode()))
        .collect()
        .join(overlap.select("silver_id", pl.col("upstream_ids").alias("added")), on="silver_id")
        .with_columns(
            pl.concat_list("upstream_ids", "added").list.unique().list.sort().alias("upstream_ids"),
            pl.lit(bronze_version, pl.Int64).alias("upstream_version"),
            pl.lit(ctx.run_id).alias("run_id"),
            # received again now: the newest observation of this version (gold orders same-updated_at versions
            # by it, so an edit undone makes the earlier content current again)
            pl.lit(ctx.now, SCHEMA["processed_at"]).alias("processed_at"),
        )
        .drop("added")
        if not overlap.is_empty()
        else pl.DataFrame(schema=SCHEMA)
    )
    inserts = new_docs.filter(~pl.col("silver_id").is_in(existing["silver_id"].implode())).with_columns(
        pl.col("upstream_ids").list.sort()
    )
    updates = merged_existing.select(SCHEMA.keys())
    version = promotion.write(ctx, LAYER, source.id, CODE_VERSION, records, inserts, key="silver_id", updates=updates)
    quarantine = pl.DataFrame(rejects, schema=QUARANTINE_SCHEMA)
    commit = ctx.commit(QUARANTINE, source.id, CODE_VERSION, {records.table: bronze_version})
    lake.append(QUARANTINE, source.id, quarantine, commit=commit)

    reasons = quarantine.group_by("reason").len().sort("reason").rows()
    total = existing.height + inserts.height
    return promotion.result(
        ctx,
        LAYER,
        source.id,
        version,
        rows_total=total,
        rows_written=inserts.height + merged_existing.height,
        metadata={
            "records_read": pending.height,
            "quarantined_now": quarantine.height,
            "quarantined_now_by_reason": dict(reasons),
            "duplicates_collapsed_now": len(accepted) - len(docs) + overlap.height,
            "pii_documents_now": sum(1 for found in types if found),
            "acl_documents_now": int(new_docs["acl"].is_not_null().sum()),
        },
    )
