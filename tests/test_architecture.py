"""The dependency rules of DESIGN.md, checked with import-linter on every test run, and the
shape of the house: no import circle, no module past 400 lines, every package saying what it holds."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "commands")
LONGEST = 400


def test_import_contracts_hold():
    # bot -> commands only; commands never imports Slack, the scheduler or bot; only
    # commands.pg touches psycopg and PostgreSQL's tools; capabilities import each other
    # only downwards; the Block Kit renderers import no surface.
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def _circles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(imports[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                group.append(other)
                if other == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_one_that_imports_it_back():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    ours = {m for m in graph.modules if m.split(".")[0] in PACKAGES}
    imports = {m: graph.find_modules_directly_imported_by(m) & ours for m in ours}
    assert _circles(imports) == []


def test_circles_are_found_when_there_are_some():
    # The finder itself: a circle of three and a pair, beside a module outside both.
    imports = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert _circles(imports) == [["a", "b", "c"], ["e", "f"]]


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): n
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > LONGEST}
    assert long == {}


def test_every_package_says_what_lives_there_and_what_it_may_import():
    silent = []
    for package in PACKAGES:
        for init in sorted((ROOT / package).rglob("__init__.py")):
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            if len(doc.strip().splitlines()) < 2 or "import" not in doc:
                silent.append(str(init.relative_to(ROOT)))
    assert silent == []


def test_the_contracts_that_list_commands_modules_name_every_one():
    # "only commands.pg touches psycopg" and "only commands.objstore touches boto3" list each
    # package and module of commands by name: a new module left off would escape its contract.
    import tomllib
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    commands = ROOT / "commands"
    every = {f"commands.{path.stem if path.is_file() else path.name}" for path in commands.iterdir()
             if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()}
    for name, adapter in (("only the Postgres layer", "commands.pg"), ("only the object storage", "commands.objstore")):
        listed = next(set(c["source_modules"]) for c in contracts if c["name"].startswith(name))
        assert every - {adapter} - listed == set(), name
