"""OpenLineage events from real Dagster runs of the sample: schema-valid, complete, and telling the same lineage as
``aquifer lineage``.

Events are validated against the OpenLineage JSON schemas vendored in ``tests/openlineage_spec`` (the event schema
and every facet's own schema, found by its ``_schemaURL``) and Aquifer's custom facet schema, which the API serves.
They travel through the client's real transports: the file transport, and HTTP to a local recording server.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from aquifer import sample
from aquifer.export import openlineage as ol
from aquifer.lake import Lake
from aquifer.medallion import bronze, gold, platinum, silver
from aquifer.medallion.columns import LINEAGE, Derivation
from aquifer.medallion.layers import QUARANTINE, Layer
from aquifer.settings import PROJECT_ROOT, get_settings

SPEC = Path(__file__).parent / "openlineage_spec"


# ------------------------------------------------------------------------------------------------ validation


def _registry() -> tuple[Registry, dict[str, str]]:
    """Every vendored schema by its ``$id``, and each facet schema's ``$id`` by file name (``_schemaURL``s name a
    version; a facet is validated against the vendored one of its name)."""
    registry: Registry = Registry()
    ids: dict[str, str] = {}
    for path in [
        SPEC / "OpenLineage.json",
        *sorted((SPEC / "facets").glob("*.json")),
        *ol.FACET_SCHEMAS.glob("*.json"),
    ]:
        schema = json.loads(path.read_text())
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
        ids[path.name] = schema["$id"]
    return registry, ids


REGISTRY, SCHEMA_IDS = _registry()


def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)


EVENT = _validator(SCHEMA_IDS["OpenLineage.json"])


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from event["run"].get("facets", {}).items()
    yield from event["job"].get("facets", {}).items()
    for ds in [*event.get("inputs", []), *event.get("outputs", [])]:
        for group in ("facets", "inputFacets", "outputFacets"):
            yield from ds.get(group, {}).items()


def validation_errors(event: dict[str, Any]) -> list[str]:
    """What is wrong with ``event``: against the event schema, and each facet against its own schema."""
    problems = [f"event: {e.message} at {list(e.path)}" for e in EVENT.iter_errors(event)]
    for key, facet in _facets(event):
        url = facet.get("_schemaURL", "")
        address, _, fragment = url.partition("#")
        file_name = address.rpartition("/")[2]
        if file_name not in SCHEMA_IDS:
            problems.append(f"facet {key}: no schema for _schemaURL {url!r}")
            continue
        ref = SCHEMA_IDS[file_name] + "#" + (fragment or f"/$defs/{file_name.removesuffix('.json')}")
        problems += [f"facet {key}: {e.message} at {list(e.path)}" for e in _validator(ref).iter_errors(facet)]
    return problems


# ------------------------------------------------------------------------------------------------ a recording server


class LineageServer:
    """Records every OpenLineage POST (gzip bodies decoded); answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
                server.requests.append({"path": self.path, **headers})
                if server.status == 200:
                    server.events.append(json.loads(body))
                self.send_response(server.status)
                self.send_header("content-length", "0")
                self.end_headers()

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


# ------------------------------------------------------------------------------------------------ runs


def _materialize(data: Path, env: dict[str, str], select: list[str] | None = None) -> Any:
    from pipelines.runs import materialize

    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
            mp.delenv(name)
        mp.setenv("AQUIFER_DATA_DIR", str(data))
        mp.setenv("DAGSTER_HOME", str(data / "dagster"))
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            return materialize(select, instance=dg.DagsterInstance.ephemeral())
        finally:
            get_settings.cache_clear()


