"""Settings work outside a source checkout: catalog/ and policies/ come from the working directory, the checkout,
or the demo the wheel ships, in that order; the credentials follow the catalog."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aquifer import settings as settings_module
from aquifer.settings import PROJECT_ROOT, Settings, default_dir


def test_the_working_directory_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "catalog").mkdir()
    monkeypatch.chdir(tmp_path)
    assert default_dir("catalog") == tmp_path / "catalog"
    assert default_dir("policies") == PROJECT_ROOT / "policies", "no ./policies here: the checkout's"
    chosen = Settings()
    assert chosen.catalog_dir == tmp_path / "catalog"
    assert chosen.credentials_file == tmp_path / "catalog" / "credentials.yaml"


def test_outside_a_checkout_the_packaged_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = tmp_path / "site-packages" / "aquifer" / "_demo"
    shutil.copytree(PROJECT_ROOT / "policies", demo / "policies")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(settings_module, "PROJECT_ROOT", tmp_path / "not-a-checkout")
    monkeypatch.setattr(settings_module, "DEMO", demo)
    assert default_dir("policies") == demo / "policies"
    assert default_dir("catalog") == Path("catalog"), "nowhere: relative, and the error will name it"


@pytest.mark.slow
def test_the_wheel_ships_the_demo_catalog_and_policies(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(PROJECT_ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("aquifer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (
        "aquifer/_demo/catalog/sources/hr_case_notes.yaml",
        "aquifer/_demo/catalog/classification.yaml",
        "aquifer/_demo/policies/aquifer/context/context.rego",
        "aquifer/settings.py",
        "pipelines/runs.py",
        "aquifer/sample/banks/product_docs.json",
    ):
        assert path in names, path
