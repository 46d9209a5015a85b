"""Pieces the benchmark scripts share: scratch databases and random full-width rows.

Run the scripts from the repository root (``.venv/bin/python benchmarks/X.py``);
this folder is then first on ``sys.path``, so ``from _common import ...`` works.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from l1db.frames import column_dtype, column_kind

__all__ = [
    "PG_ADMIN_URL",
    "MYSQL_ADMIN_URL",
    "BACKENDS",
    "add_backend_options",
    "parse_backends",
    "backend_database",
    "random_frame",
    "server_database",
    "markdown_table",
]

#: Admin URLs of the local servers (override with each script's --*-admin-url).
PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
MYSQL_ADMIN_URL = "mysql+mysqldb://root@127.0.0.1:3306/"
#: Contact points of the local Cassandra node(s) (``cassandra_nodes start``).
CASSANDRA_HOSTS = "127.0.0.1"
#: The backends a benchmark can run on.
BACKENDS = ("sqlite", "postgresql", "mysql", "cassandra")
#: The backends a benchmark runs on unless told otherwise.
DEFAULT_BACKENDS = ("sqlite", "postgresql", "mysql")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backends`` and the servers' admin URLs."""
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                        help=f"comma-separated backends of {', '.join(BACKENDS)} (default: {','.join(DEFAULT_BACKENDS)})")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--mysql-admin-url", default=MYSQL_ADMIN_URL, help="MySQL/MariaDB admin URL")
    parser.add_argument("--cassandra-hosts", default=CASSANDRA_HOSTS,
                        help=f"Cassandra contact points, comma-separated (default {CASSANDRA_HOSTS})")


def parse_backends(text: str) -> list[str]:
    """The backends of a ``--backends`` value; `ValueError` for an unknown one."""
    backends = [b.strip() for b in text.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise ValueError(f"bad --backends {text!r}: choose from {', '.join(BACKENDS)}")
    return backends


@contextlib.contextmanager
def backend_database(backend: str, name: str, tmp_dir: Path, args: argparse.Namespace) -> Iterator[str]:
    """URL of a fresh database ``name`` on ``backend``, removed afterwards, even on failure.

    SQLite: a file in ``tmp_dir``; the servers: a database made through the
    admin URLs of `add_backend_options`.
    """
    if backend == "sqlite":
        path = Path(tmp_dir) / f"{name}.sqlite3"
        path.unlink(missing_ok=True)
        try:
            yield f"sqlite:///{path}"
        finally:
            path.unlink(missing_ok=True)
        return
    if backend == "cassandra":
        # create_l1_schema --drop makes the keyspace; it is dropped afterwards.
        try:
            yield f"cassandra://{args.cassandra_hosts}/{name}"
        finally:
            drop_keyspace(args.cassandra_hosts, name)
        return
    admin = args.pg_admin_url if backend == "postgresql" else args.mysql_admin_url
    try:
        yield server_database(admin, name, create=True)
    finally:
        server_database(admin, name, create=False)


def random_frame(table: sa.Table, n: int, rng: np.random.Generator, null_fraction: float = 0.0) -> pd.DataFrame:
    """``n`` rows for ``table``: every column random values of its type, unique first key column.

    With ``null_fraction``, that share of each nullable column is NULL.
    """
    data: dict[str, object] = {}
    for column in table.columns:
        kind = column_kind(column)
        if kind == "bool":
            values = rng.integers(0, 2, n).astype(bool)
        elif kind.startswith("int"):
            info = np.iinfo(kind)
            values = rng.integers(info.min, info.max, n, endpoint=True, dtype=kind)
        elif kind.startswith("float"):
            values = (rng.standard_normal(n) * 10.0 ** rng.integers(-5, 6, n)).astype(kind)
        else:
            letters = np.array(list("ugrizy"), dtype=object)
            values = letters[rng.integers(0, len(letters), n)]
        if null_fraction and column.nullable:
            values = pd.Series(values, dtype=column_dtype(column))
            values[rng.random(n) < null_fraction] = None
        data[column.name] = values
    # Unique keys: the first key column numbers the rows.
    data[table.primary_key.columns[0].name] = np.arange(n, dtype=np.int64) + 1
    return pd.DataFrame(data)


def drop_keyspace(hosts: str, name: str) -> None:
    """Drop Cassandra keyspace ``name`` if it exists."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=300)
    cluster = Cluster(hosts.split(","), protocol_version=5, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}")
    finally:
        cluster.shutdown()


def server_database(admin_url: str, name: str, create: bool) -> str:
    """Drop database ``name`` on the server of ``admin_url`` and, with ``create``, make it anew.

    Returns the URL of that database.
    """
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        force = " WITH (FORCE)" if engine.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        if create:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table (for BENCHMARKS.md), one line per row."""
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in record) + " |" for record in frame.itertuples(index=False)]
    return "\n".join(lines)
