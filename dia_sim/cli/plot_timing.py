"""Command-line tool `plot_timing` (not implemented yet)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    print("plot_timing: not implemented yet", file=sys.stderr)
    return 2
