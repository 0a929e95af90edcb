"""OpenLineage run events from every asset materialization, emitted by Aquifer's own asset builder.

Why not the Dagster integration: ``dagster-openlineage`` installs beside dagster 1.13, but its event-log wrapper
names no upstream tables as inputs and turns no schema into a facet (shared/STACK-2.md section 4); the builder knows
both, and the column lineage of every layer (:mod:`aquifer.medallion.columns`), so it emits them itself.

Each materialization of an asset is one OpenLineage run of the job named by its asset key (``gold/hr_case_notes``)
in the namespace of ``openlineage_namespace``:

- ``START`` before the asset reads anything, with its inputs and outputs (the Delta tables, named by the namespace of
  their storage: ``file`` and the path, ``s3://bucket`` and the key, ...), their schema, data source and tags;
- ``COMPLETE`` after the write and the gates, adding the column lineage, the Delta version read and written, the
  output row count, the blocking gates as ``dataQualityAssertions`` and the ``aquifer_delta`` run facet (Delta
  versions, rows written, quarantine counts); ``FAIL`` instead when the step raised or a blocking gate failed
  (with the ``errorMessage`` facet);
- ``ABORT`` for a run whose process was killed: each started step leaves a marker file, removed when it ends; the
  next step to start emits ``ABORT`` for every marker whose process is gone.

The run id is a UUID derived from the Dagster run id and the asset key (stable per run and step), and the Dagster run
is the ``parent``. Configuration is the client's own (``openlineage.yml``, ``OPENLINEAGE_CONFIG``, ``OPENLINEAGE_URL``
or ``OPENLINEAGE__TRANSPORT__*``); with none, nothing is emitted. An event that cannot be delivered is logged and
counted, never raised: lineage never fails a pipeline run, and after a failed delivery the events of the next
``openlineage_retry_after_s`` are dropped (counted, logged once) instead of each waiting out the client's retries.
For lineage that must survive an outage, configure a durable transport (file, Kafka) the standard way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    datasource_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    symlinks_dataset,
    tags_dataset,
)
from openlineage.client.facet_v2 import (
    dataset_version_dataset as version_dataset,
)
from openlineage.client.generated.base import RunFacet, set_producer

from aquifer.medallion.columns import Derivation

log = logging.getLogger(__name__)

FACET_SCHEMAS = Path(__file__).resolve().parent / "facets"
"""The JSON schemas of Aquifer's custom facets (the API serves them at ``/openlineage/facets/<name>.json``)."""

_BREAKERS: dict[str, dict[str, float]] = {}
"""Per process and endpoint: until when it is taken as down after a failed delivery, and the events dropped since."""


def _endpoint(client: OpenLineageClient) -> str:
    transport = client.transport
    return f"{getattr(transport, 'kind', '')}:{getattr(transport, 'url', '')}"


_RUN_NAMESPACE = uuid.UUID("5f0a9c52-0a8e-4d4f-9a43-6d7d43b1b7a1")


def _aquifer_version() -> str:
    try:
        return package_version("aquifer")
    except Exception:  # a source checkout that was never installed
        return "0"


PRODUCER = f"https://github.com/aquifer-governance/aquifer/tree/v{_aquifer_version()}"
"""Who produced the events (a URI, as the spec asks; nothing is fetched from it)."""


