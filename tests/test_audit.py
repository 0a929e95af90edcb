"""The decision log (durable, hash-chained, safe under kills and concurrent writers), its compaction into
audit/decisions, and the proofs drawn from it."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from aquifer.audit import DecisionLog, compact, decision_record, prove, read_records
from aquifer.audit.compact import LAYER, TABLE, chain_gaps
from aquifer.audit.log import segments_of
from aquifer.audit.prove import load_decisions
from aquifer.lake import CommitInfo, Lake
from aquifer.policy import EmbeddedBackend, PolicyEngine, RequestContext, Resource
from aquifer.settings import PROJECT_ROOT
from tests.demo_users import user

COMMIT = CommitInfo("audit/decisions", "test-run", "test")
SINCE = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(EmbeddedBackend(), PROJECT_ROOT / "policies", PROJECT_ROOT / "catalog")


def _log_decisions(log: DecisionLog, engine: PolicyEngine, ctx: RequestContext, n: int) -> None:
    locality = engine.catalog.models[ctx.model].locality.value
    resources = [Resource("product_docs", "public"), Resource("hr_case_notes", "confidential", pii_types=("email",))]
    for i in range(n):
        batch = engine.decide(ctx, resources)
        ids = [f"plt_doc{i}", f"plt_case{i}"]
        log.append(
            decision_record(
                batch,
                kind="context",
                locality=locality,
                resources=resources,
                ids=ids,
                lineage=[["gld_a", "slv_a", "brz_a"], ["gld_b", "slv_b", "brz_b"]],
            )
        )


def _append_many(directory: str, worker: int, n: int) -> None:
    log = DecisionLog(Path(directory), segment_bytes=4096)
    for i in range(n):
        log.append({"kind": "test", "agent": f"w{worker}", "n": i, "resources": []})


def test_records_are_numbered_chained_and_rotated(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path, segment_bytes=2048)
    for i in range(40):
        log.append({"kind": "test", "agent": "a", "n": i, "resources": []})
    records = list(read_records(tmp_path))
    assert [r["seq"] for r in records] == list(range(1, 41))
    assert len(segments_of(tmp_path)) > 3, "segments rotate"
    assert records[0]["prev"] == records[0]["log"]
    for before, after in itertools.pairwise(records):
        assert after["prev"] == before["hash"] and after["log"] == before["log"]
    assert [r["seq"] for r in read_records(tmp_path, after_seq=33)] == list(range(34, 41))


def test_concurrent_writers_in_several_processes_keep_one_chain(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = list(read_records(tmp_path))
    assert [r["seq"] for r in records] == list(range(1, 161))
    assert len({r["decision_id"] for r in records}) == 160
    assert all(after["prev"] == before["hash"] for before, after in itertools.pairwise(records))


def test_a_torn_tail_is_set_aside_and_the_chain_continues(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path)
    for i in range(3):
        log.append({"kind": "test", "n": i, "resources": []})
    segment = segments_of(tmp_path)[-1]
    whole = segment.read_bytes()
    with segment.open("ab") as fh:  # what a writer killed in the middle of its write leaves behind
        fh.write(b'{"seq":4,"kind":"test","n":')
    assert [r["seq"] for r in read_records(tmp_path)] == [1, 2, 3], "readers never see a torn record"
    log.append({"kind": "test", "n": 4, "resources": []})
    records = list(read_records(tmp_path))
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[3]["prev"] == records[2]["hash"]
    assert segment.read_bytes().startswith(whole)
    assert Path(f"{segment}.torn").read_bytes() == b'{"seq":4,"kind":"test","n":\n', "torn bytes are kept"


_KILLED_WRITER = """
import sys
from pathlib import Path
from aquifer.audit.log import DecisionLog
log = DecisionLog(Path(sys.argv[1]), segment_bytes=1 << 20)
i = 0
while True:
    log.append({"kind": "test", "n": i, "resources": [], "padding": "x" * 20000})
    i += 1
    if i == 5:
        print("writing", flush=True)
