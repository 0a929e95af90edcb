import dagster as dg

from aquifer.catalog import Catalog
from aquifer.embedding import get_embedder
from aquifer.index import TABLE, LanceDBStore, sync
from aquifer.medallion import columns
from aquifer.medallion.layers import Layer
from aquifer.tokenizer import EMBEDDING_MODEL
from pipelines.defs import lineage
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
    def index_chunks(context: dg.AssetExecutionContext, aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        settings, lake, catalog = aquifer.settings(), aquifer.lake(), aquifer.catalog()
        inputs, outputs = lineage.index_datasets(settings, lake, catalog)
        emitter = lineage.emitter(settings)
        with lineage.step(context, emitter, inputs, outputs) as step:
            read = lineage.versions(lake, inputs)
            index = LanceDBStore.from_settings(settings)
            embedder = get_embedder()
            result = sync(index, lake, catalog, embedder)
            indexes = index.ensure_indexes()
            outcome = in_sync(index, lake, catalog)
        if emitter.enabled:
            emitter.complete(
                step,
                lineage.Outcome(
                    versions_read=read,
                    versions_written={outputs[0].logical_name: result.version},
                    rows={outputs[0].logical_name: result.rows},
                    rows_written=result.added + result.removed,
                    assertions=[(IN_SYNC, outcome.passed)],
                    column_lineage={outputs[0].logical_name: columns.INDEX},
                ),
                failed_gates=[] if outcome.passed else [IN_SYNC],
            )
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
