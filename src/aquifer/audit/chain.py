"""The hash chain of the decision log: every record names the hash of the one before it (the first, the log's id),
so a missing, edited or reordered record, or a restarted log, is a break. Read by compaction (its check) and by the
proofs; it imports neither."""

from __future__ import annotations

import polars as pl


def chain_gaps_of(chain: pl.DataFrame, window_start: int | None) -> list[str]:
    """Every break in the hash chain of ``chain`` (rows sorted by seq)."""
    gaps: list[str] = []
    if chain.is_empty():
        return gaps
    logs = chain["log"].unique().to_list()
    if len(logs) > 1:
        gaps.append(f"the log was restarted: records from {len(logs)} different logs ({', '.join(sorted(logs))})")
    first = chain.row(0, named=True)
    if window_start is not None and first["seq"] != window_start - 1 and window_start != 1:
        gaps.append(f"record {window_start - 1}, just before the window, is missing")
    if first["seq"] == 1 and first["prev"] != first["log"]:
        gaps.append("record 1 does not start its log (its prev is not the log id)")
    prev_seq, prev_hash = first["seq"], first["hash"]
    for row in chain.slice(1).iter_rows(named=True):
        if row["seq"] != prev_seq + 1:
            gaps.append(f"records {prev_seq + 1}..{row['seq'] - 1} are missing")
        elif row["prev"] != prev_hash:
            gaps.append(f"record {row['seq']} does not follow record {prev_seq} (hash chain broken)")
        prev_seq, prev_hash = row["seq"], row["hash"]
    return gaps
