"""Bytes on disk of each table of an L1 database (PostgreSQL and Cassandra), for the benchmarks.

- PostgreSQL: ``pg_total_relation_size`` (heap, TOAST and indexes), of a
  partitioned table summed over its partitions (``pg_partition_tree``).
- Cassandra: the keyspace is flushed on every node of the run dir (nodetool),
  then the files of each table's data folder are summed over the nodes
  (SSTables with their indexes; snapshots and backups left out). Compaction
  may still be running: measure after the same pause on both sides.

Used by ``bench_ap_proto.py --disk``. It relies only on the public parts of the
toolkit, so that a copy of it measures an older checkout the same way.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from l1db.cassandra.nodetool import cluster_nodes
from l1db.config import parse_cassandra_url
from l1db.sql.database import make_engine

__all__ = ["table_bytes"]


def _pg_bytes(url: str) -> dict[str, int]:
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            # Top-level tables only (not the partitions, counted in their parent's tree).
            rows = conn.execute(sa.text(
                # pg_partition_tree lists no rows for a table that is not partitioned.
                "SELECT c.relname, CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(t.relid)) "
                "FROM pg_partition_tree(c.oid) t) ELSE pg_total_relation_size(c.oid) END "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "ORDER BY c.relname")).all()
    finally:
        engine.dispose()
    return {str(name): int(size or 0) for name, size in rows}


def _cassandra_bytes(url: str, run_dir: str | None) -> dict[str, int]:
    parsed = parse_cassandra_url(url)
    sizes: dict[str, int] = {}
    for node in cluster_nodes(run_dir, parsed.hosts):
        node.nodetool("flush", "--", parsed.keyspace, what=f"flushing keyspace {parsed.keyspace}")
        for folder in sorted((node.data_dir / parsed.keyspace).glob("*-*")):
            table = folder.name.rsplit("-", 1)[0]
            files = (p for p in folder.rglob("*")
                     if p.is_file() and not {"snapshots", "backups"} & set(p.relative_to(folder).parts))
            sizes[table] = sizes.get(table, 0) + sum(p.stat().st_size for p in files)
    return dict(sorted(sizes.items()))


def table_bytes(url: str, run_dir: str | Path | None = None) -> dict[str, int]:
    """Bytes on disk of every table of the database of ``url`` (PostgreSQL or Cassandra), by table name.

    ``run_dir`` is the Cassandra nodes' run dir (default: ``$L1DB_CASSANDRA_RUN_DIR``).

    Raises
    ------
    ValueError
        For another backend.
    """
    if url.startswith("cassandra"):
        return _cassandra_bytes(url, None if run_dir is None else str(run_dir))
    if url.startswith("postgresql"):
        return _pg_bytes(url)
    raise ValueError(f"bytes on disk are measured on PostgreSQL and Cassandra only, not {url.split(':')[0]}")
