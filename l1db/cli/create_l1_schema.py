"""Command-line tool `create_l1_schema` (not implemented yet)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    print("create_l1_schema: not implemented yet", file=sys.stderr)
    return 2