def facet_schema_url(name: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/openlineage/facets/{name}.json"


@attr.define
class AquiferDeltaRunFacet(RunFacet):
    """What one materialization read and wrote in the lake: each table and its Delta version, the rows written, and
    (for silver) the records quarantined, in all and by reason code."""

    read: list[dict[str, Any]] = attr.field(factory=list)
    written: list[dict[str, Any]] = attr.field(factory=list)
    rowsWritten: int = 0
    quarantined: dict[str, Any] | None = None


# ----------------------------------------------------------------------------------------------- datasets


def dataset_name(location: str) -> tuple[str, str]:
    """The OpenLineage namespace and name of a storage location (the client's naming conventions).

    >>> dataset_name("s3://lake/gold/docs"), dataset_name("/data/lake/gold/docs")
    (('s3://lake', 'gold/docs'), ('file', '/data/lake/gold/docs'))
    """
    for scheme in ("s3", "s3a", "gs", "abfss", "az", "hdfs"):
        prefix = f"{scheme}://"
        if location.startswith(prefix):
            authority, _, path = location[len(prefix) :].partition("/")
            return f"{'s3' if scheme == 's3a' else scheme}://{authority}", path or "/"
    if "://" in location:
        scheme, _, rest = location.partition("://")
        authority, _, path = rest.partition("/")
        return f"{scheme}://{authority}", "/" + path
    return "file", str(Path(location).resolve())


@dataclass(frozen=True)
class Dataset:
    """A table (or folder) an asset reads or writes, as OpenLineage names it, with what Aquifer knows of it."""

    location: str
    logical_name: str  # layer/dataset: the catalog's and Dagster's name for it
    kind: str = "TABLE"
    schema: Mapping[str, str] = field(default_factory=dict)  # column -> type
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def namespace(self) -> str:
        return dataset_name(self.location)[0]

    @property
    def name(self) -> str:
        return dataset_name(self.location)[1]

    def facets(self, logical_namespace: str) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "dataSource": datasource_dataset.DatasourceDatasetFacet(
                name=self.namespace, uri=self.location if "://" in self.location else f"file://{self.name}"
            ),
            "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[
                    symlinks_dataset.Identifier(namespace=logical_namespace, name=self.logical_name, type=self.kind)
                ]
            ),
        }
        if self.schema:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in self.schema.items()]
            )
        if self.tags:
            facets["tags"] = tags_dataset.TagsDatasetFacet(
                tags=[
                    tags_dataset.TagsDatasetFacetFields(key=k, value=v, source="CATALOG") for k, v in self.tags.items()
                ]
            )
        return facets


def column_lineage(
    derivations: Mapping[str, Derivation], inputs: Sequence[Dataset]
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """The ``columnLineage`` facet of an output derived column by column from ``inputs`` (each of the same shape:
    the index reads one platinum table per source)."""
    fields: dict[str, column_lineage_dataset.Fields] = {}
    filters = sorted({name for d in derivations.values() for name in d.filters})
    for column, d in derivations.items():
        if not d.inputs:
            continue
        direct = column_lineage_dataset.Transformation(
            type="DIRECT", subtype=d.subtype, description=d.description, masking=d.masking
        )
        refs = [
            column_lineage_dataset.InputField(
                namespace=ds.namespace, name=ds.name, field=name, transformations=[direct]
            )
            for ds in inputs
            for name in d.inputs
        ]
        fields[column] = column_lineage_dataset.Fields(inputFields=refs)
    # columns that decide which rows are kept affect every output column: dataset-level indirect lineage
    indirect = column_lineage_dataset.Transformation(
        type="INDIRECT", subtype="FILTER", description="decides which rows are kept", masking=False
    )
    dataset = [
        column_lineage_dataset.InputField(namespace=ds.namespace, name=ds.name, field=name, transformations=[indirect])
        for ds in inputs
        for name in filters
    ]
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, dataset=dataset)


# ----------------------------------------------------------------------------------------------- steps


@dataclass
class Step:
    """One asset materialization as an OpenLineage run."""

    job: str
    dagster_run_id: str
    dagster_job: str
    inputs: list[Dataset]
    outputs: list[Dataset]
    description: str = ""
    owners: Sequence[str] = ()
    run_id: str = ""

    def __post_init__(self) -> None:
        self.run_id = self.run_id or str(uuid.uuid5(_RUN_NAMESPACE, f"{self.dagster_run_id}/{self.job}"))


