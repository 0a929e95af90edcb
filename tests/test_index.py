"""The seams of the index: a second vector store is one class (here an in-memory numpy store, searched exactly),
and a new resource attribute is one field of Resource plus the Rego that reads it."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from aquifer.index import LanceDBStore, StoreBase, VectorStore
from aquifer.index.schema import SCHEMA, class_fields
from aquifer.policy import EmbeddedBackend, PolicyEngine, RequestContext, Resource
from aquifer.settings import PROJECT_ROOT
from tests.demo_users import for_agent


class MemoryStore(StoreBase):
    """A whole vector store in a polars frame: exact cosine search, one version per apply."""

    def __init__(self, uri: str = "memory://") -> None:
        self.uri = uri
        self._versions: list[pl.DataFrame] = []
        self._times: list[dt.datetime] = []

    def exists(self) -> bool:
        return bool(self._versions)

    def version(self) -> int | None:
        return len(self._versions) or None

    def versions(self) -> list[dict[str, Any]]:
        return [{"version": i + 1, "timestamp": t} for i, t in enumerate(self._times)]

    def _frame(self, version: int | None) -> pl.DataFrame:
        return self._versions[(version or len(self._versions)) - 1]

    def columns(self, names: Sequence[str], *, version: int | None = None) -> pl.DataFrame:
        return self._frame(version).select(list(names))

    def search(
        self,
        vector: np.ndarray,
        *,
        classes: Sequence[str],
        principals: Sequence[str] = (),
        exclude_ids: Sequence[str] = (),
        k: int,
        version: int | None = None,
    ) -> list[dict[str, Any]]:
        admitted = ~pl.col("acl_listed") | pl.col("acl").list.eval(pl.element().is_in(list(principals))).list.any()
        frame = self._frame(version).filter(
            pl.col("class_key").is_in(list(classes)) & admitted & ~pl.col("platinum_id").is_in(list(exclude_ids))
        )
        if frame.is_empty():
            return []
        matrix = np.asarray(frame["vector"].to_list(), dtype=np.float32)
        scores = matrix @ vector / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(vector))
        order = np.argsort(-scores, kind="stable")[:k]
        rows = frame[order.tolist()].to_dicts()
        for row, score in zip(rows, scores[order], strict=True):
            row["score"] = float(score)
        return rows

    def row(self, chunk_id: str) -> dict[str, Any] | None:
        column = "platinum_id" if chunk_id.startswith("plt_") else "chunk_id"
        found = self._frame(None).filter(pl.col(column) == chunk_id)
        return found.row(0, named=True) if found.height else None

    def schema_matches(self) -> bool:
        return True

    def apply(self, add: pa.Table, remove: Sequence[str], *, replace_all: bool = False) -> tuple[int, int]:
        base = self._frame(None) if self._versions and not replace_all else pl.from_arrow(SCHEMA.empty_table())
        assert isinstance(base, pl.DataFrame)
        added = pl.from_arrow(add)
        assert isinstance(added, pl.DataFrame)
        frame = pl.concat([base.filter(~pl.col("platinum_id").is_in(list(remove))), added], how="vertical_relaxed")
        self._versions.append(frame)
        self._times.append(dt.datetime.now(dt.UTC))
        return len(self._versions), frame.height

    def ensure_indexes(self) -> dict[str, Any]:
        return {"vector_index": "none (exact search)", "rows": self._frame(None).height}


@pytest.mark.slow
def test_a_second_store_in_one_class_serves_the_same_answers(tmp_path: Path, materialized_sample: Path) -> None:
    from aquifer.service.metrics import Timings
    from aquifer.service.retrieval import Retriever
    from aquifer.service.schemas import ContextRequest
    from aquifer.settings import Settings
    from tests.conftest import copy_materialized

    data = copy_materialized(materialized_sample, tmp_path)
    settings = Settings(
        data_dir=data,
        policy_dir=tmp_path / "policies",
        catalog_dir=tmp_path / "catalog",
        credentials_file=tmp_path / "catalog" / "credentials.yaml",
    )
    lance = LanceDBStore.from_settings(settings)
    memory = MemoryStore()
    memory.apply(lance.table().to_arrow(), [])
    assert isinstance(memory, VectorStore) and isinstance(lance, VectorStore)
    assert memory.classes() == lance.classes()
    engine = PolicyEngine(EmbeddedBackend(), settings.policy_dir, settings.catalog_dir)
    on_lance = Retriever(settings, engine=engine, index=lance)
    on_memory = Retriever(settings, engine=engine, index=memory, embedder=on_lance.embedder, log=on_lance.log)
    for agent, purpose, question in (
        ("support_assistant", "customer_support", "refund for a duplicate charge"),
        ("hr_case_assistant", "hr_casework", "complaint about a manager"),
        ("finance_analyst", "financial_analysis", "quarterly revenue"),
    ):
        request = ContextRequest(query=question, purpose=purpose, model="local_smollm2", top_k=5)
        a = on_lance.context(agent, request, Timings(), user=for_agent(agent))
        b = on_memory.context(agent, request, Timings(), user=for_agent(agent))
        assert [c.chunk_id for c in a.chunks] == [c.chunk_id for c in b.chunks], agent
        assert [c.text for c in a.chunks] == [c.text for c in b.chunks], "the same redactions"
        assert a.withheld == b.withheld
        assert b.chunks and all(c.receipt.index_version == 1 for c in b.chunks)


@dataclass(frozen=True, slots=True)
class RegionalResource(Resource):
    """A toy attribute: the region a chunk's data is stored in."""

    region: str = "eu"


