"""Boundaries the code keeps: the SDK does not load the server, and the service package loads nothing on import."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVER = {
    "fastapi",
    "starlette",
    "uvicorn",
    "lancedb",
    "regopy",
    "torch",
    "sentence_transformers",
    "polars",
    "deltalake",
    "presidio_analyzer",
    "prometheus_client",
}


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


def _imports() -> dict[str, set[str]]:
    """Every aquifer module and the aquifer/pipelines modules it imports (lazily too; not under TYPE_CHECKING)."""
    import ast

    from aquifer.settings import PROJECT_ROOT

    root = PROJECT_ROOT / "src"
    graph: dict[str, set[str]] = {}
    for path in sorted((root / "aquifer").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in node.body
            for n in ast.walk(child)
        }
        names: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        graph[module] = {n for n in names if n.split(".")[0] in ("aquifer", "pipelines")}
    return graph


def test_the_library_never_imports_the_code_location_except_the_cli() -> None:
    offenders = {m: sorted(i for i in deps if i.startswith("pipelines")) for m, deps in _imports().items()}
    assert {m: d for m, d in offenders.items() if d} == {"aquifer.cli.data": ["pipelines.runs"]}


def test_no_import_cycle_between_library_modules() -> None:
    graph = _imports()
    modules = set(graph)
    edges = {m: {d for d in deps if d in modules and d != m} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_library_module_is_a_giant() -> None:
    """One concept per module: none past ~600 lines (the sample's prose lives in data files, sample/banks/*.json)."""
    from aquifer.settings import PROJECT_ROOT

    sizes = {
        p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (PROJECT_ROOT / "src/aquifer").rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 600} == {}
