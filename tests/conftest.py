from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from aquifer.catalog import Catalog, load_catalog
from aquifer.lake import Lake
from aquifer.medallion.common import RunContext
from aquifer.settings import PROJECT_ROOT, get_settings


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(PROJECT_ROOT / "catalog")


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def ctx(lake: Lake) -> RunContext:
    return RunContext(lake=lake, run_id="run-1", now=dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the whole process (settings, CLI, Dagster resource) at a fresh data dir."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("AQUIFER_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster"))
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def materialized_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the sample corpus landed and materialized up to the index, built once per session. Tests
    that change data copy it first (:func:`copy_materialized`)."""
    import dagster as dg

    from aquifer import sample
    from pipelines.runs import materialize

    data = tmp_path_factory.mktemp("materialized") / "data"
    sample.generate(data / "landing", scale=1, seed=7)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AQUIFER_DATA_DIR", str(data))
        mp.setenv("DAGSTER_HOME", str(data / "dagster"))
        get_settings.cache_clear()
        summary = materialize(instance=dg.DagsterInstance.ephemeral())
    get_settings.cache_clear()
    assert summary.success, summary
    return data


def copy_materialized(source: Path, root: Path) -> Path:
    """A private copy of :func:`materialized_sample` (lake, index, landing zone) plus the catalog and policies,
    under ``root``; returns the data dir."""
    import shutil

    shutil.copytree(source, root / "data", ignore=shutil.ignore_patterns("dagster", "decisions"))
    shutil.copytree(PROJECT_ROOT / "policies", root / "policies")
    shutil.copytree(PROJECT_ROOT / "catalog", root / "catalog")
    return root / "data"


@pytest.fixture(scope="session")
def dev_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The development IdP, served over real HTTP on a free port for the whole session (its own keys)."""
    from aquifer.identity.devidp import DevIdP
    from tests.servers import free_port

    idp = DevIdP(issuer=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path_factory.mktemp("idp"))
    thread = idp.start()
    yield idp
    thread.stop()


def use_issuer(catalog_dir: Path, issuer: str) -> None:
    """Point a catalog copy's development issuer at ``issuer`` (a test's IdP instead of :8790)."""
    import yaml

    path = catalog_dir / "identity.yaml"
    identity = yaml.safe_load(path.read_text())
    for entry in identity["issuers"]:
        if entry.get("development_only"):
            entry["issuer"] = issuer
    path.write_text(yaml.safe_dump(identity, sort_keys=False))