@dataclass
class Outcome:
    """What a step did, for its ``COMPLETE`` (or ``FAIL``) event."""

    versions_read: Mapping[str, int | None] = field(default_factory=dict)  # logical name -> Delta version
    versions_written: Mapping[str, int | None] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)  # logical name -> rows in the table now
    rows_written: int = 0
    assertions: Sequence[tuple[str, bool]] = ()  # (gate, passed) on the first output
    column_lineage: Mapping[str, Mapping[str, Derivation]] = field(default_factory=dict)  # output -> columns
    quarantined: Mapping[str, Any] | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LineageEmitter:
    """Emits a step's events through an OpenLineage client (``None``: lineage is off and every call is a no-op).

    ``state_dir`` holds a marker per step in flight, so a step killed with its process is reported ``ABORT``."""

    def __init__(
        self,
        client: OpenLineageClient | None,
        *,
        namespace: str,
        state_dir: Path,
        schema_base_url: str,
        retry_after_s: float = 60.0,
    ) -> None:
        self.client = client
        self.retry_after_s = retry_after_s
        self.namespace = namespace
        self.state_dir = state_dir
        self.schema_base_url = schema_base_url
        self.failures = 0
        set_producer(PRODUCER)  # the facets' _producer: Aquifer, not the client library

    @property
    def enabled(self) -> bool:
        return self.client is not None

    # -- events

    def _job(self, step: Step) -> Job:
        facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DAGSTER", jobType="ASSET")
        }
        if step.description:
            facets["documentation"] = documentation_job.DocumentationJobFacet(description=step.description)
        if step.owners:
            facets["ownership"] = ownership_job.OwnershipJobFacet(
                owners=[
                    ownership_job.Owner(name=o, type="team" if o.startswith("team:") else "user") for o in step.owners
                ]
            )
        return Job(namespace=self.namespace, name=step.job, facets=facets)

    def _run(self, step: Step, extra: Mapping[str, RunFacet] | None = None) -> Run:
        facets: dict[str, Any] = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=step.dagster_run_id),
                job=parent_run.Job(namespace=self.namespace, name=step.dagster_job),
            ),
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=_safe_version("dagster"),
                name="Dagster",
                openlineageAdapterVersion=_safe_version("openlineage-python"),
            ),
            **(extra or {}),
        }
        return Run(runId=step.run_id, facets=facets)

    def _inputs(self, step: Step, outcome: Outcome | None) -> list[InputDataset]:
        out = []
        for ds in step.inputs:
            facets = ds.facets(self.namespace)
            version = outcome.versions_read.get(ds.logical_name) if outcome else None
            if version is not None:
                facets["version"] = version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
            out.append(InputDataset(namespace=ds.namespace, name=ds.name, facets=facets))
        return out

    def _outputs(self, step: Step, outcome: Outcome | None) -> list[OutputDataset]:
        out = []
        for i, ds in enumerate(step.outputs):
            facets = ds.facets(self.namespace)
            output_facets: dict[str, Any] = {}
            if outcome is not None:
                version = outcome.versions_written.get(ds.logical_name)
                if version is not None:
                    facets["version"] = version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
                derivations = outcome.column_lineage.get(ds.logical_name)
                if derivations:
                    facets["columnLineage"] = column_lineage(derivations, step.inputs)
                if i == 0 and outcome.assertions:
                    facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                        assertions=[
                            data_quality_assertions_dataset.Assertion(assertion=name, success=passed)
                            for name, passed in outcome.assertions
                        ]
                    )
                if ds.logical_name in outcome.rows:
                    output_facets["outputStatistics"] = (
                        output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                            rowCount=outcome.rows[ds.logical_name]
                        )
                    )
            out.append(OutputDataset(namespace=ds.namespace, name=ds.name, facets=facets, outputFacets=output_facets))
        return out

    def _delta_facet(self, step: Step, outcome: Outcome) -> AquiferDeltaRunFacet:
        facet = AquiferDeltaRunFacet(
            read=[{"table": t, "version": v} for t, v in outcome.versions_read.items()],
            written=[{"table": t, "version": v} for t, v in outcome.versions_written.items()],
            rowsWritten=outcome.rows_written,
            quarantined=dict(outcome.quarantined) if outcome.quarantined is not None else None,
        )
        facet._schemaURL = facet_schema_url("AquiferDeltaRunFacet", self.schema_base_url)
        return facet

    def _emit(self, event: RunEvent) -> None:
        assert self.client is not None
        breaker = _BREAKERS.setdefault(_endpoint(self.client), {"down_until": 0.0, "dropped": 0})
        if time.monotonic() < breaker["down_until"]:
            # the endpoint failed moments ago: each attempt would cost the client's retries (~9 s over HTTP) per
            # event, and a run has two per asset; drop and count until the pause ends
            self.failures += 1
            breaker["dropped"] += 1
            return
        try:
            self.client.emit(event)
        except Exception as exc:  # lineage must never fail the run it describes
            self.failures += 1
            breaker["down_until"] = time.monotonic() + self.retry_after_s
            log.warning(
                "OpenLineage %s event of %s not delivered (%s); events of the next %.0f s are dropped",
                event.eventType,
                event.job.name,
                exc,
                self.retry_after_s,
            )
            return
        if breaker["dropped"]:
            log.warning("OpenLineage endpoint answers again; %d event(s) were dropped", breaker["dropped"])
            breaker["dropped"] = 0

    def start(self, step: Step) -> None:
        if self.client is None:
            return
        self.abort_orphans()
        self._mark(step)
        self._emit(
            RunEvent(
                eventType=RunState.START,
                eventTime=_now(),
                run=self._run(step),
                job=self._job(step),
                producer=PRODUCER,
                inputs=self._inputs(step, None),
                outputs=self._outputs(step, None),
            )
        )

    def complete(self, step: Step, outcome: Outcome, *, failed_gates: Sequence[str] = ()) -> None:
        """``COMPLETE``, or ``FAIL`` when a blocking gate failed (the data was written; promotion stops here)."""
        if self.client is None:
            return
        extra: dict[str, RunFacet] = {"aquifer_delta": self._delta_facet(step, outcome)}
        state = RunState.COMPLETE
        if failed_gates:
            state = RunState.FAIL
            extra["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"blocking quality gate(s) failed: {', '.join(failed_gates)}", programmingLanguage="python"
            )
        self._emit(
            RunEvent(
                eventType=state,
                eventTime=_now(),
                run=self._run(step, extra),
                job=self._job(step),
                producer=PRODUCER,
                inputs=self._inputs(step, outcome),
                outputs=self._outputs(step, outcome),
            )
        )
        self._unmark(step)

    def fail(self, step: Step, error: BaseException) -> None:
        if self.client is None:
            return
        facet = error_message_run.ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}"[:2000],
            programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error))[-8000:],
        )
        self._emit(
            RunEvent(
                eventType=RunState.FAIL,
                eventTime=_now(),
                run=self._run(step, {"errorMessage": facet}),
                job=self._job(step),
                producer=PRODUCER,
                inputs=self._inputs(step, None),
                outputs=self._outputs(step, None),
            )
        )
        self._unmark(step)

    # -- steps in flight

    def _marker(self, step: Step) -> Path:
        return self.state_dir / f"{step.run_id}.json"

    def _mark(self, step: Step) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        body = {
            "pid": os.getpid(),
            "job": step.job,
            "dagster_run_id": step.dagster_run_id,
            "dagster_job": step.dagster_job,
        }
        tmp = self._marker(step).with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self._marker(step))

    def _unmark(self, step: Step) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._marker(step).unlink()

    def abort_orphans(self) -> list[str]:
        """``ABORT`` for each step whose process died before it ended (a killed run); returns their jobs."""
        if self.client is None or not self.state_dir.is_dir():
            return []
        aborted = []
        for marker in sorted(self.state_dir.glob("*.json")):
            try:
                body = json.loads(marker.read_text())
                pid = int(body["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("OpenLineage: unreadable step marker %s removed", marker)
                marker.unlink(missing_ok=True)
                continue
            if _alive(pid):
                continue
            step = Step(
                job=str(body["job"]),
                dagster_run_id=str(body["dagster_run_id"]),
                dagster_job=str(body.get("dagster_job", "")),
                inputs=[],
                outputs=[],
                run_id=marker.stem,
            )
            self._emit(
                RunEvent(
                    eventType=RunState.ABORT,
                    eventTime=_now(),
                    run=self._run(step),
                    job=self._job(step),
                    producer=PRODUCER,
                )
            )
            marker.unlink(missing_ok=True)
            aborted.append(step.job)
        return aborted


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped) is not alive
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _safe_version(name: str) -> str:
    try:
        return package_version(name)
    except Exception:
        return "unknown"


def configured_client() -> OpenLineageClient | None:
    """The client of the standard OpenLineage configuration, or None when nothing is configured (or
    ``OPENLINEAGE_DISABLED=true``): without configuration the client would print every event to the console."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return None
    client = OpenLineageClient()
    transport = client.config.transport or {}
    if transport.get("type") or os.environ.get("OPENLINEAGE_URL"):
        return client
    return None
