from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from aquifer.catalog import Catalog, CatalogError, Classification, load_catalog, parse_duration
from aquifer.settings import PROJECT_ROOT


def test_catalog_loads_every_source(catalog: Catalog) -> None:
    assert set(catalog.sources) == {
        "product_docs",
        "engineering_wiki",
        "hr_handbook",
        "hr_case_notes",
        "support_tickets",
        "finance_reports",
        "security_runbooks",
    }
    assert {s.format for s in catalog} == {"markdown", "jsonl", "csv"}
    assert catalog.source("hr_case_notes").classification is Classification.CONFIDENTIAL


def test_classification_is_ordered() -> None:
    assert Classification.PUBLIC < Classification.INTERNAL < Classification.CONFIDENTIAL < Classification.RESTRICTED
    assert max(Classification.INTERNAL, Classification.RESTRICTED) is Classification.RESTRICTED


@pytest.mark.parametrize(("text", "days"), [("P90D", 90), ("P2Y", 730), ("P6M", 180), ("P1W", 7), ("P1Y6M", 545)])
def test_parse_duration(text: str, days: int) -> None:
    assert parse_duration(text).days == days


def _broken_catalog(tmp_path: Path, source: str, change: dict[str, object], drop: str | None = None) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "catalog", root)
    path = root / "sources" / f"{source}.yaml"
    entry = yaml.safe_load(path.read_text())
    entry.update(change)
    if drop:
        del entry[drop]
    path.write_text(yaml.safe_dump(entry))
    return root


@pytest.mark.parametrize(
    ("change", "drop", "field", "reason"),
    [
        ({}, "owner", "owner", "Field required"),
        ({"classification": "secret"}, None, "classification", "public"),
        ({"freshness_sla": "90 days"}, None, "freshness_sla", "ISO 8601 duration"),
        ({"pii": {"expected": True, "types": ["dna"]}}, None, "pii.types", "unknown PII type"),
        ({"pii": {"expected": True, "types": []}}, None, "pii", "expected: true needs"),
        ({"format": "xml"}, None, "format", "markdown"),
        ({"id": "other_name"}, None, "id", "must match the file name"),
        ({"landing_path": "../escape"}, None, "landing_path", "inside the landing zone"),
        ({"colour": "blue"}, None, "colour", "Extra inputs"),
        # purposes reach the policy engines: identifiers only, a quote or a newline is refused at load
        ({"allowed_purposes": ['support"x']}, None, "allowed_purposes.0", "should match pattern"),
        ({"allowed_purposes": ["support\n"]}, None, "allowed_purposes.0", "should match pattern"),
        (
            {"pii": {"expected": True, "types": ["email"], "allowed_purposes": ["Support Desk"]}},
            None,
            "pii.allowed_purposes.0",
            "should match pattern",
        ),
    ],
)
def test_invalid_entry_names_file_field_and_reason(
    tmp_path: Path, change: dict[str, object], drop: str | None, field: str, reason: str
) -> None:
    root = _broken_catalog(tmp_path, "support_tickets", change, drop)
    with pytest.raises(CatalogError) as excinfo:
        load_catalog(root)
    error = excinfo.value
    assert error.path.name == "support_tickets.yaml"
    assert error.field == field
    assert reason in error.reason
    assert "support_tickets.yaml" in str(error) and field in str(error)


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "catalog", root)
    (root / "sources" / "broken.yaml").write_text("id: [unclosed\n")
    with pytest.raises(CatalogError, match=r"broken\.yaml: <file>: not valid YAML"):
        load_catalog(root)


def test_every_source_has_assets_and_every_asset_has_an_entry(catalog: Catalog) -> None:
    from pipelines.definitions import defs

    keys = {tuple(k.path) for k in defs.resolve_all_asset_keys()}
    layers = ("bronze", "silver", "gold", "platinum")
    data_keys = keys - {("audit", "decisions"), ("index", "chunks")}
    assert {("audit", "decisions"), ("index", "chunks")} <= keys
    assert data_keys == {(layer, s.id) for layer in layers for s in catalog}
    assert {dataset for _, dataset in data_keys} == set(catalog.sources)