"""


def test_a_writer_killed_mid_stream_leaves_only_whole_chained_records(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    seen = list(read_records(tmp_path))
    assert len(seen) >= 5
    DecisionLog(tmp_path).append({"kind": "test", "n": -1, "resources": []})
    records = list(read_records(tmp_path))
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert all(after["prev"] == before["hash"] for before, after in itertools.pairwise(records))
    for segment in segments_of(tmp_path):
        assert segment.read_bytes().endswith(b"\n")


def test_compaction_is_idempotent_and_picks_up_only_new_whole_records(tmp_path: Path, engine: PolicyEngine) -> None:
    lake, log = Lake(str(tmp_path / "lake")), DecisionLog(tmp_path / "log", segment_bytes=4096)
    ctx = RequestContext("support_assistant", "customer_support", "local_smollm2")
    _log_decisions(log, engine, ctx, 12)
    first = compact(lake, log.directory, commit=COMMIT)
    assert (first.appended, first.first_seq, first.last_seq) == (12, 1, 12)
    again = compact(lake, log.directory, commit=COMMIT)
    assert again.appended == 0 and again.version == first.version, "nothing new, no new Delta version"
    _log_decisions(log, engine, ctx, 3)
    with segments_of(log.directory)[-1].open("ab") as fh:
        fh.write(b'{"seq":16,"torn')
    third = compact(lake, log.directory, commit=COMMIT)
    assert (third.appended, third.first_seq, third.last_seq) == (3, 13, 15)
    table = lake.read(LAYER, TABLE).sort("seq")
    assert table["seq"].to_list() == list(range(1, 16))
    assert table["decision_id"].n_unique() == 15
    assert chain_gaps(lake) == []
    row = table.filter(pl.col("seq") == 1).row(0, named=True)
    assert row["agent"] == "support_assistant" and row["locality"] == "local"
    assert row["revision"] == engine.revision
    served = {r["id"]: r for r in row["resources"]}
    assert served["plt_doc0"]["allow"] is True and served["plt_case0"]["allow"] is False
    assert "clearance_below_classification" in served["plt_case0"]["reasons"]
    assert served["plt_doc0"]["lineage"] == ["gld_a", "slv_a", "brz_a"]


_COMPACTOR = """
import sys
from pathlib import Path
from aquifer.audit import compact
from aquifer.lake import CommitInfo, Lake
lake = Lake(sys.argv[1])
print("compacting", flush=True)
while True:
    compact(lake, Path(sys.argv[2]), commit=CommitInfo("audit/decisions", "killed", "test"), batch=7)
