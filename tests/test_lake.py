from __future__ import annotations

import json

import polars as pl
import pytest

from aquifer.lake import CommitInfo, Lake

COMMIT = CommitInfo(asset_key="silver/x", run_id="r1", code_version="v1", upstream_versions={"bronze/x": 3})


def test_append_creates_table_and_records_commit_metadata(lake: Lake) -> None:
    assert lake.version("silver", "x") is None
    version = lake.append("silver", "x", pl.DataFrame({"id": ["a"], "v": [1]}), commit=COMMIT)
    assert version == 0
    entry = lake.last_commit("silver", "x")
    assert entry is not None
    assert entry["aquifer.asset_key"] == "silver/x"
    assert entry["aquifer.run_id"] == "r1"
    assert json.loads(entry["aquifer.upstream_versions"]) == {"bronze/x": 3}


def test_empty_writes_create_once_then_write_nothing(lake: Lake) -> None:
    empty = pl.DataFrame(schema={"id": pl.String, "v": pl.Int64})
    assert lake.append("silver", "x", empty, commit=COMMIT) == 0
    assert lake.append("silver", "x", empty, commit=COMMIT) == 0
    assert lake.upsert("silver", "x", empty, key="id", commit=COMMIT) == 0
    assert lake.read("silver", "x").schema == empty.schema


def test_upsert_inserts_updates_and_deletes_in_one_commit(lake: Lake) -> None:
    lake.append("gold", "x", pl.DataFrame({"id": ["a", "b", "c"], "v": [1, 2, 3]}), commit=COMMIT)
    version = lake.upsert(
        "gold",
        "x",
        pl.DataFrame({"id": ["b", "d"], "v": [20, 4]}),
        key="id",
        delete_keys=["c"],
        commit=COMMIT,
    )
    assert version == 1
    assert lake.read("gold", "x").sort("id").rows() == [("a", 1), ("b", 20), ("d", 4)]
    # time travel: the previous version is still readable
    assert lake.read("gold", "x", version=0).sort("id")["v"].to_list() == [1, 2, 3]


def test_missing_table_without_schema_is_a_clear_error(lake: Lake) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lake.read("gold", "nope")
    assert lake.read("gold", "nope", schema={"id": pl.String}).is_empty()


def test_uri_is_layer_then_dataset() -> None:
    assert Lake("s3://bucket/lake/").uri("platinum", "hr") == "s3://bucket/lake/platinum/hr"


def test_inserts_alone_are_an_append(lake: Lake) -> None:
    lake.append("gold", "x", pl.DataFrame({"id": ["a"], "v": [1]}), commit=COMMIT)
    assert lake.upsert("gold", "x", pl.DataFrame({"id": ["b"], "v": [2]}), key="id", commit=COMMIT) == 1
    assert lake.history("gold", "x", limit=1)[0]["operation"] == "WRITE"
    assert lake.read("gold", "x").sort("id").rows() == [("a", 1), ("b", 2)]
