"""What an index row holds: the chunk's vector, text and PII spans (for redaction), its policy class (the
:class:`~aquifer.policy.Resource` attributes and their ``class_key``), its document's access list (``acl``, the
principals, empty when ``acl_listed`` is false), and its provenance receipt precomputed from
the lineage (source uri and sha256; bronze, silver, gold and platinum ids with the Delta versions they were read at;
the Dagster run). Serving then reads nothing but the index. Store-independent: every store keeps these columns."""

from __future__ import annotations

import pyarrow as pa

from aquifer.embedding import DIMENSIONS
from aquifer.medallion.layers import Layer
from aquifer.policy.decision import Resource

TABLE = "chunks"
LAYER = Layer.PLATINUM

RECEIPT_COLUMNS = (
    "source_uri",
    "source_sha256",
    "bronze_id",
    "bronze_version",
    "silver_id",
    "silver_version",
    "gold_id",
    "gold_version",
    "platinum_id",
    "platinum_version",
    "run_id",
)

PLATINUM_COLUMNS = [
    "platinum_id",
    "chunk_id",
    "doc_id",
    "dataset",
    "title",
    "text",
    "token_count",
    "classification",
    "pii_types",
    "pii_spans",
    "acl",
    "updated_at",
    "fresh_until",
]
"""What the index reads of each platinum row."""

_ARROW = {"text": pa.string(), "list": pa.list_(pa.string()), "flag": pa.bool_()}


def class_fields(resource: type[Resource] = Resource) -> list[pa.Field]:
    """The columns of a resource class (one per attribute of ``resource``), then its ``class_key``."""
    kinds = resource.kinds()
    return [pa.field(name, _ARROW[kinds[name]]) for name in resource.columns()] + [pa.field("class_key", pa.string())]


SCHEMA = pa.schema(
    [
        ("platinum_id", pa.string()),
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        *class_fields(),
        ("acl", pa.list_(pa.string())),
        ("acl_listed", pa.bool_()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("token_count", pa.int64()),
        ("pii_spans", pa.list_(pa.struct([("type", pa.string()), ("start", pa.int64()), ("end", pa.int64())]))),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("fresh_until", pa.timestamp("us", tz="UTC")),
        ("text_hash", pa.string()),
        ("source_uri", pa.string()),
        ("source_sha256", pa.string()),
        ("bronze_id", pa.string()),
        ("bronze_version", pa.int64()),
        ("silver_id", pa.string()),
        ("silver_version", pa.int64()),
        ("gold_id", pa.string()),
        ("gold_version", pa.int64()),
        ("platinum_version", pa.int64()),
        ("run_id", pa.string()),
        ("embedding_model", pa.string()),
        ("vector", pa.list_(pa.float32(), DIMENSIONS)),
    ]
)
