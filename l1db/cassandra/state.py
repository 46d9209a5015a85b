"""Saving and restoring a Cassandra L1 keyspace with the engine's own snapshots.

For this toolkit's local nodes (`l1db.cassandra.server`), through nodetool
(`l1db.cassandra.nodetool`):

- save: on every node, ``nodetool flush`` and ``nodetool snapshot`` of the
  keyspace (hard links, taken in an instant), then a copy of each table's
  snapshot SSTables into ``nodeN/TABLE/`` of the saved folder, then
  ``nodetool clearsnapshot``;
- restore: the schema made afresh in the (absent or empty) target keyspace
  from the config, as ``create_l1_schema`` makes it, then on every node
  ``nodetool import`` of a copy of that node's SSTables (the saved state is
  only read) into each table (with ``time_partition_tables``, the per-period
  tables saved are made first, as a store makes them): the
  rows come back with their write times, so the next visit overwrites them as
  it would have the originals. Node N's files go back to node N, so the
  target cluster has the nodes (and token ranges) of the saved one; import
  refuses SSTables holding partitions the node does not own. A failed
  restore drops the keyspace (or the tables it made).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from ..config import L1dbConfig, parse_cassandra_url
from ..state import StateError
from ..tables import period_of
from .l1db_cassandra import L1dbCassandra
from .nodetool import Node, NodeToolSession, cluster_nodes, nodetool_version
from .schema import keyspace_schema_tables, quote, schema_options
from .session import connect, error_reason

__all__ = ["CassandraState"]

_LOG = logging.getLogger(__name__)

#: Files of a snapshot that are not SSTable components (nodetool import would not know them).
_SNAPSHOT_EXTRAS = ("manifest.json", "schema.cql")


class CassandraState:
    """Save or restore the L1 keyspace of a Cassandra config.

    Parameters
    ----------
    config : `L1dbConfig`
        The keyspace to save, or the absent or empty keyspace to restore into.
    run_dir : path-like, optional
        Run dir of the keyspace's nodes (`l1db.cassandra.server.default_run_dir`).
    """

    backend = "cassandra"

    def __init__(self, config: L1dbConfig, run_dir: str | os.PathLike[str] | None = None) -> None:
        self.config = config
        self.url = parse_cassandra_url(config.url)
        self.keyspace = self.url.keyspace
        self.run_dir = run_dir
        self._nodes: list[Node] | None = None
        self._created_keyspace = False

    # -- what every backend offers the command ---------------------------------------

    def schema_options(self) -> dict[str, str]:
        """The options the schema is made with (what L1dbMetadata holds)."""
        return schema_options(self.config)

    def tools(self) -> dict[str, str]:
        """nodetool and its Java; also checks that every node of the run dir is up with JMX."""
        self.nodes()
        return {"nodetool": nodetool_version()}

    def nodes(self) -> list[Node]:
        """The nodes of the keyspace's cluster (see `cluster_nodes`)."""
        if self._nodes is None:
            self._nodes = cluster_nodes(self.run_dir, self.url.hosts)
        return self._nodes

    def check_empty(self) -> None:
        """Refuse a target keyspace that holds any table.

        Raises
        ------
        StateError
            If the keyspace has tables (or the cluster cannot be reached).
        """
        tables = self._keyspace_tables()
        if tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise StateError(f"keyspace {self.keyspace} is not empty ({len(tables)} tables: {shown}): "
                             "restore into an absent or empty keyspace")
        self._created_keyspace = tables is None

    def save(self, folder: Path) -> None:
        """Snapshot the keyspace on every node and copy the SSTables into ``folder``."""
        tag = f"l1db_state-{uuid.uuid4().hex[:12]}"
        with NodeToolSession() as nodetool:
            for node in self.nodes():
                nodetool.run(node, "flush", "--", self.keyspace, what=f"flushing keyspace {self.keyspace}")
            # With time_partition_tables: and every per-period table, as the flush left them.
            tables = keyspace_schema_tables(self.config, self._keyspace_tables() or [])
            taken = []
            try:
                for node in self.nodes():
                    nodetool.run(node, "snapshot", "-t", tag, "--", self.keyspace,
                                 what=f"snapshot of {self.keyspace}")
                    taken.append(node)
                for node in self.nodes():
                    for table in tables:
                        source = self._snapshot_dir(node, table, tag)
                        target = folder / f"node{node.index}" / table
                        target.mkdir(parents=True)
                        for file in source.iterdir():
                            if file.is_file() and file.name not in _SNAPSHOT_EXTRAS:
                                shutil.copy2(file, target / file.name)
            finally:
                for node in taken:
                    try:
                        nodetool.run(node, "clearsnapshot", "-t", tag, "--", self.keyspace,
                                     what="clearing the snapshot")
                    except StateError as exc:
                        _LOG.warning("%s (remove snapshot %s by hand)", exc, tag)

    def restore(self, folder: Path) -> None:
        """Make the schema and import every node's SSTables; `clear` undoes a failed restore."""
        saved = sorted(int(p.name[4:]) for p in folder.glob("node*") if p.name[4:].isdigit())
        have = [n.index for n in self.nodes()]
        if saved != have:
            raise StateError(f"{folder} was saved on nodes {saved} and the cluster of {self.url.hosts[0]} has "
                             f"nodes {have}: restore into a cluster of as many nodes")
        # The tables saved: with time_partition_tables, also the per-period tables, made here as a store makes them.
        saved_tables = sorted({p.name for p in (folder / f"node{saved[0]}").iterdir() if p.is_dir()}) if saved else []
        tables = keyspace_schema_tables(self.config, saved_tables)
        periods: dict[str, list[int]] = {}
        for table in tables:
            if (period := period_of(table)) is not None:
                periods.setdefault(period[0], []).append(period[1])
        l1db = L1dbCassandra(self.config)
        with l1db:
            l1db.makeSchema()
            l1db.make_periods(periods)
        with NodeToolSession() as nodetool:
            for node in self.nodes():
                for table in tables:
                    source = folder / f"node{node.index}" / table
                    if not any(source.iterdir()):
                        continue  # nothing was ever stored in it on this node
                    # nodetool import rewrites the SSTables' metadata (level, repair state) where they
                    # lie, even with --copy-data: it gets a copy, beside the node's data, and the saved
                    # state stays as it was (it may be read-only). The copy's folder is named as a keyspace
                    # may be (letters, digits, underscores): Cassandra reads SSTables only under such a name.
                    with tempfile.TemporaryDirectory(prefix="l1db_state_import_", dir=node.node_dir) as scratch:
                        copy = Path(scratch) / table
                        copy.mkdir()
                        for file in source.iterdir():
                            if file.is_file():
                                shutil.copyfile(file, copy / file.name)
                        nodetool.run(node, "import", "--", self.keyspace, table, str(copy),
                                     what=f"importing {table}")

    def clear(self) -> None:
        """Drop what a restore made: the keyspace if it made it, else its tables."""
        try:
            cluster, _, plain = connect(self.url, self.config.cassandra)
        except Exception as exc:
            _LOG.warning("could not drop the restored keyspace %s: %s", self.keyspace, error_reason(exc))
            return
        try:
            if self._created_keyspace:
                plain.execute(f"DROP KEYSPACE IF EXISTS {quote(self.keyspace)}", timeout=120)
            else:
                existing = [str(row[0]) for row in plain.execute(
                    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [self.keyspace])]
                for table in keyspace_schema_tables(self.config, existing):
                    plain.execute(f"DROP TABLE IF EXISTS {quote(self.keyspace)}.{quote(table)}", timeout=120)
        except Exception as exc:
            _LOG.warning("could not drop the restored tables of %s: %s", self.keyspace, error_reason(exc))
        finally:
            cluster.shutdown()

    # -- helpers ------------------------------------------------------------------------

    def _keyspace_tables(self) -> list[str] | None:
        """Tables of the target keyspace, `None` if it does not exist."""
        try:
            cluster, _, plain = connect(self.url, self.config.cassandra)
        except Exception as exc:
            raise StateError(f"cannot connect to {self.config.url}: {error_reason(exc)}") from None
        try:
            if not list(plain.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                                      [self.keyspace])):
                return None
            rows = plain.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                                 [self.keyspace])
            return sorted(str(row[0]) for row in rows)
        finally:
            cluster.shutdown()

    def _snapshot_dir(self, node: Node, table: str, tag: str) -> Path:
        # The table's folder is TABLE-<id>; a dropped and re-made table leaves older ones.
        found = [d / "snapshots" / tag for d in (node.data_dir / self.keyspace).glob(f"{table}-*")
                 if (d / "snapshots" / tag).is_dir()]
        if len(found) != 1:
            raise StateError(f"node {node.index}: no snapshot {tag} of {self.keyspace}.{table} in {node.data_dir}")
        return found[0]
