"""Aquifer: a sovereign data-governance layer for AI-agent context.

>>> from aquifer import Lake, load_catalog, get_settings
"""

from aquifer.catalog import Catalog, CatalogError, Classification, Source, load_catalog
from aquifer.lake import CommitInfo, Lake
from aquifer.settings import Settings, get_settings

__all__ = [
    "Catalog",
    "CatalogError",
    "Classification",
    "CommitInfo",
    "Lake",
    "Settings",
    "Source",
    "get_settings",
    "load_catalog",
]
__version__ = "0.1.0"
