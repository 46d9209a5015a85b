"""Command-line tool `ap_proto` (not implemented yet)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    print("ap_proto: not implemented yet", file=sys.stderr)
    return 2
