"""Command-line tool `gen_sources` (not implemented yet)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    print("gen_sources: not implemented yet", file=sys.stderr)
    return 2
