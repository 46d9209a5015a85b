"""Command-line entry points of l1db, and what every entry point shares."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import driver_error_reason

__all__ = ["quiet_broken_pipe", "report_error", "input_file_problem"]


def quiet_broken_pipe(main: Callable[..., int]) -> Callable[..., int]:
    """Make ``main`` end quietly when its reader goes away (``tool | head``).

    Without this, Python prints a traceback for the BrokenPipeError, and
    again when it flushes stdout at exit.
    """

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        try:
            return main(*args, **kwargs)
        except BrokenPipeError:
            # Point stdout at /dev/null so that the flush at exit cannot fail too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1

    return wrapper


def report_error(prog: str, exc: Exception, expected: tuple[type[Exception], ...]) -> int:
    """Say an expected error, or a database driver's, in one line on stderr; return exit code 1.

    Anything else is raised again: a bug keeps its traceback.
    """
    if isinstance(exc, expected):
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    reason = driver_error_reason(exc)
    if reason is None:
        raise exc
    print(f"{prog}: database error: {reason}", file=sys.stderr)
    return 1


def input_file_problem(paths: Iterable[str | os.PathLike], what: str) -> str | None:
    """The one-line problem with the first of ``paths`` that is not a readable file, or `None`.

    ``what`` names the kind of file in the message (``"log file"``).
    """
    for path in paths:
        if Path(path).is_dir():
            return f"{path}: is a directory, not a {what}"
        if not Path(path).is_file():
            return f"no such {what}: {path}"
    return None
