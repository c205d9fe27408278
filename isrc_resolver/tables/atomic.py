"""Temporary files beside the file they will replace: named for their process, so that
the leftovers of a process that died (``kill -9``) can be told apart and swept."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from pathlib import Path

__all__ = ["PARTIAL", "temporary_beside", "umask"]

PARTIAL = ".partial"  # the suffix of a file still being written


def temporary_beside(path: str) -> str:
    """A new temporary file next to ``path``, named for this process; the leftovers of
    processes that died (``kill -9``) are swept first."""
    directory, name = os.path.split(path)
    for stale in Path(directory).glob(f".{glob.escape(name)}.*{PARTIAL}"):
        pid = stale.name[len(name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=PARTIAL, dir=directory)
    os.close(fd)
    return tmp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def umask() -> int:
    """The process's file mode mask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
