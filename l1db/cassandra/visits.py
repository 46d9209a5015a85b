"""Visit bookkeeping of the Cassandra backend (L1dbVisit: one partition, newest visit first).

A mixin of `l1db.cassandra.l1db_cassandra.L1dbCassandra`. A visit (tile) is
recorded once all its rows are acknowledged, and marked applied once its
DiaObject versions are in DiaObjectLast (`l1db.cassandra.writes`).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from cassandra.query import UNSET_VALUE

from ..constants import mjd_tai_time, to_mjd_tai
from .client import CassandraClient

if TYPE_CHECKING:
    from astropy.time import Time

__all__ = ["CassandraVisits"]


class CassandraVisits(CassandraClient):
    """Recording and looking up stored visits."""

    def _record_visit(self, visit_id: int, visit_mjd: float, tile: int, n_tiles: int, parts: set[int],
                      applied: bool) -> None:
        statement = self._insert("L1dbVisit", ["bucket", "visitId", "tile", "visitTimeMjdTai", "nTiles", "parts",
                                               "applied"])
        self._plain.execute(statement, (0, int(visit_id), int(tile), float(visit_mjd), int(n_tiles),
                                        parts or UNSET_VALUE, applied),
                            timeout=self.options["write_timeout"])

    def _mark_applied(self, visit_id: int, tile: int) -> None:
        statement = self._statement(
            "update:applied",
            f'UPDATE {self._name("L1dbVisit")} SET applied = true WHERE bucket = 0 AND "visitId" = ? AND tile = ?',
            write=True)
        self._plain.execute(statement, (int(visit_id), int(tile)), timeout=self.options["write_timeout"])

    def saveVisit(self, visit_id: int, visit_time: Time | datetime.datetime | float, tile: int = 0,
                  n_tiles: int = 1) -> None:
        self.checkSchema()
        self._record_visit(visit_id, to_mjd_tai(visit_time), tile, n_tiles, set(), applied=True)

    def _end_visit(self, last: bool) -> tuple[int, Time] | None:
        self.checkSchema()
        # The partition is clustered newest first.
        order = "" if last else ' ORDER BY "visitId" ASC'
        rows = self._plain_columns(self._simple(
            f'SELECT "visitId", "visitTimeMjdTai" FROM {self._name("L1dbVisit")} WHERE bucket = 0{order} LIMIT 1'))
        if not len(rows.get("visitId", [])):
            return None
        return int(rows["visitId"][0]), mjd_tai_time(float(rows["visitTimeMjdTai"][0]))

    def storedTiles(self, visit_id: int) -> tuple[set[int], int]:
        self.checkSchema()
        rows = self._plain_columns(self._simple(
            f'SELECT tile, "nTiles" FROM {self._name("L1dbVisit")} WHERE bucket = 0 AND "visitId" = %s',
            [int(visit_id)]))
        tiles = {int(t) for t in rows.get("tile", [])}
        return tiles, max((int(n) for n in rows.get("nTiles", [])), default=0)