"""


def test_compaction_killed_at_any_point_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "log")
    lake_dir = str(tmp_path / "lake")
    for round_ in range(3):
        for i in range(60):
            log.append({"kind": "test", "agent": "a", "n": i, "resources": []})
        proc = subprocess.Popen(
            [sys.executable, "-c", _COMPACTOR, lake_dir, str(log.directory)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.4 + 0.3 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    compact(Lake(lake_dir), log.directory, commit=COMMIT)
    seqs = Lake(lake_dir).read(LAYER, TABLE)["seq"].sort().to_list()
    assert seqs == list(range(1, 181))


def test_prove_answers_none_found_and_fails_on_a_gap(tmp_path: Path, engine: PolicyEngine) -> None:
    lake, log = Lake(str(tmp_path / "lake")), DecisionLog(tmp_path / "log", segment_bytes=3000)
    _log_decisions(log, engine, RequestContext("marketing_assistant", "marketing", "external_gpt"), 6)
    compact(lake, log.directory, commit=COMMIT)
    _log_decisions(
        log, engine, RequestContext("hr_case_assistant", "hr_casework", "local_smollm2", user=user("amira.haddad")), 4
    )
    # compacted and not-yet-compacted records are both scanned
    none = prove(lake, log.directory, classification="confidential", locality="external", since=SINCE)
    assert none.verdict == "none", none.as_dict()
    assert none.decisions_scanned == 10 and none.resources_scanned == 20
    assert none.resources_served == 6 + 4, "docs to marketing; case notes (not docs) to HR"
    assert [r["revision"] for r in none.revisions] == [engine.revision]
    assert (none.first_seq, none.last_seq) == (1, 10)
    found = prove(lake, log.directory, classification="confidential", locality="local", since=SINCE)
    assert found.verdict == "found" and len(found.violations) == 4
    assert {v["agent"] for v in found.violations} == {"hr_case_assistant"}
    empty = prove(
        lake,
        log.directory,
        classification="restricted",
        locality="external",
        since=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    assert empty.verdict == "none" and empty.decisions_scanned == 0
    # a record removed from the log (not yet compacted) is a gap, and the proof fails
    for segment in segments_of(log.directory):
        lines = segment.read_bytes().splitlines(keepends=True)
        segment.write_bytes(b"".join(line for line in lines if json.loads(line)["seq"] != 8))
    gap = prove(lake, log.directory, classification="confidential", locality="external", since=SINCE)
    assert gap.verdict == "unproven"
    assert any("missing" in g for g in gap.gaps)


def test_prove_answers_whether_a_user_received_a_chunk_of_a_document(tmp_path: Path, engine: PolicyEngine) -> None:
    lake, log = Lake(str(tmp_path / "lake")), DecisionLog(tmp_path / "log")
    north = ("group:hr-leads", "group:hr-partners-north")
    resources = [Resource("hr_case_notes", "confidential", acl=north), Resource("hr_handbook", "internal")]
    for name in ("amira.haddad", "ben.okafor"):
        ctx = RequestContext("hr_case_assistant", "hr_casework", "local_smollm2", user=user(name))
        batch = engine.decide(ctx, resources)
        log.append(
            decision_record(
                batch,
                kind="context",
                locality="local",
                resources=resources,
                ids=["plt_case", "plt_hb"],
                documents=["case-0007", "hb-0001"],
                admitted_by=[sorted(set(ctx.principals) & set(north)), []],
            )
        )
    compact(lake, log.directory, commit=COMMIT)
    amira, ben = "tidewater_dev_idp:amira.haddad", "tidewater_dev_idp:ben.okafor"
    got = prove(lake, log.directory, user=amira, document="hr_case_notes/case-0007", since=SINCE)
    assert got.verdict == "found" and [v["user"] for v in got.violations] == [amira]
    assert got.violations[0]["doc_id"] == "case-0007"
    assert "did any chunk of document hr_case_notes/case-0007 reach user " + amira in got.question
    # ben's request was decided too, but the case note's ACL (north) did not admit him: nothing was served
    assert prove(lake, log.directory, user=ben, document="hr_case_notes/case-0007", since=SINCE).verdict == "none"
    assert prove(lake, log.directory, user=ben, document="hr_handbook/hb-0001", since=SINCE).verdict == "found"
    records = load_decisions(lake, log.directory).collect()
    assert records["user"].to_list() == [amira, ben]
    case = records["resources"].to_list()[0][0]
    assert case["acl"] == list(north) and case["admitted_by"] == ["group:hr-partners-north"]
    with pytest.raises(ValueError, match="ask about"):
        prove(lake, log.directory, since=SINCE)


def test_prove_detects_an_edited_record_and_a_restarted_log(tmp_path: Path, engine: PolicyEngine) -> None:
    lake, log = Lake(str(tmp_path / "lake")), DecisionLog(tmp_path / "log")
    _log_decisions(log, engine, RequestContext("marketing_assistant", "marketing", "external_gpt"), 3)
    segment = segments_of(log.directory)[-1]
    lines = segment.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[1])
    edited["agent"] = "someone_else"
    lines[1] = (json.dumps(edited, separators=(",", ":"), sort_keys=True) + "\n").encode()
    segment.write_bytes(b"".join(lines))
    proof = prove(lake, log.directory, classification="confidential", locality="external", since=SINCE)
    assert proof.verdict == "unproven" and any("hash chain broken" in g for g in proof.gaps)
    # a wiped log that starts again is not a continuation
    compact(lake, log.directory, commit=COMMIT)
    for p in log.directory.glob("segment-*"):
        p.unlink()
    _log_decisions(
        DecisionLog(log.directory), engine, RequestContext("marketing_assistant", "marketing", "external_gpt"), 1
    )
    restarted = prove(lake, log.directory, classification="confidential", locality="external", since=SINCE)
    assert restarted.verdict == "unproven"
