"""Quality gates between the layers. Dagster runs them as blocking asset checks (``pipelines/defs/*/checks.py``):
a failing check stops promotion downstream and its description says why in the UI. ``aquifer status`` reuses
them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from aquifer import pii
from aquifer.catalog import Source
from aquifer.checks import CheckOutcome
from aquifer.ids import PRINCIPAL_PATTERN
from aquifer.lake import Lake
from aquifer.medallion import bronze, gold, platinum, silver
from aquifer.medallion.layers import QUARANTINE


def schema_matches(lake: Lake, layer: str, dataset: str, expected: Mapping[str, pl.DataType]) -> CheckOutcome:
    if not lake.exists(layer, dataset):
        return CheckOutcome(False, f"{layer}/{dataset} does not exist yet")
    actual = lake.scan(layer, dataset).collect_schema()
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected]
    wrong = [f"{c}: {actual[c]} != {expected[c]}" for c in expected if c in actual and actual[c] != expected[c]]
    problems = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else []) + wrong
    if problems:
        return CheckOutcome(False, f"schema of {layer}/{dataset} differs: " + "; ".join(problems))
    return CheckOutcome(True, f"{len(expected)} columns as expected")


def conservation(lake: Lake, dataset: str) -> CheckOutcome:
    """bronze records = silver documents + quarantined records + collapsed duplicates, exactly."""
    bronze_rows = lake.read(bronze.LAYER, dataset, columns=["record_id"], schema=bronze.SCHEMA).height
    docs = lake.read(silver.LAYER, dataset, columns=["upstream_ids"], schema=silver.SCHEMA)
    quarantined = lake.read(QUARANTINE, dataset, columns=["record_id"], schema=silver.QUARANTINE_SCHEMA).height
    accounted = int(docs["upstream_ids"].list.len().sum()) if docs.height else 0
    duplicates = accounted - docs.height
    metadata = {
        "bronze_records": bronze_rows,
        "silver_documents": docs.height,
        "quarantined": quarantined,
        "collapsed_duplicates": duplicates,
    }
    balance = bronze_rows - (docs.height + quarantined + duplicates)
    if balance != 0:
        what = "unaccounted for" if balance > 0 else "counted twice"
        return CheckOutcome(False, f"{abs(balance)} bronze records are {what} in silver + quarantine", metadata)
    return CheckOutcome(
        True,
        f"{bronze_rows} = {docs.height} documents + {quarantined} quarantined + {duplicates} duplicates",
        metadata,
    )


def pii_coverage(lake: Lake, source: Source) -> CheckOutcome:
    """Every document was scanned by the current detector; a source known to hold PII shows it being found."""
    docs = lake.read(silver.LAYER, source.id, columns=["detector_version", "pii_types"], schema=silver.SCHEMA)
    unscanned = docs.filter(pl.col("detector_version").ne_missing(pii.DETECTOR_VERSION)).height
    metadata: dict[str, Any] = {"documents": docs.height, "not_scanned_by_current_detector": unscanned}
    if unscanned:
        return CheckOutcome(
            False, f"{unscanned} documents were not scanned by detector {pii.DETECTOR_VERSION}", metadata
        )
    if not source.pii.expected or docs.is_empty():
        return CheckOutcome(True, "all documents scanned; no PII expected in this source", metadata)
    expected = source.pii.types
    with_expected = docs.filter(pl.col("pii_types").list.set_intersection(expected).list.len() > 0).height
    found = set(docs["pii_types"].explode().drop_nulls().to_list())
    rate = with_expected / docs.height
    metadata |= {"detection_rate": round(rate, 4), "types_found": sorted(found), "types_expected": expected}
    if rate < source.pii_min_detection_rate:
        return CheckOutcome(
            False,
            f"PII found in {rate:.0%} of documents, below the catalog's {source.pii_min_detection_rate:.0%} "
            "for a source that holds PII: the detector may be missing it",
            metadata,
        )
    return CheckOutcome(True, f"PII found in {rate:.0%} of documents (types: {', '.join(sorted(found))})", metadata)


def document_acls(lake: Lake, source: Source) -> CheckOutcome:
    """Every silver document's ACL is what the catalog promises: present when ``document_acl`` is required, absent
    when it is none, and otherwise a sorted, de-duplicated, non-empty list of valid principals. Silver enforces this
    record by record; the check proves it of the table (a writer that bypassed ``normalise`` would fail it)."""
    docs = lake.read(silver.LAYER, source.id, columns=["acl"], schema=silver.SCHEMA)
    listed = docs.filter(pl.col("acl").is_not_null())
    malformed = listed.filter(
        (pl.col("acl").list.len() == 0)
        | (pl.col("acl").list.eval(~pl.element().str.contains(PRINCIPAL_PATTERN)).list.any())
        | (pl.col("acl") != pl.col("acl").list.unique().list.sort())
    ).height
    metadata = {
        "documents": docs.height,
        "with_acl": listed.height,
        "without_acl": docs.height - listed.height,
        "malformed_acl": malformed,
        "document_acl": source.document_acl,
    }
    problems = [f"{malformed} documents hold an ACL that is empty, unsorted or names no principal"] if malformed else []
    if source.document_acl == "required" and listed.height < docs.height:
        problems.append(f"{docs.height - listed.height} documents have no ACL, which the catalog requires")
    if source.document_acl == "none" and listed.height:
        problems.append(f"{listed.height} documents carry an ACL, which the catalog says this source does not read")
    if problems:
        return CheckOutcome(False, "; ".join(problems), metadata)
    return CheckOutcome(
        True, f"{listed.height} of {docs.height} documents carry an ACL (document_acl: {source.document_acl})", metadata
    )


def freshness(lake: Lake, source: Source, *, now: dt.datetime) -> CheckOutcome:
    """The source's newest document is within its freshness SLA (the feed is alive)."""
    docs = lake.read(silver.LAYER, source.id, columns=["updated_at"], schema=silver.SCHEMA)
    if docs.is_empty():
        return CheckOutcome(False, f"no documents yet; the freshness SLA is {source.freshness_sla}")
    newest: dt.datetime = docs["updated_at"].max()  # type: ignore[assignment]
    stale = docs.filter(pl.col("updated_at") + source.freshness < now).height
    age = now - newest
    metadata = {
        "newest_updated_at": newest.isoformat(),
        "stale_documents": stale,
        "sla": source.freshness_sla,
    }
    if age > source.freshness:
        return CheckOutcome(
            False, f"newest document is {age.days} days old, beyond the {source.freshness_sla} SLA", metadata
        )
    return CheckOutcome(True, f"newest document is {age.days} days old ({stale} stale documents held back)", metadata)