def test_a_new_resource_attribute_is_one_field_and_the_rego_that_reads_it(tmp_path: Path) -> None:
    home = RegionalResource("product_docs", "public")
    abroad = RegionalResource("product_docs", "public", region="us")
    assert home.as_input()["region"] == "eu" and home.key != abroad.key
    frame = _frame(RegionalResource, [home, abroad])
    assert frame.select(RegionalResource.key_expr()).to_series().to_list() == [home.key, abroad.key]
    assert RegionalResource.from_row({**abroad.as_input()}) == abroad
    assert "region" in [f.name for f in class_fields(RegionalResource)], "the index stores it as a column"
    policies = tmp_path / "policies"
    shutil.copytree(PROJECT_ROOT / "policies", policies)
    (policies / "aquifer/context/region.rego").write_text(
        "# Data stored outside the EU stays there.\npackage aquifer.context\n\nimport rego.v1\n\n"
        '_in_eu if input.resource.region == "eu"\n\n'
        'resource_deny contains "region_outside_eu" if not _in_eu\n'
    )
    engine = PolicyEngine(EmbeddedBackend(), policies, PROJECT_ROOT / "catalog")
    batch = engine.decide(RequestContext("support_assistant", "customer_support", "local_smollm2"), [home, abroad])
    assert [d.reasons for d in batch.resources] == [[], ["region_outside_eu"]]


def _frame(cls: type[Resource], resources: list[Resource]) -> pl.DataFrame:
    """The resources as the index stores them (its column types come from the class)."""
    table = pa.Table.from_pylist([r.as_input() for r in resources], schema=pa.schema(class_fields(cls)[:-1]))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.mark.parametrize("pii", [(), ("email",), ("phone", "email", "email")])
@pytest.mark.parametrize("untrusted", [False, True])
def test_the_class_key_is_one_definition_in_python_and_polars(pii: tuple[str, ...], untrusted: bool) -> None:
    resource = Resource("support_tickets", "internal", layer="gold", pii_types=pii, untrusted=untrusted)
    frame = _frame(Resource, [resource])
    assert frame.select(Resource.key_expr()).item() == resource.key
    assert Resource.from_row(resource.as_input()) == resource


@pytest.mark.slow
def test_the_acl_prefilter_admits_exactly_the_principals_documents_and_is_indexed(
    tmp_path: Path, materialized_sample: Path
) -> None:
    """The store's ACL term: documents without an ACL, or whose ACL names one of the principals - the same set
    with and without its scalar indexes (LabelList on acl, Bitmap on acl_listed), which ensure_indexes adds."""
    shutil.copytree(materialized_sample / "index", tmp_path / "index")
    store = LanceDBStore(str(tmp_path / "index"), ann_min_rows=0)
    classes = [r.key for r in store.classes()]
    frame = store.columns(["chunk_id", "acl", "acl_listed"])
    vector = np.asarray(store.table().search().limit(1).to_list()[0]["vector"], dtype=np.float32)
    north = ["group:hr-partners-north", "user:amira.haddad"]
    k = frame.height
    expected = {r["chunk_id"] for r in frame.iter_rows(named=True) if not r["acl_listed"] or set(r["acl"]) & set(north)}
    assert 0 < len(expected) < frame.height, "the sample holds documents with and without ACLs"
    before = {r["chunk_id"] for r in store.search(vector, classes=classes, principals=north, k=k)}
    alone = {r["chunk_id"] for r in store.search(vector, classes=classes, k=k)}
    assert before == expected
    assert alone == {r["chunk_id"] for r in frame.iter_rows(named=True) if not r["acl_listed"]}
    built = store.ensure_indexes()
    indexed = {c: i.index_type for i in store.table().list_indices() for c in i.columns}
    assert indexed["acl"] == "LabelList" and indexed["acl_listed"] == "Bitmap", (built, indexed)
    after = {
        r["chunk_id"]
        for r in store.table()
        .search(vector)
        .distance_type("cosine")
        .where(
            "(NOT acl_listed OR array_has_any(acl, make_array('group:hr-partners-north', 'user:amira.haddad')))",
            prefilter=True,
        )
        .bypass_vector_index()
        .limit(k)
        .to_list()
    }
    assert after == expected, "the indexed predicate selects the same rows"


@pytest.mark.slow
def test_an_index_of_an_older_schema_is_rebuilt_by_the_next_sync(tmp_path: Path, materialized_sample: Path) -> None:
    import lancedb

    from aquifer.catalog import load_catalog
    from aquifer.embedding import Embedder
    from aquifer.index.sync import sync
    from aquifer.lake import Lake

    shutil.copytree(materialized_sample / "index", tmp_path / "index")
    db = lancedb.connect(str(tmp_path / "index"))
    old = db.open_table("chunks").to_arrow().drop_columns(["acl", "acl_listed"])
    db.create_table("chunks", data=old, mode="overwrite")  # as an index written before ACLs
    store = LanceDBStore(str(tmp_path / "index"))
    assert not store.schema_matches()
    result = sync(store, Lake(str(materialized_sample / "lake")), load_catalog(PROJECT_ROOT / "catalog"), Embedder())
    assert store.schema_matches() and result.rows == old.num_rows and result.added == old.num_rows
    assert store.columns(["acl_listed"])["acl_listed"].sum() > 0
