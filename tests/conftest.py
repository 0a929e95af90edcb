from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

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
