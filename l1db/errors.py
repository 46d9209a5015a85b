"""Errors every L1 backend raises, the one-line reason of a driver's error, and which errors are worth a retry.

The command-line tools catch `L1dbError` and print its message; a backend
registers the exception types of its driver with `register_driver_errors` so
that any driver error that escapes still becomes one line, never a traceback.

The same registration says which of the driver's errors are connection-level
(the server restarted or went away, a failover, a node that stopped
answering) or a transaction the server rolled back to end a conflict (a
deadlock): `is_retryable` is true for those, and for `DatabaseUnreachable`.
A client that meets one may reconnect and try the same work again; any other
error (a constraint violated, a bad statement) would fail again the same way.
Each backend classifies its own driver's errors, next to their registration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

__all__ = [
    "L1dbError",
    "DatabaseUnreachable",
    "SchemaError",
    "register_driver_errors",
    "driver_error_reason",
    "error_chain",
    "is_retryable",
    "describe_error",
]


class L1dbError(RuntimeError):
    """Base of the L1 API's own errors; the message is one line for a user."""


class DatabaseUnreachable(L1dbError):
    """The database cannot be reached; the message never holds a password."""


class SchemaError(L1dbError):
    """The database schema is missing or does not match the configuration.

    Parameters
    ----------
    problem : `str`
        What is wrong with the schema.
    advice : `str`, optional
        What to do about it (e.g. run create_l1_schema), after the problem in
        the message; kept apart so that a caller to whom it does not apply
        (a restore) can say the problem alone.
    """

    def __init__(self, problem: str, advice: str | None = None) -> None:
        super().__init__(f"{problem}; {advice}" if advice else problem)
        self.problem = problem


_Reason = Callable[[BaseException], str]
_Retryable = Callable[[BaseException], bool]
_TRANSLATORS: list[tuple[tuple[type[BaseException], ...], _Reason, _Retryable | None]] = []


def register_driver_errors(types: tuple[type[BaseException], ...], reason: _Reason,
                           retryable: _Retryable | None = None) -> None:
    """Declare a driver's exception ``types``, how to say one in a line, and which are connection-level.

    Called by each backend module when it is imported.

    Parameters
    ----------
    types : `tuple` of exception types
        The driver's exception classes.
    reason : callable
        One line (no SQL, no traceback, no password) saying what went wrong.
    retryable : callable, optional
        True for an error of these types that a reconnect and a new attempt
        may overcome (the connection was lost or refused, the server shut
        down, a node timed out); none are when not given.
    """
    _TRANSLATORS.append((types, reason, retryable))


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during (``__cause__``, ``__context__``), once each.

    A driver's error is sometimes only the cause of what escapes: an error
    raised while the driver cleaned up after a lost connection, say.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__]


def _registered(exc: BaseException) -> tuple[BaseException, _Reason, _Retryable | None] | None:
    for link in error_chain(exc):
        for types, reason, retryable in _TRANSLATORS:
            if isinstance(link, types):
                return link, reason, retryable
    return None


def driver_error_reason(exc: BaseException) -> str | None:
    """One-line reason of a registered driver's error (``exc`` or one it was raised from), or `None`."""
    found = _registered(exc)
    return None if found is None else found[1](found[0])


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a connection-level error worth a retry."""
    for link in error_chain(exc):
        if isinstance(link, DatabaseUnreachable):
            return True
        for types, _reason, retryable in _TRANSLATORS:
            if retryable is not None and isinstance(link, types) and retryable(link):
                return True
    return False


def describe_error(exc: BaseException) -> tuple[str, str]:
    """Class name and one-line reason of an error, for a failure record and a message.

    The class is the driver's own (``AdminShutdown``, ``OperationalError``,
    ``NoHostAvailable``) where ``exc`` wraps one or was raised from one.
    """
    found = _registered(exc)
    if found is None:
        lines = str(exc).strip().splitlines()
        return type(exc).__name__, lines[0] if lines else type(exc).__name__
    link, reason, _ = found
    original = getattr(link, "orig", None)
    return type(original if isinstance(original, BaseException) else link).__name__, reason(link)
