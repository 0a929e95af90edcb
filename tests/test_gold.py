from __future__ import annotations

import datetime as dt
from itertools import pairwise

import polars as pl
import pytest

from aquifer.medallion import gold
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
    docs = pl.LazyFrame(
        {
            "silver_id": ["s-old", "s-new", "s-orig", "s-copy", "s-other"],
            "doc_id": ["hb-3", "hb-3", "pd-1", "pd-9", "pd-2"],
            "updated_at": [day, day + dt.timedelta(days=400), day, day + dt.timedelta(days=2), day],
            "near_fingerprint": ["f-old", "f-new", "f-1", "f-1", "f-2"],
        }
    )
    flags = {r["silver_id"]: r for r in gold.document_flags(docs).collect().iter_rows(named=True)}
    assert flags["s-old"]["superseded_by"] == "s-new"
    assert flags["s-new"]["superseded_by"] is None
    assert flags["s-orig"]["near_duplicate_of"] == "s-copy"  # the freshest copy is kept
    assert flags["s-copy"]["near_duplicate_of"] is None
    assert flags["s-other"] == {"silver_id": "s-other", "superseded_by": None, "near_duplicate_of": None}


def test_chunk_pii_spans_are_clipped_and_rebased() -> None:
    spans = [{"type": "email", "start": 5, "end": 15}, {"type": "phone", "start": 40, "end": 52}]
    assert gold._chunk_pii(spans, 10, 45) == [
        {"type": "email", "start": 0, "end": 5},
        {"type": "phone", "start": 30, "end": 35},
    ]
