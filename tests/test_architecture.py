"""Boundaries the code keeps: the SDK does not load the server, and the service package loads nothing on import."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVER = {"fastapi", "starlette", "uvicorn", "lancedb", "regopy", "torch", "sentence_transformers", "polars",
          "deltalake", "presidio_analyzer", "prometheus_client"}  # fmt: skip


def _loaded(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(done.stdout.split())


@pytest.mark.parametrize("statement", ["import aquifer.client", "import aquifer.service.schemas", "import aquifer"])
def test_the_sdk_does_not_load_the_server(statement: str) -> None:
    assert not _loaded(statement) & SERVER, f"{statement} loads {sorted(_loaded(statement) & SERVER)}"


def test_the_package_still_offers_its_names_on_first_use() -> None:
    loaded = _loaded("from aquifer import Lake, load_catalog, get_settings")
    assert {"polars", "deltalake"} <= loaded
