import dagster as dg

from aquifer.audit.compact import LAYER, TABLE, compact, table_max_seq
from aquifer.export.decisions import export_metadata
from aquifer.lake import CommitInfo
from pipelines.defs import lineage
from pipelines.defs.audit.checks import CHAIN_DESCRIPTION, CHAIN_INTACT, chain_intact
from pipelines.defs.resources import AquiferResource
from pipelines.defs.shared import check_result

CODE_VERSION = "audit-decisions-1"
KEY = dg.AssetKey([LAYER, TABLE])


@dg.asset(
    key=KEY,
    group_name=LAYER,
    description="Every policy decision batch, compacted from the write-ahead decision log (seq, agent, purpose, "
    "model and locality, policy revision, per-resource allow/deny, reasons, obligations, lineage ids). "
    "Idempotent: the table's highest seq is the watermark.",
    owners=["team:Security"],
    kinds={"polars", "delta"},
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec(CHAIN_INTACT, asset=KEY, description=CHAIN_DESCRIPTION, blocking=True)],
)
def audit_decisions(context: dg.AssetExecutionContext, aquifer: AquiferResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    lake, settings = aquifer.lake(), aquifer.settings()
    inputs, outputs = lineage.audit_datasets(settings, lake)
    emitter = lineage.emitter(settings)
    with lineage.step(context, emitter, inputs, outputs) as step:
        before = table_max_seq(lake)
        result = compact(
            lake,
            settings.decisions_dir,
            commit=CommitInfo("/".join(KEY.path), context.run.run_id, CODE_VERSION),
        )
        outcome = chain_intact(lake, from_seq=max(1, before))
    if emitter.enabled:
        emitter.complete(
            step,
            lineage.Outcome(
                versions_written=lineage.versions(lake, outputs),
                rows={outputs[0].logical_name: table_max_seq(lake)},
                rows_written=result.appended,
                assertions=[(CHAIN_INTACT, outcome.passed)],
                column_lineage={outputs[0].logical_name: lineage.audit_columns()},
            ),
            failed_gates=[] if outcome.passed else [CHAIN_INTACT],
        )
    return dg.MaterializeResult(
        metadata={
            "appended": result.appended,
            "first_seq": result.first_seq,
            "last_seq": result.last_seq,
            "table_max_seq": table_max_seq(lake),
            "delta_version": result.version,
            **export_metadata(aquifer.settings()),  # export_lag_records, export_cursor_seq: when the log is shipped
        },
        check_results=[check_result(CHAIN_INTACT, outcome)],
    )


compaction_schedule = dg.ScheduleDefinition(
    name="compact_decision_log",
    target=dg.AssetSelection.assets(KEY),
    cron_schedule="*/15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Fold new decision-log records into audit/decisions every 15 minutes.",
)


def build() -> list[dg.AssetsDefinition]:
    return [audit_decisions]
