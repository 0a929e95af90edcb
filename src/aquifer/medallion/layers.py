"""The layer vocabulary, defined once: each layer's name, the prefix of its ids, its key column, the layer it is
promoted from, and the lineage columns every row above bronze carries.

Ids carry their layer (``brz_``, ``slv_``, ``gld_``, ``plt_`` and 32 hex digits), so ``aquifer lineage <id>`` needs
no layer argument. A :class:`Layer` is a ``str`` (``Layer.GOLD == "gold"``): the lake's paths and Dagster's asset
keys use the name.

>>> Layer.of_id("gld_00ce99863a747f99b476e694227287ca"), Layer.GOLD.key, Layer.GOLD.upstream
(<Layer.GOLD: 'gold'>, 'chunk_id', <Layer.SILVER: 'silver'>)
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

import polars as pl


class Layer(StrEnum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"

    @property
    def prefix(self) -> str:
        """What this layer's ids start with."""
        return _PREFIX[self]

    @property
    def key(self) -> str:
        """The column that identifies a row of this layer."""
        return _KEY[self]

    @property
    def upstream(self) -> Layer | None:
        """The layer this one is promoted from (None for bronze, which reads the landing zone)."""
        order = list(Layer)
        index = order.index(self)
        return order[index - 1] if index else None

    def stable_id(self, *parts: str | int) -> str:
        """A content-derived id of this layer: the same inputs give the same id in every run and on every machine."""
        return self.prefix + hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]

    @classmethod
    def of_id(cls, record_id: str) -> Layer | None:
        """The layer an id belongs to, by its prefix."""
        return next((layer for layer in cls if record_id.startswith(layer.prefix)), None)


_PREFIX = {Layer.BRONZE: "brz_", Layer.SILVER: "slv_", Layer.GOLD: "gld_", Layer.PLATINUM: "plt_"}
_KEY = {Layer.BRONZE: "record_id", Layer.SILVER: "silver_id", Layer.GOLD: "chunk_id", Layer.PLATINUM: "platinum_id"}

QUARANTINE = "quarantine"
"""Not a layer of trust: where silver keeps each record it rejects, with its reason."""

LINEAGE_SCHEMA: dict[str, pl.DataType] = {
    "upstream_ids": pl.List(pl.String),
    "upstream_table": pl.String(),
    "upstream_version": pl.Int64(),
    "run_id": pl.String(),
    "code_version": pl.String(),
}
"""The lineage columns every silver, gold and platinum row carries."""
