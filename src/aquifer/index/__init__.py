"""The vector index of platinum: one row per certified chunk, with everything serving needs.

- :mod:`~aquifer.index.base`: the :class:`VectorStore` protocol the service and the pipelines use;
- :mod:`~aquifer.index.schema`: what a row holds (vector, text, PII spans, resource class, receipt);
- :mod:`~aquifer.index.sync`: making a store hold exactly the current platinum chunks;
- :mod:`~aquifer.index.lancedb`: the LanceDB store, the only module that writes a filter string.
"""

from aquifer.index.base import StoreBase, SyncResult, VectorStore
from aquifer.index.lancedb import LanceDBStore
from aquifer.index.schema import RECEIPT_COLUMNS, SCHEMA, TABLE
from aquifer.index.sync import sync

__all__ = ["RECEIPT_COLUMNS", "SCHEMA", "TABLE", "LanceDBStore", "StoreBase", "SyncResult", "VectorStore", "sync"]
