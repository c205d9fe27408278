"""Where a table is written: the checked target, the Arrow type of each kind of column,
and the machine's refusal to write it told with its path."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..errors import EnvironmentFailure
from ..schema import Kind

__all__ = ["ARROW_TYPES", "Target", "failed"]


ARROW_TYPES = {
    Kind.TEXT: pa.string(),
    Kind.INTEGER: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where the output goes, checked before anything is asked of Spotify."""

    display: str
    format: str
    path: str | None  # None: standard output
    direct: bool  # write straight into it (a device or a FIFO): no temporary file


def failed(exc: OSError, target: Target) -> EnvironmentFailure:
    """The output could not be written: the machine's failure, told with its path. What
    was there before stays as it was (the run wrote to a temporary file)."""
    where = "standard output" if target.path is None else target.display
    failure = EnvironmentFailure.from_os(exc, "cannot write the output", where)
    if target.path is not None and not target.direct:
        failure.args = (f"{failure}; {target.display} was left as it was",)
    return failure
