"""The backends l1db knows: one table, the only place that knows their names.

Each row (`Backend`) says what a backend is called (``sqlite``,
``postgresql``, ``mysql``, ``cassandra``), the URL schemes that select it,
its kind (the wing that implements it: ``sql`` or ``cassandra``, also the tag
of the options that mean something only for it), and where its classes are,
by module path, so that nothing imports a wing until it is used. Everything
that used to compare backend names asks this table: the factory
(`l1db.factory.open_l1db`), the config's URL check, the command-line tools,
the scratch databases of the tests and benchmarks.

A new SQLAlchemy dialect is one more row; a new kind of database is one more
row and its wing (a package implementing `l1db.api.L1db`).

This module imports nothing from the package.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

__all__ = ["Backend", "BACKENDS", "SQL", "CASSANDRA", "KINDS", "URL_SCHEMES", "backend_for", "backend_named",
           "url_scheme"]

#: The kinds of backend, one per wing (``l1db.sql``, ``l1db.cassandra``).
SQL = "sql"
CASSANDRA = "cassandra"
KINDS = (SQL, CASSANDRA)


@dataclasses.dataclass(frozen=True)
class Backend:
    """One backend: its names, its wing and where its classes are."""

    #: Name in messages, provenance records, test ids and ``--backends`` lists.
    name: str
    #: The wing that implements it (`KINDS`); the ``backend=`` tag of its options.
    kind: str
    #: URL schemes that select it (the part before ``://`` and any ``+driver``).
    schemes: tuple[str, ...]
    #: ``module:Class`` of its `l1db.api.L1db` implementation.
    implementation: str
    #: ``module:Class`` of its save/restore implementation (``l1db_state``).
    state: str
    #: SQLAlchemy ``dialect+driver`` that a bare scheme is given (the driver the toolkit installs), if any.
    driver: str | None = None
    #: Why ``history_partition_days`` cannot be used on it; `None` where it can (or, as on
    #: Cassandra, where it is not an option of its kind at all).
    no_time_partitions: str | None = None
    #: Field of `l1db.scratch.Servers` with the admin URL its scratch databases are made through;
    #: `None`: made without a server (a file, a keyspace the schema creates).
    admin_url: str | None = None

    def load(self, what: str = "implementation") -> Any:
        """The class named by field ``what`` (``implementation`` or ``state``), imported now."""
        module, _, name = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), name)


_SQL_IMPL = "l1db.sql.l1db_sql:L1dbSql"
_SQL_STATE = "l1db.sql.state:SqlState"

#: Every backend, in the order tests and benchmarks run them.
BACKENDS = (
    Backend("sqlite", SQL, ("sqlite",), _SQL_IMPL, _SQL_STATE,
            no_time_partitions="SQLite has no table partitioning"),
    Backend("postgresql", SQL, ("postgresql", "postgres"), _SQL_IMPL, _SQL_STATE,
            driver="postgresql+psycopg2", admin_url="pg_admin_url"),
    Backend("mysql", SQL, ("mysql", "mariadb"), _SQL_IMPL, _SQL_STATE,
            driver="mysql+mysqldb", admin_url="mysql_admin_url",
            no_time_partitions="not supported on MariaDB/MySQL (RANGE partitioning there needs an integer or "
                               "date partition expression in every unique key, and the time columns are DOUBLE)"),
    Backend("cassandra", CASSANDRA, ("cassandra",), "l1db.cassandra.l1db_cassandra:L1dbCassandra",
            "l1db.cassandra.state:CassandraState"),
)

#: URL schemes the toolkit has drivers for.
URL_SCHEMES = tuple(scheme for backend in BACKENDS for scheme in backend.schemes)


def url_scheme(url: str) -> str:
    """The scheme of a database URL, lower case, without ``+driver`` (``""`` if it has none)."""
    return url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


def backend_for(url: str) -> Backend:
    """The backend that serves ``url``.

    Raises
    ------
    ValueError
        If no backend has the URL's scheme.
    """
    scheme = url_scheme(url)
    for backend in BACKENDS:
        if scheme in backend.schemes:
            return backend
    raise ValueError(f"unsupported URL scheme {scheme or '(none)'!r}; allowed: "
                     + ", ".join(f"{s}://" for s in URL_SCHEMES))


def backend_named(name: str) -> Backend:
    """The backend called ``name`` (`Backend.name`).

    Raises
    ------
    ValueError
        If there is none of that name.
    """
    for backend in BACKENDS:
        if backend.name == name:
            return backend
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(b.name for b in BACKENDS)}")
