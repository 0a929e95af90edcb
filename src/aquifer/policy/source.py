"""What a policy revision is made of: the Rego files under ``policies/`` and the registries in ``catalog/``.

The revision is a content hash of both, computed the same way whichever engine evaluates it, and recorded in every
decision. Test files (``*_test.rego``) are not part of it: they do not change any decision.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aquifer.catalog import Catalog, load_catalog

PACKAGE = "aquifer/context"
"""The policy package Aquifer queries: its entrypoints are ``request``, ``decision`` and ``decisions``."""

ENTRYPOINTS = ("request", "decision", "decisions")


def is_test(path: Path) -> bool:
    return path.name.endswith("_test.rego")


@dataclass(frozen=True)
class PolicySource:
    """One consistent snapshot of the policy files and the catalog data, with its revision.

    >>> from aquifer.settings import PROJECT_ROOT
    >>> src = PolicySource.read(PROJECT_ROOT / "policies", PROJECT_ROOT / "catalog")
    >>> len(src.revision), "aquifer/context/context.rego" in src.modules
    (16, True)
    """

    policy_dir: Path
    catalog_dir: Path
    modules: dict[str, str]  # path relative to policy_dir -> Rego source (decision modules only)
    tests: dict[str, str]  # path relative to policy_dir -> Rego source of the *_test.rego files
    catalog: Catalog
    revision: str

    @property
    def data(self) -> dict[str, Any]:
        """The base document both engines evaluate against: ``data.aquifer.catalog``."""
        return {"aquifer": {"catalog": self.catalog.policy_data()}}

    @classmethod
    def read(cls, policy_dir: Path, catalog_dir: Path) -> PolicySource:
        modules: dict[str, str] = {}
        tests: dict[str, str] = {}
        for path in sorted(policy_dir.rglob("*.rego")):
            rel = path.relative_to(policy_dir).as_posix()
            (tests if is_test(path) else modules)[rel] = path.read_text(encoding="utf-8")
        if not modules:
            msg = f"{policy_dir}: no policy modules (*.rego) found"
            raise FileNotFoundError(msg)
        catalog = load_catalog(catalog_dir)
        return cls(policy_dir, catalog_dir, modules, tests, catalog, revision_of(modules, catalog.policy_data()))


def revision_of(modules: dict[str, str], catalog_data: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for rel, text in sorted(modules.items()):
        digest.update(rel.encode() + b"\0" + text.encode() + b"\0")
    digest.update(json.dumps(catalog_data, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:16]


def fingerprint(policy_dir: Path, catalog_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """A cheap signature (path, size, mtime) of every file a revision is made of: a change means re-read."""
    entries: list[tuple[str, int, int]] = []
    for root, suffix in ((policy_dir, ".rego"), (catalog_dir, ".yaml")):
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name.endswith(suffix):
                    full = os.path.join(dirpath, name)
                    try:
                        st = os.stat(full)
                    except FileNotFoundError:
                        continue
                    entries.append((full, st.st_size, st.st_mtime_ns))
    return tuple(sorted(entries))
