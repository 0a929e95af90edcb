"""The seam between serving and the vector store: what the service and the pipelines ask of any index.

A store holds the rows of :mod:`aquifer.index.schema`, versioned (every change is a new version, and an answer can be
replayed at an earlier one). It answers a k-nearest search restricted to some resource classes (the policy's
prefilter, by ``class_key``) and to documents whose ACL admits some principals (or that carry none), excluding some
ids, and it applies a sync (rows to add, ids to remove). How it
filters is its own business: no filter string leaves a store module. :class:`StoreBase` derives what it can from
:meth:`VectorStore.columns`, so a second store is one file (tests/test_index.py adds a toy one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl
import pyarrow as pa

from aquifer.policy.decision import ACL_AT_PREFILTER, Resource


@dataclass(frozen=True)
class SyncResult:
    added: int
    removed: int
    unchanged: int
    version: int
    rows: int


@runtime_checkable
class VectorStore(Protocol):
    uri: str

    def exists(self) -> bool: ...

    def version(self) -> int | None:
        """The current version, or None before the first sync."""
        ...

    def versions(self) -> list[dict[str, Any]]:
        """Every version: ``{"version": int, "timestamp": datetime}``."""
        ...

    def columns(self, names: Sequence[str], *, version: int | None = None) -> pl.DataFrame:
        """Some columns of every row (never the vectors unless asked)."""
        ...

    def classes(self, *, version: int | None = None) -> list[Resource]:
        """Every resource class present (the finite set the prefilter is decided over), each with its document ACL
        deferred to the search (:meth:`Resource.at_prefilter`)."""
        ...

    def schema_matches(self) -> bool:
        """Whether the stored rows have this code's :data:`~aquifer.index.schema.SCHEMA` (else a sync rebuilds)."""
        ...

    def stale_ids(self, moment: dt.datetime, *, version: int | None = None) -> list[str]:
        """Platinum ids whose ``fresh_until`` is before ``moment``."""
        ...

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
        """The ``k`` nearest rows whose ``class_key`` is one of ``classes``, whose document lists no ACL or lists
        one of ``principals`` (none: only documents without an ACL), and whose platinum id is not excluded (a
        prefilter: never fewer than k because of it), with their vectors and ``score`` (cosine similarity)."""
        ...

    def row(self, chunk_id: str) -> dict[str, Any] | None:
        """The current row of a chunk id (``gld_...``) or platinum id (``plt_...``)."""
        ...

    def apply(self, add: pa.Table, remove: Sequence[str], *, replace_all: bool = False) -> tuple[int, int]:
        """Add rows and remove platinum ids, as one new version: returns (version, rows). ``replace_all``: the
        rows become exactly ``add`` (a rebuild, also of the schema)."""
        ...

    def ensure_indexes(self) -> dict[str, Any]:
        """Whatever search structures the store builds once it is large enough; what it did."""
        ...


class StoreBase:
    """What any store can derive from ``columns``; a store may override either with something faster."""

    def exists(self) -> bool:
        raise NotImplementedError

    def columns(self, names: Sequence[str], *, version: int | None = None) -> pl.DataFrame:
        raise NotImplementedError

    def version(self) -> int | None:
        raise NotImplementedError

    def classes(self, *, version: int | None = None) -> list[Resource]:
        if not self.exists():
            return []
        # Read once per version (every new user's first request asks, and a version never changes): 45-67 ms of
        # column reads at 100,000 chunks otherwise (docs/benchmarks.md).
        version = self.version() if version is None else version
        cache: dict[int | None, list[Resource]] = self.__dict__.setdefault("_classes_by_version", {})
        found = cache.get(version)
        if found is None:
            frame = self.columns(Resource.columns(), version=version)
            classes = {Resource.from_row(r, acl=ACL_AT_PREFILTER) for r in frame.unique().iter_rows(named=True)}
            found = sorted(classes, key=lambda r: r.key)
            if len(cache) >= 8:
                cache.clear()
            cache[version] = found
        return list(found)

    def stale_ids(self, moment: dt.datetime, *, version: int | None = None) -> list[str]:
        frame = self.columns(["platinum_id", "fresh_until"], version=version).sort("fresh_until")
        cut = frame["fresh_until"].search_sorted(moment, side="left")
        return frame["platinum_id"].head(int(cut)).to_list()
