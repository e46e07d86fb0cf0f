"""The layout's promises, read from the source with ``ast``: imports run one way (listeners and
tasks depend on the events contract, never on each other; the project package depends on no app
at import time; the simulator and the benchmark are used by the product, never the reverse),
and no product module grows past what one reader can hold."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT

PRODUCT = ("events", "listeners", "tasks", "ingestor_project")
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    module: str  # the source module, e.g. "listeners.batching"
    target: str  # the imported module, e.g. "tasks.schema"
    line: int
    at_load: bool  # runs when the module is imported (not inside a function body)

    @property
    def package(self) -> str:
        return self.target.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return [".".join([*base, *([node.module] if node.module else [])])]


def imports_of(module: str, path: Path) -> list[Import]:
    found: list[Import] = []
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, at_load: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue  # never runs
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(child, module, is_package):
                    found.append(Import(module, target, child.lineno, at_load))
            inner = at_load and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


def all_imports(package: str) -> list[Import]:
    return [imp for module, path in modules(package) for imp in imports_of(module, path)]


def violations(package: str, forbidden: set[str], *, at_load_only: bool = False) -> list[str]:
    return [
        str(imp)
        for imp in all_imports(package)
        if imp.package in forbidden and (imp.at_load or not at_load_only)
    ]


def test_the_import_reader_sees_imports_in_functions_and_relative_ones(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(
        "import a.b\nfrom . import c\ntry:\n    from d import e\nexcept ImportError:\n    pass\n"
        "def f():\n    import g\nclass K:\n    import h\n"
    )
    found = {(i.target, i.at_load) for i in imports_of("pkg.mod", package / "mod.py")}
    assert found == {("a.b", True), ("pkg", True), ("d", True), ("g", False), ("h", True)}


def test_tasks_never_import_listeners():
    assert violations("tasks", {"listeners"}) == []


def test_listeners_never_import_tasks():
    assert violations("listeners", {"tasks"}) == []


def test_the_project_package_imports_no_app_at_load():
    offenders = violations("ingestor_project", {"listeners", "tasks", "hasim"}, at_load_only=True)
    assert offenders == [], "import these inside the function that needs them"


def test_the_event_contract_stands_alone():
    ours = {"listeners", "tasks", "ingestor_project", "hasim", "bench", "tests", "django"}
    assert violations("events", ours) == []


def test_the_product_never_loads_the_simulator_or_the_benchmark():
    offenders = [
        offender
        for package in PRODUCT
        for offender in violations(package, {"hasim", "bench", "tests"}, at_load_only=True)
    ]
    assert offenders == []


def test_no_product_module_is_over_400_lines():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in PRODUCT
        for _, path in modules(package)
    }
    too_long = sorted(f"{name} ({n} lines)" for name, n in sizes.items() if n > MAX_LINES)
    assert too_long == [], f"split these modules, each into modules of one job: {too_long}"
