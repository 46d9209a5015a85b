"""Errors every L1 backend raises, and the one-line reason of a driver's error.

The command-line tools catch `L1dbError` and print its message; a backend
registers the exception types of its driver with `register_driver_errors` so
that any driver error that escapes still becomes one line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "L1dbError",
    "DatabaseUnreachable",
    "SchemaError",
    "register_driver_errors",
    "driver_error_reason",
]


class L1dbError(RuntimeError):
    """Base of the L1 API's own errors; the message is one line for a user."""


class DatabaseUnreachable(L1dbError):
    """The database cannot be reached; the message never holds a password."""


class SchemaError(L1dbError):
    """The database schema is missing or does not match the configuration."""


_TRANSLATORS: list[tuple[tuple[type[BaseException], ...], Callable[[BaseException], str]]] = []


def register_driver_errors(types: tuple[type[BaseException], ...], reason: Callable[[BaseException], str]) -> None:
    """Declare a driver's exception ``types`` and how to say one in a line.

    Called by each backend module when it is imported.
    """
    _TRANSLATORS.append((types, reason))


def driver_error_reason(exc: BaseException) -> str | None:
    """One-line reason of a registered driver's error, or `None` for any other exception."""
    for types, reason in _TRANSLATORS:
        if isinstance(exc, types):
            return reason(exc)
    return None