def _file_env(path: Path) -> dict[str, str]:
    return {
        "OPENLINEAGE__TRANSPORT__TYPE": "file",
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(path),
        "OPENLINEAGE__TRANSPORT__APPEND": "true",
    }


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole sample materialized with the file transport, then run again (nothing new) over HTTP."""
    root = tmp_path_factory.mktemp("openlineage")
    data = root / "data"
    sample.generate(data / "landing", scale=1, seed=7)
    first = _materialize(data, _file_env(root / "events.jsonl"))
    assert first.success, first
    server = LineageServer()
    try:
        second = _materialize(
            data,
            {
                "OPENLINEAGE__TRANSPORT__TYPE": "http",
                "OPENLINEAGE__TRANSPORT__URL": server.url,
                "OPENLINEAGE__TRANSPORT__COMPRESSION": "gzip",
            },
        )
        assert second.success, second
    finally:
        server.close()
    return {"data": data, "events": _read(root / "events.jsonl"), "run": first, "http": server, "second": second}


def _assets() -> list[str]:
    from pipelines.definitions import defs

    return sorted(k.to_user_string() for k in defs.resolve_all_asset_keys())


@pytest.mark.slow
def test_every_event_of_a_sample_run_is_schema_valid(runs: dict[str, Any]) -> None:
    events = runs["events"] + runs["http"].events
    assert events
    problems = {f"{e['job']['name']} {e['eventType']}": validation_errors(e) for e in events}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.slow
def test_every_asset_materialization_is_one_run_with_start_and_complete(runs: dict[str, Any]) -> None:
    events, run_id = runs["events"], runs["run"].run_id
    assets = _assets()
    assert Counter((e["job"]["name"], e["eventType"]) for e in events) == Counter(
        {(a, state): 1 for a in assets for state in ("START", "COMPLETE")}
    )
    for e in events:
        assert e["job"]["namespace"] == "aquifer"
        # stable per Dagster run and step: a UUID of the run id and the asset key, the Dagster run as parent
        assert e["run"]["runId"] == str(uuid.uuid5(ol._RUN_NAMESPACE, f"{run_id}/{e['job']['name']}"))
        assert e["run"]["facets"]["parent"]["run"]["runId"] == run_id
        assert e["job"]["facets"]["jobType"]["jobType"] == "ASSET"
    # over HTTP, the second run: the same jobs, new run ids, gzip bodies to the standard endpoint
    http = runs["http"]
    assert sorted({e["job"]["name"] for e in http.events}) == assets
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in http.events} == {runs["second"].run_id}
    assert {r["path"] for r in http.requests} == {"/api/v1/lineage"}
    assert {r.get("content-encoding") for r in http.requests} == {"gzip"}


def _complete(events: list[dict[str, Any]], job: str) -> dict[str, Any]:
    return next(e for e in events if e["job"]["name"] == job and e["eventType"] == "COMPLETE")


@pytest.mark.slow
def test_datasets_carry_storage_names_schema_tags_versions_and_gates(runs: dict[str, Any]) -> None:
    data, events = runs["data"], runs["events"]
    lake = Lake(str(data / "lake"))
    source = "hr_case_notes"
    event = _complete(events, f"silver/{source}")
    (bronze_in,) = event["inputs"]
    assert (bronze_in["namespace"], bronze_in["name"]) == ("file", lake.uri("bronze", source))
    assert bronze_in["facets"]["version"]["datasetVersion"] == str(lake.version("bronze", source))
    outputs = {o["facets"]["symlinks"]["identifiers"][0]["name"]: o for o in event["outputs"]}
    assert set(outputs) == {f"silver/{source}", f"{QUARANTINE}/{source}"}
    out = outputs[f"silver/{source}"]
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == list(silver.SCHEMA)
    tags = {t["key"]: t["value"] for t in out["facets"]["tags"]["tags"]}
    assert tags["classification"] == "confidential" and "pii_types" in tags
    assertions = {a["assertion"]: a["success"] for a in out["facets"]["dataQualityAssertions"]["assertions"]}
    from aquifer.catalog import load_catalog
    from pipelines.defs.silver.checks import gates

    catalog = load_catalog(PROJECT_ROOT / "catalog")
    assert assertions == {g.name: True for g in gates(catalog.source(source))}
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == lake.read("silver", source).height
    # the custom facet: versions read and written, and the quarantine as the lake holds it
    delta = event["run"]["facets"]["aquifer_delta"]
    assert delta["_schemaURL"].endswith("/openlineage/facets/AquiferDeltaRunFacet.json")
    assert delta["read"] == [{"table": f"bronze/{source}", "version": lake.version("bronze", source)}]
    written = {w["table"]: w["version"] for w in delta["written"]}
    assert written == {f"silver/{source}": lake.version("silver", source), f"quarantine/{source}": 0}
    quarantine = lake.read(QUARANTINE, source, schema=silver.QUARANTINE_SCHEMA)
    assert delta["quarantined"]["total"] == quarantine.height > 0
    assert delta["quarantined"]["byReason"] == dict(quarantine.group_by("reason").len().rows())
    # bronze reads its landing folder; the index reads every platinum table
    landing = _complete(events, f"bronze/{source}")["inputs"][0]
    assert landing["name"] == str((data / "landing" / catalog.source(source).landing_path).resolve())
    index = _complete(events, "index/chunks")
    assert {i["name"] for i in index["inputs"]} == {lake.uri("platinum", s.id) for s in catalog}
    assert "vector" in index["outputs"][0]["facets"]["columnLineage"]["fields"]


@pytest.mark.slow
def test_column_lineage_of_a_platinum_column_walks_back_to_bronze_as_aquifer_lineage_does(
    runs: dict[str, Any],
) -> None:
    from aquifer.lineage import trace

    data, events = runs["data"], runs["events"]
    lake = Lake(str(data / "lake"))
    source = "hr_case_notes"
    row = lake.read("platinum", source).row(0, named=True)

    # from the events alone: each output (namespace, name, column) -> its direct inputs, and the versions read
    direct: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
    version_read: dict[tuple[str, str], str] = {}
    for e in events:
        if e["eventType"] != "COMPLETE":
            continue
        for i in e["inputs"]:
            if "version" in i["facets"]:
                version_read[(e["job"]["name"], i["name"])] = i["facets"]["version"]["datasetVersion"]
        for o in e["outputs"]:
            for column, f in o["facets"].get("columnLineage", {}).get("fields", {}).items():
                direct[(o["namespace"], o["name"], column)] = [
                    (i["namespace"], i["name"], i["field"]) for i in f["inputFields"]
                ]
    walk = [("file", lake.uri("platinum", source), "text")]
    while walk[-1] in direct:
        (nxt,) = direct[walk[-1]]  # text derives from exactly one column per hop
        walk.append(nxt)
    assert [(Path(name).parent.name, column) for _, name, column in walk] == [
        ("platinum", "text"),
        ("gold", "text"),
        ("silver", "body"),
        ("bronze", "payload"),
    ]

    # `aquifer lineage` of the row names the same tables, read at the versions the events say were read
    (node,) = trace(lake, [row["platinum_id"]], [source])
    hops = []
    while node.upstream:
        (node,) = node.upstream[:1]
        hops.append((node.table, node.delta_version))
    assert [table for table, _ in hops] == [f"gold/{source}", f"silver/{source}", f"bronze/{source}"]
    for (table, version), reader in zip(hops, ["platinum", "gold", "silver"], strict=True):
        assert version_read[(f"{reader}/{source}", lake.uri(*table.split("/")))] == str(version)


def test_every_layer_declares_the_lineage_of_exactly_its_columns() -> None:
    schemas = {Layer.SILVER: silver.SCHEMA, Layer.GOLD: gold.SCHEMA, Layer.PLATINUM: platinum.SCHEMA}
    for layer, derivations in LINEAGE.items():
        assert list(derivations) == list(schemas[layer]), layer
        upstream = {Layer.SILVER: bronze.SCHEMA, Layer.GOLD: silver.SCHEMA, Layer.PLATINUM: gold.SCHEMA}[layer]
        for column, d in derivations.items():
            assert set(d.inputs) <= set(upstream), (layer, column, d.inputs)
            assert set(d.filters) <= set(upstream), (layer, column, d.filters)
    from aquifer.index.schema import SCHEMA as INDEX_SCHEMA
    from aquifer.medallion.columns import INDEX

    assert set(INDEX) <= set(INDEX_SCHEMA.names)
    assert all(set(d.inputs) <= set(platinum.SCHEMA) for d in INDEX.values())


def test_the_column_lineage_facet_lists_direct_inputs_per_column_and_filters_once() -> None:
    table = ol.Dataset("/lake/gold/docs", "gold/docs")
    facet = ol.column_lineage(
        {
            "text": Derivation(("body",), "TRANSFORMATION", "a window", filters=("untrusted",)),
            "run_id": Derivation((), "TRANSFORMATION", "stamp"),
        },
        [table],
    )
    assert list(facet.fields) == ["text"]  # stamped columns have no inputs, so no entry
    (field,) = facet.fields["text"].inputFields
    assert (field.namespace, field.name, field.field) == ("file", "/lake/gold/docs", "body")
    assert field.transformations[0].type == "DIRECT"
    assert [(i.field, i.transformations[0].subtype) for i in facet.dataset] == [("untrusted", "FILTER")]


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://bucket/lake/gold/docs", ("s3://bucket", "lake/gold/docs")),
        ("s3a://bucket/x", ("s3://bucket", "x")),
        ("gs://b/lake/t", ("gs://b", "lake/t")),
        ("abfss://c@acct.dfs.core.windows.net/lake/t", ("abfss://c@acct.dfs.core.windows.net", "lake/t")),
        ("/data/lake/gold/docs", ("file", "/data/lake/gold/docs")),
    ],
)
def test_datasets_are_named_by_the_namespace_of_their_storage(location: str, expected: tuple[str, str]) -> None:
    assert ol.dataset_name(location) == expected


def _emitter(tmp_path: Path, client: Any) -> ol.LineageEmitter:
    return ol.LineageEmitter(client, namespace="aquifer", state_dir=tmp_path / "running", schema_base_url="http://x")


def _step() -> ol.Step:
    return ol.Step(job="gold/docs", dagster_run_id=str(uuid.uuid4()), dagster_job="j", inputs=[], outputs=[])


@pytest.mark.parametrize("status", [500, None])
def test_an_endpoint_that_fails_or_is_down_never_fails_the_step(tmp_path: Path, status: int | None) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    server = LineageServer(status or 200)
    url = server.url
    if status is None:
        server.close()  # nothing listens there now
    try:
        transport = HttpTransport(HttpConfig(url=url, timeout=2, retry={"total": 0}))
        emitter = _emitter(tmp_path, OpenLineageClient(transport=transport))
        step = _step()
        emitter.start(step)
        emitter.complete(step, ol.Outcome())
        assert emitter.failures == 2
        # the failure paused this endpoint: the second event was dropped without waiting out the retries
        assert ol._BREAKERS[f"http:{url}"]["dropped"] == 1
        assert not list((tmp_path / "running").glob("*.json"))  # the step ended, so it is not aborted later
    finally:
        if status is not None:
            server.close()


def test_lineage_is_off_without_configuration_and_on_with_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no openlineage.yml here
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ol.configured_client() is None
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    assert ol.configured_client() is not None
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert ol.configured_client() is None
    monkeypatch.delenv("OPENLINEAGE_DISABLED")
    monkeypatch.delenv("OPENLINEAGE_URL")
    (tmp_path / "openlineage.yml").write_text(f"transport:\n  type: file\n  log_file_path: {tmp_path / 'e.jsonl'}\n")
    assert ol.configured_client() is not None
    # and with nothing configured a whole step costs nothing and leaves nothing behind
    emitter = _emitter(tmp_path, None)
    emitter.start(_step())
    assert not (tmp_path / "running").exists()


def test_a_step_whose_process_died_is_reported_abort_by_the_next_start(tmp_path: Path) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = tmp_path / "events.jsonl"
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))
    killed = _step()
    emitter = _emitter(tmp_path, client)
    emitter.start(killed)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    marker = tmp_path / "running" / f"{killed.run_id}.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "pid": int(dead.stdout)}))
    alive = _step()
    emitter.start(alive)
    states = [(e["eventType"], e["run"]["runId"]) for e in _read(path)]
    assert states == [("START", killed.run_id), ("ABORT", killed.run_id), ("START", alive.run_id)]
    assert all(not validation_errors(e) for e in _read(path))
    assert sorted(p.stem for p in (tmp_path / "running").glob("*.json")) == [alive.run_id]


@pytest.mark.slow
def test_a_run_killed_mid_step_is_aborted_when_the_next_run_starts(tmp_path: Path) -> None:
    """SIGKILL a real materialization while the index embeds; the next run's first step reports it ABORT."""
    data, events = tmp_path / "data", tmp_path / "events.jsonl"
    sample.generate(data / "landing", scale=1, seed=3)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")},
        **_file_env(events),
        "AQUIFER_DATA_DIR": str(data),
        "DAGSTER_HOME": str(data / "dagster"),
        "HF_HUB_OFFLINE": "1",
    }
    code = "from pipelines.runs import materialize; materialize()"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while not any(e["job"]["name"] == "index/chunks" and e["eventType"] == "START" for e in _read(events)):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its index step"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = next(e for e in _read(events) if e["job"]["name"] == "index/chunks")
    assert not any(e["eventType"] in ("COMPLETE", "FAIL") for e in _read(events) if e["job"]["name"] == "index/chunks")

    after = _materialize(data, _file_env(events), ["bronze/product_docs"])
    assert after.success
    aborts = [e for e in _read(events) if e["eventType"] == "ABORT"]
    assert [(e["job"]["name"], e["run"]["runId"]) for e in aborts] == [("index/chunks", killed["run"]["runId"])]
    assert not validation_errors(aborts[0])
