"""The command line: ``isrc-resolve`` and its ``plan`` and ``cache`` commands."""

from .main import EXIT_CODES, build_parser, main
from .run import demo_sample

__all__ = ["EXIT_CODES", "build_parser", "demo_sample", "main"]
