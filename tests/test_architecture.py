"""The shape of the code: small functions, a thin front, no dependency's private parts,
and a CLI that starts without the heavy libraries."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import isrc_resolver

PACKAGE = Path(isrc_resolver.__file__).parent
TESTS = Path(__file__).parent


def _definitions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node for node in ast.walk(tree) if isinstance(node, kinds)]


def _length(node: ast.AST) -> int:
    return int(node.end_lineno or 0) - int(getattr(node, "lineno", 0)) + 1


def test_no_function_in_the_package_is_longer_than_60_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE)}:{node.name} ({_length(node)} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in _definitions(path)
        if not isinstance(node, ast.ClassDef) and _length(node) > 60
    ]
    assert long == []


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


def test_only_io_imports_pandas_and_only_client_imports_aiohttp() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "client.py":
            assert "import aiohttp" not in text and "from aiohttp" not in text, path.name
        if path.name != "io.py":
            for lib in ("pandas", "pyarrow"):
                imports = re.findall(rf"^\s*(?:import|from) {lib}\b", text, re.MULTILINE)
                # Only under TYPE_CHECKING (annotations) anywhere else.
                assert len(imports) <= text.count("if TYPE_CHECKING:"), (path.name, lib)


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
