"""The one settings object. Every knob is an ``AQUIFER_*`` environment variable (or a ``.env`` entry)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Where Aquifer keeps its data and reads its governance catalog.

    >>> Settings(data_dir="/tmp/aq").landing_dir
    PosixPath('/tmp/aq/landing')
    """

    model_config = SettingsConfigDict(env_prefix="AQUIFER_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Holds landing/<source_id>/ and, by default, the lake.")
    lake_uri: str | None = Field(
        default=None,
        description="Root of the Delta lake: a local path or an s3:// / gs:// URI. Default: <data_dir>/lake.",
    )
    catalog_dir: Path = Field(default=PROJECT_ROOT / "catalog", description="Source catalog (YAML).")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="deltalake storage options for object stores (credentials, region)."
    )

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def lake_root(self) -> str:
        if self.lake_uri:
            return self.lake_uri.rstrip("/")
        return str((self.data_dir / "lake").resolve())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
