"""Time partitions of the SQL tables: PostgreSQL declarative partitioning by visit time.

With ``history_partition_days = N`` the tables whose rows are history are
partitioned ``BY RANGE`` on their time column (`PARTITION_COLUMNS`):
DiaSource and DiaForcedSource on ``midpointMjdTai``, and DiaObject on
``validityStartMjdTai`` where it is the history table (``last_object_table``;
in the other layouts it is also the read path of the latest versions, which a
time partition would scatter). Partition *k* holds ``[k N, (k + 1) N)`` (MJD
TAI, days counted from MJD 0 as Cassandra's time partitions are) and is named
``<table>_mjd<k N>``, e.g. ``DiaSource_mjd61020``.

Partitions are made ahead of the visits that need them, as a production
database's maintenance does: `TimePartitions.ensure` creates the partitions
of the given times, in a transaction of its own and before the store's, so a
store never fails for want of a partition and stays one transaction. A new
partition is created as a plain table and then attached (``ATTACH
PARTITION`` takes only a SHARE UPDATE EXCLUSIVE lock on the parent, so stores
and reads of other clients go on; ``CREATE TABLE ... PARTITION OF`` would
take an ACCESS EXCLUSIVE one). Concurrent clients (the tiles of a visit)
serialize their partition changes on an advisory lock. `TimePartitions.drop_before`
drops whole partitions for the retention option.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping

import numpy as np
import sqlalchemy as sa

__all__ = ["PARTITION_COLUMNS", "TimePartition", "TimePartitions"]

_LOG = logging.getLogger(__name__)

#: The time column each partitionable table is partitioned on.
PARTITION_COLUMNS = {
    "DiaObject": "validityStartMjdTai",
    "DiaSource": "midpointMjdTai",
    "DiaForcedSource": "midpointMjdTai",
}

#: Key of the advisory lock under which partitions are created and dropped
#: (any constant: it only has to be the same for every client).
_LOCK_KEY = 0x4C31_5041  # "L1PA"

_BOUND = re.compile(r"FROM \('?(?P<start>[-+0-9.eE]+)'?\) TO \('?(?P<end>[-+0-9.eE]+)'?\)")


@dataclasses.dataclass(frozen=True)
class TimePartition:
    """One partition: the partitioned table, its own name and its MJD range ``[start, end)``."""

    table: str
    name: str
    start: float
    end: float

    def __str__(self) -> str:
        return f"{self.name} [{self.start:g}, {self.end:g})"


class TimePartitions:
    """The time partitions of one database: naming, creation ahead of need, retention.

    Parameters
    ----------
    days : `int`
        Length of a partition, days.
    tables : iterable of `str`
        The partitioned tables (keys of `PARTITION_COLUMNS`).
    """

    def __init__(self, days: int, tables: Iterable[str]) -> None:
        if days < 1:
            raise ValueError(f"time partitions of {days} days")
        self.days = int(days)
        self.tables = tuple(tables)
        # Partition numbers known to exist, per table; None until first looked up.
        self._known: dict[str, set[int]] | None = None

    # -- the grid --------------------------------------------------------------

    def numbers(self, mjd: np.ndarray | float) -> np.ndarray:
        """Sorted unique partition numbers of the finite times in ``mjd``."""
        mjd = np.asarray(mjd, dtype=np.float64).ravel()
        mjd = mjd[np.isfinite(mjd)]
        return np.unique(np.floor(mjd / self.days).astype(np.int64))

    def partition(self, table: str, number: int) -> TimePartition:
        """Partition ``number`` of ``table``."""
        start = int(number) * self.days
        return TimePartition(table, f"{table}_mjd{start}", float(start), float(start + self.days))

    def horizon(self, mjd: float) -> np.ndarray:
        """Times whose partitions must exist once a visit at ``mjd`` is stored: its own and the next N days'."""
        return np.array([mjd, mjd + self.days], dtype=np.float64)

    # -- the database --------------------------------------------------------------

    def existing(self, conn: sa.Connection) -> list[TimePartition]:
        """Partitions of the partitioned tables in the database, by table and start."""
        rows = conn.execute(
            sa.text(
                "SELECT p.relname AS parent, c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound "
                "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
                "WHERE n.nspname = current_schema() AND p.relname = ANY(:tables)"
            ),
            {"tables": list(self.tables)},
        ).all()
        found = []
        for row in rows:
            bound = _BOUND.search(row.bound or "")
            if bound is None:  # not one of ours (a DEFAULT partition someone added)
                continue
            found.append(TimePartition(row.parent, row.name, float(bound["start"]), float(bound["end"])))
        return sorted(found, key=lambda p: (self.tables.index(p.table), p.start))

    def _refresh(self, conn: sa.Connection) -> None:
        self._known = {t: set() for t in self.tables}
        for part in self.existing(conn):
            self._known[part.table].add(int(np.floor(part.start / self.days)))

    def ensure(self, engine: sa.Engine, times: Mapping[str, np.ndarray]) -> list[TimePartition]:
        """Create the missing partitions of ``times`` (MJD TAI per table); return those created.

        Cheap when nothing is missing (no statement once the partitions are
        known). Runs in a transaction of its own, committed before it returns.
        """
        wanted = {t: self.numbers(v) for t, v in times.items() if t in self.tables}
        if self._known is not None and all(set(n.tolist()) <= self._known[t] for t, n in wanted.items()):
            return []
        created = []
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            self._refresh(conn)
            assert self._known is not None  # _refresh set it
            for table, numbers in wanted.items():
                for number in numbers.tolist():
                    if number not in self._known[table]:
                        created.append(self._create(conn, self.partition(table, number)))
        for part in created:
            self._known[part.table].add(int(np.floor(part.start / self.days)))
        if created:
            _LOG.info("created time partitions %s", ", ".join(p.name for p in created))
        return created

    def _create(self, conn: sa.Connection, part: TimePartition) -> TimePartition:
        prep = conn.dialect.identifier_preparer
        name, parent = prep.quote(part.name), prep.quote(part.table)
        # A plain table attached afterwards: ATTACH builds the partition's key and indexes from the parent's.
        conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS)")
        conn.exec_driver_sql(
            f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({part.start!r}) TO ({part.end!r})"
        )
        return part

    def drop_before(self, engine: sa.Engine, mjd: float) -> list[TimePartition]:
        """Drop the partitions that end at or before ``mjd`` (all their rows are older); return them."""
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            old = [p for p in self.existing(conn) if p.end <= mjd]
            prep = conn.dialect.identifier_preparer
            for part in old:
                conn.exec_driver_sql(f"DROP TABLE {prep.quote(part.name)}")
            self._refresh(conn)
        if old:
            _LOG.info("dropped time partitions %s", ", ".join(p.name for p in old))
        return old

    def describe(self, conn: sa.Connection) -> list[str]:
        """One line per partitioned table: its column, partition length and partitions."""
        parts = self.existing(conn)
        lines = []
        for table in self.tables:
            mine = [str(p) for p in parts if p.table == table]
            lines.append(f"{table}: partitioned by RANGE ({PARTITION_COLUMNS[table]}), {len(mine)} time "
                         f"partitions of {self.days} days: {', '.join(mine) or 'none'}")
        return lines
