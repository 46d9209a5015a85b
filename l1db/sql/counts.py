"""Row counts of the SQL tables: exact (``COUNT(*)``) or the server's estimates.

Exact counts scan every table, which a large database makes slow; they are
what a saved state is checked with (``l1db_state``). Estimates read the
server's statistics, no table row (what ``ap_proto``'s ``row_count_every``
uses), one small override per dialect:

- PostgreSQL: ``pg_class.reltuples`` of every leaf partition of the table,
  scaled by its current size in pages over the pages it had when last
  analyzed (``reltuples / relpages * pages now``, the planner's own estimate).
  A leaf never analyzed, or analyzed while empty (autovacuum analyzes a table
  after its first 50 changed rows, so such a leaf is a new, small one), is
  counted exactly.
- MariaDB/MySQL: ``information_schema.TABLES.TABLE_ROWS`` (InnoDB's running
  estimate, which InnoDB's documentation puts within 40 to 50 % of the truth).
- SQLite: has no estimate; counted exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

__all__ = ["exact_counts", "estimated_counts"]

# Leaf partitions of a PostgreSQL table (the table itself if not partitioned),
# with their statistics and their size now in pages.
_PG_LEAVES = sa.text(
    "WITH r AS (SELECT CAST(quote_ident(:name) AS regclass) AS oid) "
    "SELECT n.nspname, c.relname, c.reltuples, c.relpages, "
    "pg_relation_size(c.oid) / current_setting('block_size')::float8 "
    "FROM r, pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
    # pg_partition_tree lists nothing for a table that is not partitioned: then the table itself.
    "WHERE (c.oid = r.oid AND c.relkind <> 'p') "
    "OR c.oid IN (SELECT relid FROM pg_partition_tree(r.oid) WHERE isleaf)")

_MYSQL_ROWS = sa.text(
    "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")


def exact_counts(conn: sa.Connection, tables: Mapping[str, sa.Table]) -> dict[str, int]:
    """Rows of each of ``tables`` (by name), counted: a full scan of each."""
    return {name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for name, table in tables.items()}


def estimated_counts(conn: sa.Connection, tables: Mapping[str, sa.Table]) -> dict[str, int]:
    """Rows of each of ``tables`` (by name), from the server's statistics (the module's docstring says which)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return {name: _pg_estimate(conn, name) for name in tables}
    if dialect in ("mysql", "mariadb"):
        found = {str(n): int(r or 0) for n, r in conn.execute(_MYSQL_ROWS)}
        return {name: found.get(name, 0) for name in tables}
    return exact_counts(conn, tables)


def _pg_estimate(conn: sa.Connection, name: str) -> int:
    total = 0.0
    for schema, leaf, tuples, pages_then, pages_now in conn.execute(_PG_LEAVES, {"name": name}):
        if tuples < 0 or (pages_then == 0 and pages_now > 0):
            quoted = conn.dialect.identifier_preparer.quote
            total += int(conn.exec_driver_sql(f"SELECT count(*) FROM {quoted(schema)}.{quoted(leaf)}").scalar_one())
        elif pages_then > 0:
            total += tuples / pages_then * pages_now
    return int(round(total))
