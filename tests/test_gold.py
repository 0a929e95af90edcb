from __future__ import annotations

import datetime as dt
from itertools import pairwise

import polars as pl
import pytest

from aquifer.catalog import Catalog
from aquifer.medallion import gold
from aquifer.medallion.common import PII_SPAN
from aquifer.tokenizer import get_tokenizer


def _windows(text: str) -> list[tuple[int, int, int]]:
    offsets = get_tokenizer().encode(text, add_special_tokens=False).offsets
    return gold.chunk_spans(text, offsets)


def test_short_document_is_one_chunk() -> None:
    text = "A short page about SSO."
    assert _windows(text) == [(0, len(text), 7)]  # a short page about ss ##o .


@pytest.mark.parametrize("sentences", [60, 200])
def test_long_document_chunks_fit_and_overlap(sentences: int) -> None:
    text = " ".join(f"Sentence {i} explains how data retention works for tenant {i}." for i in range(sentences))
    windows = _windows(text)
    assert len(windows) > 1
    assert all(tokens <= gold.CHUNK_TOKENS for _, _, tokens in windows)
    assert all(tokens >= gold.CHUNK_TOKENS * 3 // 4 for _, _, tokens in windows[:-1])
    for (start_a, end_a, _), (start_b, _, _) in pairwise(windows):
        assert start_b < end_a, "consecutive chunks overlap"
        assert start_b > start_a
    assert windows[0][0] == 0 and windows[-1][1] == len(text)
    # windows prefer to end at a sentence end
    assert all(text[end - 1] == "." for _, end, _ in windows)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("SSO setup", "Configure  SAML  now."), ("sso Setup", "Configure SAML now!"), True),
        (("Quote", "It's \u201cfine\u201d"), ("Quote", 'It\'s "fine"'), True),
        (("Q1 revenue", "Revenue was 10M"), ("Q1 revenue", "Revenue was 12M"), False),
        (("SSO setup", "Configure SAML"), ("SSO setup", "Configure OIDC"), False),
    ],
)
def test_near_fingerprint(a: tuple[str, str], b: tuple[str, str], same: bool) -> None:
    assert (gold.near_fingerprint(*a) == gold.near_fingerprint(*b)) is same


def test_document_flags_mark_superseded_and_near_duplicates() -> None:
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    oncall, tier2 = ["group:oncall"], ["group:support-tier2"]
    docs = pl.LazyFrame(
        {
            "silver_id": ["s-old", "s-new", "s-orig", "s-copy", "s-other", "s-acl-2", "s-acl-1", "s-open", "s-closed"],
            "doc_id": ["hb-3", "hb-3", "pd-1", "pd-9", "pd-2", "rb-1", "rb-1", "rb-7", "rb-8"],
            "updated_at": [day, day + dt.timedelta(days=400), day, day + dt.timedelta(days=2), day, day, day, day, day],
            "near_fingerprint": ["f-old", "f-new", "f-1", "f-1", "f-2", "f-rb", "f-rb", "f-3", "f-3"],
            # the ACL and when silver received each version (documents without an ACL: null, as before ACLs)
            "acl": [None, None, None, None, None, tier2, oncall, None, oncall],
            "received_at": [day] * 5 + [day + dt.timedelta(hours=1), day + dt.timedelta(hours=2), day, day],
        },
        schema_overrides={"acl": pl.List(pl.String)},
    )
    flags = {r["silver_id"]: r for r in gold.document_flags(docs).collect().iter_rows(named=True)}
    assert flags["s-old"]["superseded_by"] == "s-new"
    assert flags["s-new"]["superseded_by"] is None
    assert flags["s-orig"]["near_duplicate_of"] == "s-copy"  # the freshest copy is kept
    assert flags["s-copy"]["near_duplicate_of"] is None
    assert flags["s-other"] == {"silver_id": "s-other", "superseded_by": None, "near_duplicate_of": None}
    # an ACL change that kept updated_at: the version silver received last wins (here the id that sorts first)
    assert flags["s-acl-2"]["superseded_by"] == "s-acl-1" and flags["s-acl-1"]["superseded_by"] is None
    # the same text under different ACLs is not a duplicate: each copy is visible to different people
    assert flags["s-open"]["near_duplicate_of"] is None and flags["s-closed"]["near_duplicate_of"] is None


def test_chunk_pii_spans_are_clipped_and_rebased() -> None:
    spans = [{"type": "email", "start": 5, "end": 15}, {"type": "phone", "start": 40, "end": 52}]
    assert gold._chunk_pii(spans, 10, 45) == [
        {"type": "email", "start": 0, "end": 5},
        {"type": "phone", "start": 30, "end": 35},
    ]


def test_chunk_documents_carries_clipped_pii_and_classification(catalog: Catalog) -> None:
    filler = " ".join(f"Paragraph {i} explains the refund workflow in detail." for i in range(60))
    body = f"Customer wrote from jane@example.com today. {filler} Card 4111 1111 1111 1111 was charged twice."
    email = body.index("jane@example.com")
    card = body.index("4111")
    docs = pl.DataFrame(
        {
            "silver_id": ["slv_a", "slv_b"],
            "doc_id": ["T-1", "T-2"],
            "title": ["Refund for Jane Miller", "Plain"],
            "body": [body, "No personal data here."],
            "language": ["en", "en"],
            "updated_at": [dt.datetime(2026, 11, 1, tzinfo=dt.UTC)] * 2,
            "owner": ["support@x", "support@x"],
            "pii_spans": [
                [
                    {"type": "email", "start": email, "end": email + 16},
                    {"type": "credit_card", "start": card, "end": card + 19},
                ],
                [],
            ],
            "title_pii_spans": [[{"type": "person", "start": 11, "end": 22}], []],
            "acl": [["group:support-tier2", "user:chloe.martin"], None],
        },
        schema_overrides={
            "pii_spans": pl.List(PII_SPAN),
            "title_pii_spans": pl.List(PII_SPAN),
            "acl": pl.List(pl.String),
        },
    )
    lineage = {
        "upstream_table": "silver/support_tickets",
        "upstream_version": 3,
        "run_id": "r",
        "code_version": "c",
        "processed_at": dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
    }
    chunks = gold.chunk_documents(docs, catalog.source("support_tickets"), catalog, lineage)
    first, *middle, last = chunks.filter(pl.col("silver_id") == "slv_a").sort("chunk_index").iter_rows(named=True)
    assert first["pii_types"] == ["email", "person"]  # the title's person travels with every chunk
    assert [first["text"][s["start"] : s["end"]] for s in first["pii_spans"]] == ["jane@example.com"]
    assert first["classification"] == "internal"
    assert last["pii_types"] == ["credit_card", "person"]
    assert [last["text"][s["start"] : s["end"]] for s in last["pii_spans"]] == ["4111 1111 1111 1111"]
    assert last["classification"] == "confidential"  # a card number lifts only the chunk that holds it
    assert all(m["pii_types"] == ["person"] and m["pii_spans"] == [] for m in middle)
    assert all(c["acl"] == ["group:support-tier2", "user:chloe.martin"] for c in (first, *middle, last))
    plain = chunks.filter(pl.col("silver_id") == "slv_b").row(0, named=True)
    assert (plain["pii_types"], plain["pii_spans"], plain["classification"]) == ([], [], "internal")
    assert plain["acl"] is None  # no ACL stays null, never an empty list
    assert chunks["upstream_version"].unique().to_list() == [3]
    assert chunks.schema == pl.Schema(gold.SCHEMA)
