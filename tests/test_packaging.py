"""What users get: the built wheel, installed outside the repository, works on its own."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("isrc_resolver-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed (without its dependencies, which this environment has) into a
    folder of its own; run with it first on the path, from outside the repository."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True,
    )  # fmt: skip
    return target


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_API_URL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_holds_the_whole_package_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    package = {n for n in names if not n.startswith("isrc_resolver-")}
    assert {
        "isrc_resolver/py.typed",
        "isrc_resolver/data/sample.csv",
        "isrc_resolver/fake/server.py",
        "isrc_resolver/fake/__main__.py",
    } <= package
    assert all(n.startswith("isrc_resolver/") for n in package), package
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    check = subprocess.run(
        [sys.executable, "-m", "check_wheel_contents", str(wheel)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_installed_demo_runs_from_any_folder(installed: Path, tmp_path: Path) -> None:
    where = run_installed(
        installed, tmp_path, "-c", "import isrc_resolver; print(isrc_resolver.__file__)"
    )
    assert where.stdout.strip().startswith(str(installed)), where.stdout
    done = run_installed(installed, tmp_path, "-m", "isrc_resolver", "--demo", "-o", "out.csv")
    assert done.returncode == 0, done.stderr
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 36 and rows[0]["track"] == "CARNIVAL"
    assert "summary: rows=36" in done.stderr


def test_the_installed_fake_server_has_its_command(installed: Path, tmp_path: Path) -> None:
    done = run_installed(installed, tmp_path, "-m", "isrc_resolver.fake", "--help")
    assert done.returncode == 0, done.stderr
    assert "--window" in done.stdout


def test_the_configuration_tests_pass_against_the_installed_wheel(
    installed: Path, tmp_path: Path
) -> None:
    """tests/test_config.py (the environment, SPOTIPY_* names, column rule, Parquet read
    back by pandas, polars and duckdb, Parquet on standard input, the sync entry point in
    a running loop) run again with the wheel first on the path, not the checkout."""
    env = {**os.environ, "PYTHONPATH": str(installed), "ISRC_RESOLVER_EXPECT_FROM": str(installed)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
         "--rootdir", str(ROOT), str(ROOT / "tests" / "test_config.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
