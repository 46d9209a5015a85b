"""Visit bookkeeping of the SQL backends: which visits and tiles are stored (L1dbVisit).

A mixin of `l1db.sql.l1db_sql.L1dbSql`. A visit is recorded in the same
transaction as its rows (`l1db.sql.writes.SqlWrites.store`), so a resumed run
knows exactly what is stored.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..constants import mjd_tai_time, to_mjd_tai
from .client import SqlClient

if TYPE_CHECKING:
    from astropy.time import Time

__all__ = ["SqlVisits"]


class SqlVisits(SqlClient):
    """Recording and looking up stored visits."""

    def _insert_visit(self, conn: sa.Connection, visit_id: int, visit_mjd: float, tile: int, n_tiles: int) -> None:
        conn.execute(
            self._table("L1dbVisit").insert(),
            [{"visitId": int(visit_id), "tile": int(tile), "visitTimeMjdTai": visit_mjd, "nTiles": int(n_tiles)}],
        )

    def saveVisit(
        self, visit_id: int, visit_time: Time | datetime.datetime | float, tile: int = 0, n_tiles: int = 1
    ) -> None:
        self.checkSchema()
        with self.engine.begin() as conn:
            self._insert_visit(conn, visit_id, to_mjd_tai(visit_time), tile, n_tiles)

    def _end_visit(self, last: bool) -> tuple[int, Time] | None:
        self.checkSchema()
        visits = self._table("L1dbVisit")
        order = visits.c.visitId.desc() if last else visits.c.visitId.asc()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(visits.c.visitId, visits.c.visitTimeMjdTai).order_by(order).limit(1)
            ).first()
        if row is None:
            return None
        return int(row.visitId), mjd_tai_time(float(row.visitTimeMjdTai))

    def storedTiles(self, visit_id: int) -> tuple[set[int], int]:
        self.checkSchema()
        visits = self._table("L1dbVisit")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(visits.c.tile, visits.c.nTiles).where(visits.c.visitId == int(visit_id))
            ).all()
        return {int(r.tile) for r in rows}, max((int(r.nTiles) for r in rows), default=0)
