"""The files a run touches, told apart by what they are, not by how they are spelled.

``in.csv``, ``./in.csv``, ``sub/../in.csv``, a symbolic link to it and a hard link to it
are one file: a run that writes one of them while it reads another destroys the user's
input. :func:`check_places` compares every file a run reads and writes by identity
(device and inode of the file, or of the folder a new file will be made in, and its
name) before the first request, and refuses a clash naming both options.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .database import DatabaseURL
from .errors import InputError

__all__ = [
    "Place",
    "cache_places",
    "check_places",
    "clashes_with",
    "file_places",
    "is_special",
    "remove_earlier",
]


@dataclass(frozen=True, slots=True)
class Place:
    """A file (or, with ``folder``, a folder of files) that a run reads or writes.
    ``option`` names it in messages (``-o``, ``--report``, ``the input``)."""

    option: str
    path: str | os.PathLike[str] | None  # None: not given this run
    writes: bool
    folder: bool = False  # read as a whole folder: every file below it is read
    kept: bool = False  # the user's store (the cache): in a clash, the other is renamed


_Identity = tuple[object, ...]


def cache_places(
    cache: str | os.PathLike[str] | DatabaseURL | None, option: str = "cache="
) -> list[Place]:
    """The files of a SQLite cache: the database, its journal and shared memory, and the
    token file kept beside it. All are written while a run has the cache open. A
    database cache has none."""
    if cache is None or isinstance(cache, DatabaseURL):
        return []
    folder, name = os.path.split(os.fspath(cache))
    return [
        Place(option, cache, writes=True, kept=True),
        Place(f"{option} journal", os.path.join(folder, f"{name}-wal"), True, kept=True),
        Place(f"{option} shared memory", os.path.join(folder, f"{name}-shm"), True, kept=True),
        Place(
            f"the token file beside {option}", os.path.join(folder, "tokens.json"), True, kept=True
        ),
    ]


def _identity(path: str | os.PathLike[str]) -> _Identity | None:
    """What ``path`` is: an existing file's device and inode (links followed); for a file
    not made yet, its folder's device and inode and its name. None for standard input or
    output, the null device (any number of writers may share it), or a folder that does
    not exist (the writers' own checks refuse that)."""
    text = os.fspath(path)
    if text in ("", "-"):
        return None
    try:
        found = os.stat(text)
    except FileNotFoundError:
        found = None
    except OSError:
        return None
    if found is not None:
        if stat.S_ISCHR(found.st_mode) and _is_null(found):
            return None
        return ("file", found.st_dev, found.st_ino)
    real = os.path.realpath(text)
    folder, name = os.path.split(real)
    try:
        parent = os.stat(folder)
    except OSError:
        return None
    return ("new", parent.st_dev, parent.st_ino, name)


def _is_null(found: os.stat_result) -> bool:
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (null.st_dev, null.st_ino)


def remove_earlier(path: str | os.PathLike[str]) -> None:
    """Remove the file at ``path`` that an earlier run wrote, so that what is there after
    this run is this run's, or nothing. A device or a FIFO is left as it is."""
    if not is_special(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _inside(path: str | os.PathLike[str], folder: _Identity) -> bool:
    """Whether ``path`` is (or would be made) anywhere below the folder ``folder``."""
    current = os.path.dirname(os.path.realpath(os.fspath(path)))
    while True:
        try:
            found = os.stat(current)
        except OSError:
            found = None
        if found is not None and ("file", found.st_dev, found.st_ino) == folder:
            return True
        parent = os.path.dirname(current)
        if parent == current:
            return False
        current = parent


def is_special(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` exists and is not a regular file or a folder (a device such as
    ``/dev/null``, a FIFO, a socket): written in place, never replaced."""
    try:
        mode = os.stat(os.fspath(path)).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_places(places: Iterable[Place]) -> None:
    """Refuse (:class:`InputError`) a file the run writes that is a file it reads, or
    another file it writes; or that lies inside a folder it reads."""
    given = [(p, p.path) for p in places if p.path is not None]
    known = [(place, path, _identity(path)) for place, path in given]
    for i, (first, first_path, one) in enumerate(known):
        for second, second_path, other in known[i + 1 :]:
            if not (first.writes or second.writes):
                continue
            if one is not None and one == other:
                raise InputError(_clash(first, second))
            pairs = ((first, one, second, second_path), (second, other, first, first_path))
            for folder, ident, inside, inside_path in pairs:
                inward = folder.folder and inside.writes and ident is not None
                if inward and _inside(inside_path, ident):  # type: ignore[arg-type]
                    raise InputError(_clash(inside, folder, within=True))


def _clash(first: Place, second: Place, *, within: bool = False) -> str:
    a, b = os.fspath(first.path or ""), os.fspath(second.path or "")
    if within:
        return (
            f"{a} ({first.option}) is inside {b} ({second.option}), a folder the run reads: "
            "writing there would change what it reads (and the next run would read it as "
            f"input). Name a file outside {b} for {first.option}"
        )
    # Name the writer to change: not the cache; of two others, the later option.
    if not first.writes or (second.writes and not second.kept):
        first, second, a, b = second, first, b, a
    does = "writes" if second.writes else "reads"
    return (
        f"{a} ({first.option}) is the same file as {b} ({second.option}), which the run "
        f"{does} too: writing one would destroy the other. Name another file for "
        f"{first.option}"
    )


def clashes_with(one: Place, others: Iterable[Place]) -> bool:
    """Whether ``one`` clashes with any of ``others`` (see :func:`check_places`)."""
    for other in others:
        try:
            check_places([one, other])
        except InputError:
            return True
    return False


def file_places(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    cache: os.PathLike[str] | DatabaseURL | None,
    written: Mapping[str, str | os.PathLike[str] | None],
    reads: Mapping[str, str | os.PathLike[str] | None],
) -> list[Place]:
    """What a file's run reads and writes, for :func:`check_places` before the first
    request (and, by the command, before the cache is opened): ``output``, the cache and
    ``written`` (by option) are written; ``input`` (or every file below that folder) and
    ``reads`` (by option) are read."""
    return [
        Place("input=", input, writes=False, folder=os.path.isdir(input)),
        Place("output=", output, writes=True),
        *(Place(option, path, writes=True) for option, path in written.items()),
        *(Place(option, path, writes=False) for option, path in reads.items()),
        *cache_places(cache),
    ]