def chunk_sizes(lake: Lake, dataset: str) -> CheckOutcome:
    chunks = lake.read(gold.LAYER, dataset, columns=["token_count", "text"], schema=gold.SCHEMA)
    too_long = chunks.filter(pl.col("token_count") > gold.CHUNK_TOKENS).height
    empty = chunks.filter(pl.col("text").str.strip_chars() == "").height
    metadata = {"chunks": chunks.height, "too_long": too_long, "empty": empty}
    if too_long or empty:
        return CheckOutcome(False, f"{too_long} chunks over {gold.CHUNK_TOKENS} tokens, {empty} empty", metadata)
    return CheckOutcome(True, f"{chunks.height} chunks within {gold.CHUNK_TOKENS} tokens", metadata)


def certified_only(lake: Lake, source: Source, *, now: dt.datetime) -> CheckOutcome:
    """Every platinum row still traces to a certifiable gold chunk (nothing superseded, untrusted or stale)."""
    served = lake.read(platinum.LAYER, source.id, columns=["chunk_id"], schema=platinum.SCHEMA)
    if served.is_empty():
        return CheckOutcome(True, "nothing certified", {"rows": 0})
    eligible = platinum.certifiable(
        lake.scan(gold.LAYER, source.id),
        freshness=source.freshness,
        now=now,
        acl_required=source.document_acl == "required",
    ).select("chunk_id")
    bad = served.lazy().join(eligible, on="chunk_id", how="anti").collect().height
    if bad:
        return CheckOutcome(False, f"{bad} platinum rows are no longer certifiable in gold", {"rows": served.height})
    return CheckOutcome(True, f"{served.height} rows, all certifiable", {"rows": served.height})
