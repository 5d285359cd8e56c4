"""The product code's shape: no import cycles, no huge functions or files, layers kept apart.

The import graph is read from the source with ``ast`` (nothing is imported): every
``import`` and ``from ... import``, absolute or relative, at any depth (inside
functions and ``if TYPE_CHECKING:`` blocks too, so an annotation cannot hide a
circle). ``from pkg import name`` counts as importing ``pkg.name`` when that is a
module; ``import a.b.c`` counts as importing ``a.b.c`` only, not the packages above
it. The first tests below run the same functions on tiny synthetic packages,
so each check is shown able to fail.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("server", "pipelines", "models", "fleet")

MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 600

# Explicit exceptions to the size limits, each with the reason it is tolerated.
# Keys: "path/to/file.py" for a file, "path/to/file.py::Qualified.name" for a function.
SIZE_ALLOWED: dict[str, str] = {}

# (importing package, forbidden package, why)
LAYER_RULES: tuple[tuple[str, str, str], ...] = (
    *((pkg, "bench", "benchmarks are tooling, not product") for pkg in PRODUCT_PACKAGES),
    *((pkg, "tests", "the product does not depend on its tests") for pkg in PRODUCT_PACKAGES),
    ("pipelines", "server", "the runtime does not depend on the HTTP layer"),
    ("models", "server", "the runtime does not depend on the HTTP layer"),
    ("fleet", "server", "the runtime does not depend on the HTTP layer"),
    ("models", "pipelines", "model adapters sit below the pipelines that drive them"),
)


# --- reading the source ------------------------------------------------------------


def discover(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the given packages."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name a (possibly relative) ``from`` import refers to."""
    if not level:
        return module or ""
    base = importer.split(".")
    # In a package's __init__, "." is the package itself; in a module, its parent.
    keep = len(base) - level + (1 if is_package else 0)
    if keep <= 0:
        raise ValueError(f"{importer}: relative import beyond the top-level package")
    return ".".join(base[:keep] + ([module] if module else []))


