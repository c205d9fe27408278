"""A real PostgreSQL server for the tests and benchmarks, started from the machine's server
binaries (Debian's ``postgresql`` package, which ``.ci/run`` installs) in a folder of its
own, on a free port of 127.0.0.1, with password authentication; stopped at the end.

PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user (the
package makes it), everything else stays ours.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PASSWORD", "PgServer", "find_binaries"]

USER = "isrc"
PASSWORD = "pg-S3cret:w/@rd"  # characters a URL must escape: the masking is tested on it
_QUOTED = "pg-S3cret%3Aw%2F%40rd"


def find_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, or the newest Debian version's."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2] or 0)
    )
    for folder in reversed(folders):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One server in a temporary folder. ``url(db)``: a URL with the password."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="isrc-pg-"))
        self.data = self.folder / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.folder, postgres.pw_uid, postgres.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run(
            [*self._as, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.folder,
        )

    def start(self) -> PgServer:
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            postgres = pwd.getpwnam("postgres")
            os.chown(pwfile, postgres.pw_uid, postgres.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        if not self.folder.exists():
            return  # stopped already
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
            )
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{_QUOTED}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def connections(self) -> int:
        """How many client sessions the server has now (ours included)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()
        return int(row[0]) if row else 0


@contextlib.contextmanager
def running() -> Iterator[PgServer]:
    binaries = find_binaries()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl)")
    server = PgServer(binaries)
    try:
        yield server.start()
    finally:
        server.stop()
