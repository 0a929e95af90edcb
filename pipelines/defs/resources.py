"""The one resource every asset uses: where the lake, the landing zone and the catalog are."""

from pathlib import Path
from typing import Any

import dagster as dg

from aquifer.catalog import Catalog, load_catalog
from aquifer.lake import Lake
from aquifer.medallion.common import RunContext
from aquifer.settings import Settings, get_settings


class AquiferResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Empty fields fall back to the ``AQUIFER_*`` settings; tests set them to a ``tmp_path`` lake."""

    data_dir: str | None = None
    lake_uri: str | None = None

    def settings(self) -> Settings:
        base = get_settings()
        updates: dict[str, Any] = {}
        if self.data_dir:
            updates["data_dir"] = Path(self.data_dir)
        if self.lake_uri:
            updates["lake_uri"] = self.lake_uri
        return base.model_copy(update=updates) if updates else base

    def lake(self) -> Lake:
        return Lake.from_settings(self.settings())

    @property
    def landing_dir(self) -> Path:
        return self.settings().landing_dir

    def catalog(self) -> Catalog:
        return load_catalog(self.settings().catalog_dir)

    def run_context(self, run_id: str) -> RunContext:
        return RunContext(lake=self.lake(), run_id=run_id)
