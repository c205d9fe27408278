"""The shape of the code: folders that keep their layers, no import circles, small
functions, classes and modules, no dependency's private parts, and a CLI that starts
without the heavy libraries.

The layers and the forbidden imports are import-linter contracts in ``pyproject.toml``;
circles and floors are measured here on grimp's graph. Both count every import: those
inside functions and under ``TYPE_CHECKING`` too.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

import isrc_resolver

PACKAGE = Path(isrc_resolver.__file__).parent
TESTS = Path(__file__).parent
ROOT = PACKAGE.parent
MAX_FLOORS = 9  # cli, sync, resolver, fronts, pipeline, stages, settings, schema, core


def test_the_import_contracts_in_pyproject_hold() -> None:
    """Layers, independence, acyclic siblings, and aiohttp / sqlite3 / pandas / pyarrow
    each in its own folder (see ``[tool.importlinter]``). In a process of its own:
    import-linter sets up logging for itself, which would silence ours for later tests."""
    code = (
        "from importlinter.cli import lint_imports\n"
        "raise SystemExit(lint_imports(config_filename='pyproject.toml', no_cache=True))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "broken" in out.stdout and " 0 broken" in out.stdout


@functools.cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("isrc_resolver", exclude_type_checking_imports=False)


def _faces(graph: grimp.ImportGraph) -> set[str]:
    """The packages' ``__init__`` modules: faces that re-export, not floors."""
    return {m for m in graph.modules if (PACKAGE.parent / m.replace(".", "/")).is_dir()}


def _circles(graph: grimp.ImportGraph) -> list[str]:
    """Each direct import whose target leads back to its importer."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            chain = graph.find_shortest_chain(importer=imported, imported=importer)
            if chain is not None:
                found.append(" -> ".join((importer, *chain)))
    return found


def _floors(graph: grimp.ImportGraph) -> dict[str, int]:
    """Each module's floor: 1 for one that imports nothing of the package, else one more
    than the highest it imports. An import of a face counts as imports of what it
    re-exports. (Called only on an acyclic graph.)"""
    faces = _faces(graph)

    def below(module: str) -> Iterable[str]:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported in faces:
                yield from below(imported)
            else:
                yield imported

    @functools.cache
    def floor(module: str) -> int:
        return 1 + max((floor(m) for m in below(module)), default=0)

    return {m: floor(m) for m in graph.modules if m not in faces}


def test_no_import_circle() -> None:
    assert _circles(_graph()) == []


def test_at_most_eight_floors() -> None:
    assert _circles(_graph()) == []  # floors are counted on an acyclic graph only
    floors = _floors(_graph())
    top = max(floors.values())
    assert top <= MAX_FLOORS, sorted(m for m, f in floors.items() if f == top)


def test_the_circle_and_floor_checks_can_fail() -> None:
    graph = grimp.build_graph("isrc_resolver", exclude_type_checking_imports=False)
    graph.add_import(importer="isrc_resolver.models", imported="isrc_resolver.schema")
    assert any("isrc_resolver.models -> isrc_resolver.schema" in c for c in _circles(graph))
    graph.remove_import(importer="isrc_resolver.models", imported="isrc_resolver.schema")
    # A tower of modules, each importing the one before it, is as many floors high.
    previous = "isrc_resolver.models"
    for n in range(MAX_FLOORS):
        graph.add_module(f"isrc_resolver.tower{n}")
        graph.add_import(importer=f"isrc_resolver.tower{n}", imported=previous)
        previous = f"isrc_resolver.tower{n}"
    assert max(_floors(graph).values()) > MAX_FLOORS


def test_package_faces_only_re_export() -> None:
    """A package's ``__init__`` imports and lists names; the root adds its lazy lookup."""
    allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.Expr, ast.If)
    for init in sorted(PACKAGE.rglob("__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        body = [n for n in tree.body if not isinstance(n, allowed)]
        if init.parent == PACKAGE:  # the root's __getattr__ and __dir__ import on first use
            body = [n for n in body if getattr(n, "name", "") not in ("__getattr__", "__dir__")]
        assert body == [], init


def _definitions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node for node in ast.walk(tree) if isinstance(node, kinds)]


def _length(node: ast.AST) -> int:
    return int(node.end_lineno or 0) - int(getattr(node, "lineno", 0)) + 1


def _too_long(limit_function: int, limit_class: int, limit_module: int) -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit_module:
            out.append(f"{name} ({lines} lines)")
        for node in _definitions(path):
            limit = limit_class if isinstance(node, ast.ClassDef) else limit_function
            if _length(node) > limit:
                out.append(f"{name}:{node.name} ({_length(node)} lines)")
    return out


def test_no_function_over_60_lines_class_over_250_or_module_over_500() -> None:
    assert _too_long(60, 250, 500) == []


def test_the_size_check_can_fail() -> None:
    assert _too_long(20, 60, 200)  # the package has functions, classes and modules above these


def test_the_resolver_is_a_thin_front() -> None:
    (resolver,) = [n for n in _definitions(PACKAGE / "resolver.py") if n.name == "Resolver"]
    assert _length(resolver) <= 250


# Private names of aiolimiter, aiohttp and asyncio that the code once reached for.
_PRIVATE = re.compile(
    r"\._(level|last_check|rate_per_sec|leak|server|run_once|scheduled|when|ready|waiters)\b"
)


@pytest.mark.parametrize("folder", [PACKAGE, TESTS], ids=["package", "tests"])
def test_no_private_attribute_of_a_dependency_is_touched(folder: Path) -> None:
    hits = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(folder.rglob("*.py"))
        if path.name != "test_architecture.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _PRIVATE.search(line)
    ]
    assert hits == []


def test_the_private_name_check_can_fail() -> None:
    assert _PRIVATE.search("sockets = site._server.sockets")
    assert _PRIVATE.search("self._limiter._leak()")
    assert not _PRIVATE.search("self._last_probe = now")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["cache", "--help"]])
def test_help_and_version_load_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from isrc_resolver.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('pandas', 'pyarrow', 'aiohttp') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "HEAVY []"


def test_importing_the_library_loads_nothing_heavy() -> None:
    code = (
        "import sys, isrc_resolver\n"
        "print([m for m in ('pandas', 'pyarrow', 'aiohttp') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The files besides a store's own folder, fake/ and the registry that may name it, at most
# two each: provider.py documents the spec with examples, and the settings' docstrings and
# messages give examples of the stores' own keywords.
NAMED_ELSEWHERE = {
    "deezer": {"provider.py", "settings.py"},
    "tidal": {"provider.py", "settings.py"},
    "apple": {"provider.py"},
    "musicbrainz": {"provider.py"},
}


def _naming(name: str, root: Path) -> set[str]:
    """The package files outside ``name``'s folder, fake/ and the registry that name it."""
    found = set()
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith((f"{name}/", "fake/")) or relative == "providers.py":
            continue
        if name in path.read_text(encoding="utf-8").lower():
            found.add(relative)
    return found


def test_a_store_is_named_only_in_its_folder_and_the_registry() -> None:
    from isrc_resolver.provider import catalogues

    assert set(catalogues()) == set(NAMED_ELSEWHERE)
    for name, allowed in NAMED_ELSEWHERE.items():
        assert len(allowed) <= 2
        assert _naming(name, PACKAGE) <= allowed, name


def test_the_store_name_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "deezer").mkdir()
    (tmp_path / "deezer" / "client.py").write_text("DEEZER = 1\n")
    (tmp_path / "pipeline.py").write_text("if provider == 'deezer': pass\n")
    assert _naming("deezer", tmp_path) == {"pipeline.py"}