def imported_names(importer: str, path: Path, known: set[str]) -> set[str]:
    """Every absolute module name ``importer`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, importer, is_package)
            names.add(base)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    names.add(submodule)
    names.discard("")
    return names


def _owning_module(name: str, known: set[str]) -> str | None:
    """The longest prefix of ``name`` that is one of ``known`` (``a.b.C`` -> ``a.b``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def import_graph(root: Path, packages: tuple[str, ...]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between the given modules, every name each module imports)."""
    modules = discover(root, packages)
    known = set(modules)
    raw = {name: imported_names(name, path, known) for name, path in modules.items()}
    edges: dict[str, set[str]] = {}
    for name, imported in raw.items():
        targets = {_owning_module(n, known) for n in imported}
        edges[name] = {t for t in targets if t is not None and t != name}
    return edges, raw


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only components of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in graph:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest import loop through the component's first module, e.g. [a, b, a]."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    return component  # unreachable for a real component


def cycle_report(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"cycle among {', '.join(c)}: {' -> '.join(one_cycle(graph, c))}"
        for c in strongly_connected(graph)
    ]


def layer_violations(raw: dict[str, set[str]], rules=LAYER_RULES) -> list[str]:
    def within(name: str, package: str) -> bool:
        return name == package or name.startswith(package + ".")

    found = []
    for importer, names in sorted(raw.items()):
        for source, forbidden, why in rules:
            if not within(importer, source):
                continue
            for name in sorted(n for n in names if within(n, forbidden)):
                found.append(f"{importer} imports {name} ({why})")
    return found


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) for every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def oversized(
    root: Path,
    packages: tuple[str, ...],
    max_function: int = MAX_FUNCTION_LINES,
    max_file: int = MAX_FILE_LINES,
    allowed: dict[str, str] | None = None,
) -> dict[str, str]:
    """Allow-list key -> what is too big, for everything over a limit and not allowed."""
    allowed = SIZE_ALLOWED if allowed is None else allowed
    found: dict[str, str] = {}
    for path in discover(root, packages).values():
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > max_file and rel not in allowed:
            found[rel] = f"{rel}: {lines} lines (limit {max_file})"
        for name, node in _functions(ast.parse(text, filename=str(path))):
            length = node.end_lineno - node.lineno + 1
            key = f"{rel}::{name}"
            if length > max_function and key not in allowed:
                found[key] = f"{key}: {length} lines (limit {max_function})"
    return found


# --- the checks can fail: synthetic packages ----------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_graph_sees_relative_nested_and_type_checking_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import b\n",
        "pkg/sub/__init__.py": "from . import b\n",
        "pkg/sub/b.py": "def f():\n    from ..c import thing\n",
        "pkg/c.py": "import pkg.a as alias\nthing = 1\n",
        "other/__init__.py": "",
        "other/d.py": "from pkg import a\nimport pkg.sub.b\nimport json\n",
    })
    edges, raw = import_graph(tmp_path, ("pkg", "other"))
    assert edges == {
        "pkg": set(),
        "pkg.a": {"pkg.sub", "pkg.sub.b"},
        "pkg.c": {"pkg.a"},
        "pkg.sub": {"pkg.sub.b"},
        "pkg.sub.b": {"pkg.c"},
        "other": set(),
        "other.d": {"pkg", "pkg.a", "pkg.sub.b"},
    }
    assert "json" in raw["other.d"]
    assert strongly_connected(edges) == [["pkg.a", "pkg.c", "pkg.sub", "pkg.sub.b"]]
    assert cycle_report(edges) == [
        "cycle among pkg.a, pkg.c, pkg.sub, pkg.sub.b: pkg.a -> pkg.sub.b -> pkg.c -> pkg.a"
    ]


def test_graph_without_cycles_reports_none(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "from .a import x\n",
        "pkg/a.py": "from .b import y as x\n",
        "pkg/b.py": "y = 1\n",
    })
    edges, _ = import_graph(tmp_path, ("pkg",))
    assert edges == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert cycle_report(edges) == []


def test_layer_rules_catch_forbidden_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "models/__init__.py": "",
        "models/m.py": "def late():\n    from pipelines.config import Config\n",
        "pipelines/__init__.py": "",
        "pipelines/config.py": "import bench.harness\nfrom server import app\n",
        "server/__init__.py": "",
        "server/app.py": "from pipelines import config\n",
    })
    _, raw = import_graph(tmp_path, ("models", "pipelines", "server"))
    assert layer_violations(raw) == [
        "models.m imports pipelines.config (model adapters sit below the pipelines that drive them)",
        "pipelines.config imports bench.harness (benchmarks are tooling, not product)",
        "pipelines.config imports server (the runtime does not depend on the HTTP layer)",
        "pipelines.config imports server.app (the runtime does not depend on the HTTP layer)",
    ]


def test_size_limits_catch_long_functions_and_files(tmp_path: Path) -> None:
    long_body = "".join(f"    x{i} = {i}\n" for i in range(5))
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/big.py": (
            "class C:\n"
            "    async def method(self):\n" + "    " + long_body.replace("\n    ", "\n        ")
            + "def short():\n    pass\n"
            + "def outer():\n    def inner():\n" + long_body.replace("    ", "        ") + "    return inner\n"
        ),
    })
    found = oversized(tmp_path, ("pkg",), max_function=5, max_file=10, allowed={})
    assert list(found.values()) == [
        "pkg/big.py: 17 lines (limit 10)",
        "pkg/big.py::C.method: 6 lines (limit 5)",
        "pkg/big.py::outer: 8 lines (limit 5)",
        "pkg/big.py::outer.inner: 6 lines (limit 5)",
    ]
    allowed = {"pkg/big.py": "generated", "pkg/big.py::outer": "x", "pkg/big.py::outer.inner": "x"}
    assert oversized(tmp_path, ("pkg",), max_function=5, max_file=10, allowed=allowed) == {
        "pkg/big.py::C.method": "pkg/big.py::C.method: 6 lines (limit 5)",
    }


# --- the real product packages -----------------------------------------------------


@pytest.fixture(scope="module")
def product_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return import_graph(REPO_ROOT, PRODUCT_PACKAGES)


def test_product_packages_are_found(product_graph) -> None:
    edges, _ = product_graph
    assert set(PRODUCT_PACKAGES) <= set(edges)
    assert "server.app" in edges and "pipelines.config" in edges


def test_no_import_cycles(product_graph) -> None:
    edges, _ = product_graph
    cycles = cycle_report(edges)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_layers_are_kept_apart(product_graph) -> None:
    _, raw = product_graph
    violations = layer_violations(raw)
    assert not violations, "forbidden imports:\n" + "\n".join(violations)


def test_no_huge_functions_or_files() -> None:
    found = oversized(REPO_ROOT, PRODUCT_PACKAGES)
    assert not found, (
        "over the size limits (split them, or add to SIZE_ALLOWED with a reason):\n" + "\n".join(found.values())
    )


def test_size_allow_list_has_no_stale_entries() -> None:
    """An allow-listed file or function that is gone, or back under the limit, must leave the list."""
    still_needed = oversized(REPO_ROOT, PRODUCT_PACKAGES, allowed={})
    stale = sorted(set(SIZE_ALLOWED) - set(still_needed))
    assert not stale, f"SIZE_ALLOWED entries no longer needed: {stale}"
