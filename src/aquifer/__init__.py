"""Aquifer: a sovereign data-governance layer for AI-agent context.

>>> from aquifer import Lake, load_catalog, get_settings

The names below load on first use, so that importing a light module of the package (``aquifer.client``, the SDK)
does not load the lake, the catalog or the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aquifer.catalog import Catalog, CatalogError, Classification, Source, load_catalog
    from aquifer.lake import CommitInfo, Lake
    from aquifer.settings import Settings, get_settings

_WHERE = {
    "Catalog": "aquifer.catalog",
    "CatalogError": "aquifer.catalog",
    "Classification": "aquifer.catalog",
    "Source": "aquifer.catalog",
    "load_catalog": "aquifer.catalog",
    "CommitInfo": "aquifer.lake",
    "Lake": "aquifer.lake",
    "Settings": "aquifer.settings",
    "get_settings": "aquifer.settings",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'aquifer' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
