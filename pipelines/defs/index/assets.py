import dagster as dg

from aquifer.catalog import Catalog
from aquifer.embedding import get_embedder
from aquifer.index import TABLE, LanceDBStore, sync
from aquifer.medallion.layers import Layer
from aquifer.tokenizer import EMBEDDING_MODEL
from pipelines.defs.index.checks import IN_SYNC, IN_SYNC_DESCRIPTION, in_sync
from pipelines.defs.resources import AquiferResource
from pipelines.defs.shared import check_result

CODE_VERSION = "index-1"
KEY = dg.AssetKey(["index", TABLE])


def build(catalog: Catalog) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=KEY,
        group_name="index",
        deps=[dg.AssetKey([str(Layer.PLATINUM), s.id]) for s in catalog],
        description="LanceDB vector index of every certified platinum chunk (all-MiniLM-L6-v2), with its policy "
        "class and precomputed provenance receipt. Only new or changed chunks are embedded; chunks that left "
        "platinum leave the index in the same run.",
        owners=["team:Platform"],
        kinds={"lancedb", "polars"},
        code_version=CODE_VERSION,
        metadata={"embedding_model": EMBEDDING_MODEL},
        check_specs=[dg.AssetCheckSpec(IN_SYNC, asset=KEY, description=IN_SYNC_DESCRIPTION, blocking=True)],
    )
    def index_chunks(aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        settings, lake, catalog = aquifer.settings(), aquifer.lake(), aquifer.catalog()
        index = LanceDBStore.from_settings(settings)
        embedder = get_embedder()
        result = sync(index, lake, catalog, embedder)
        indexes = index.ensure_indexes()
        outcome = in_sync(index, lake, catalog)
        return dg.MaterializeResult(
            metadata={
                "index_version": result.version,
                "rows": result.rows,
                "added": result.added,
                "removed": result.removed,
                "unchanged": result.unchanged,
                "embedding_model": EMBEDDING_MODEL,
                "embedding_device": embedder.device,
                "uri": settings.index_location,
                "vector_index": indexes["vector_index"],
            },
            check_results=[check_result(IN_SYNC, outcome)],
        )

    return [index_chunks]
