"""The shape of the package: imports go one way, down, and the library never needs the CLI.

The import graph is read from the source with ``ast``: every ``import`` of a ``resque``
module, at module level or inside a function (a lazy import is still a dependency), except
those under ``if TYPE_CHECKING:`` (annotations only). String imports (``importlib``, the
CLI's lazy verbs, ``resque.__getattr__``) are not dependencies at import time and are not
counted.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import resque

SRC = Path(resque.__file__).resolve().parent
Graph = dict[str, set[str]]

# Only the command line needs these: click, and the `resque demo` verb's module.
CLI_ONLY = {"resque.__main__", "resque.demo", "click"}
# What a worker process must never load.
NOT_IN_A_WORKER = ("resque.web", "resque.scheduler", "resque.pool", "resque.admin",
                   "resque.facade", "click", "starlette", "jinja2", "uvicorn", "croniter",
                   "yaml", "resque.contrib", "django", "fastapi",
                   # the asyncio client is the app's: a -c N worker awaits async def jobs on
                   # a loop of its own (resque.execution.aio) without it
                   "resque.aio")
# (Not "opentelemetry": redis-py 8 loads it by itself when it is installed, for its own metrics.)


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_cli(module: str) -> bool:
    # Django finds its management commands by their place: they are command-line modules too.
    return (module in CLI_ONLY or module == "resque.cli" or module.endswith(".cli")
            or ".management.commands." in module)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Imports(ast.NodeVisitor):
    """Dotted names a module imports, ``if TYPE_CHECKING:`` blocks left out."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the package, up level - 1
            anchor = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            child = f"{base}.{alias.name}"
            self.found.add(child if child in self.known else base)


def import_graph(root: Path = SRC) -> Graph:
    """Module -> the modules it imports: ``resque`` modules, and ``click``."""
    paths = {module_name(path, root): path for path in root.rglob("*.py")}
    known = set(paths)
    graph: Graph = {}
    for module, path in paths.items():
        visitor = _Imports(module, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        graph[module] = {name for name in visitor.found
                         if name in known or name.split(".")[0] == "click"}
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the stack, "done" after
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == "open":
                return [*stack[stack.index(following):], following]
            if following not in state:
                cycle = visit(following)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for following in graph.get(todo.pop(), ()):
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return seen


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph()


def _names(found: Iterator[str] | set[str]) -> list[str]:
    return sorted(found)


# --- the checker itself -------------------------------------------------------------------------


def test_the_cycle_finder_reports_a_cycle_and_passes_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_function_level_imports_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    package = tmp_path / "resque"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("")
    (package / "high.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from resque.typed import T\n"
        "def f():\n    from resque import low\n    from . import other\n")
    (package / "typed.py").write_text("")
    (package / "other.py").write_text("")
    assert import_graph(package)["resque.high"] == {"resque.low", "resque.other"}


def test_the_graph_holds_the_edges_we_know(graph: Graph) -> None:
    assert "resque.client" in graph["resque.worker"]
    assert "resque.client" in graph["resque.facade"]
    assert "resque.worker" in graph["resque.facade"]  # worker(), imported on first use


# --- the shape ----------------------------------------------------------------------------------


def test_no_module_imports_itself_through_others(graph: Graph) -> None:
    assert find_cycle(graph) is None


def test_the_core_client_imports_neither_the_worker_nor_the_scheduler(graph: Graph) -> None:
    below = reachable(graph, "resque.client")
    assert _names(m for m in below if m.startswith(("resque.worker", "resque.scheduler"))) == []


@pytest.mark.parametrize("module", ["resque.worker", "resque.scheduler.process",
                                    "resque.scheduler.recurring", "resque.admin.operations",
                                    "resque.failure.operations", "resque.pool.supervisor"])
def test_the_worker_and_the_scheduler_build_on_the_client_not_the_facade(
    graph: Graph, module: str
) -> None:
    assert "resque.facade" not in reachable(graph, module)


def test_the_wire_contract_builds_only_on_the_json_time_and_error_modules(graph: Graph) -> None:
    layout = {module for module in graph if module.split(".")[:2] == ["resque", "layout"]}
    assert "resque.layout.keys" in layout
    below = reachable(graph, "resque.layout") - layout
    assert _names(below) == ["resque.errors", "resque.rubyjson", "resque.rubytime"]


def test_no_library_module_imports_a_cli_module(graph: Graph) -> None:
    offenders = {module: _names(m for m in imported if is_cli(m))
                 for module, imported in graph.items() if not is_cli(module)}
    assert {module: cli for module, cli in offenders.items() if cli} == {}


def test_a_worker_process_loads_no_web_scheduler_or_cli_module() -> None:
    code = "import json, sys, resque.worker; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = json.loads(done.stdout)
    assert "resque.worker" in loaded
    unwanted = [m for m in loaded if is_cli(m) or m.split(".")[0] in NOT_IN_A_WORKER
                or m.startswith(NOT_IN_A_WORKER)]
    assert unwanted == []
