"""tableRowCount: exact counts, and estimates that read no table whole, on every backend."""

from __future__ import annotations

import threading
from typing import Any

import astropy.units as u
import numpy as np
import pytest
import sqlalchemy as sa
from astropy.time import Time
from l1db_frames import random_sky_points, random_visit

from l1db import open_l1db
from l1db.cassandra import counts as cassandra_counts

T0 = Time(60000.0, format="mjd", scale="tai")

#: How far an estimate may be from the exact count, as a share of it, by backend: PostgreSQL's
#: reltuples after ANALYZE (which reads every row of a table this small); InnoDB's running
#: row estimate; Cassandra's 64 sampled partitions (relative error of the partitions about
#: 1/sqrt(64) = 12.5 %, plus the spread of rows per partition: 50 % is four standard errors).
#: SQLite counts exactly.
TOLERANCE = {"sqlite": 0.0, "postgresql": 0.02, "mysql": 0.1, "cassandra": 0.5}


def _store_visits(db: Any, visits: int, per_visit: int) -> None:
    rng = np.random.default_rng(21)
    for visit in range(visits):
        ra, dec = random_sky_points(rng, per_visit, [(30.0, -15.0)], 2.0)
        ids = np.arange(visit * per_visit, (visit + 1) * per_visit, dtype=np.int64)
        # Visits 40 days apart: several time partitions.
        mjd = (T0 + 40 * visit * u.day).tai.mjd
        objects, sources, forced = random_visit(rng, db.definitions, ra, dec, ids, visit=visit + 1, visit_mjd=mjd,
                                                first_source_id=visit * per_visit)
        db.store(T0 + 40 * visit * u.day, objects, sources, forced, visit_id=visit + 1)


def test_estimates_are_near_the_exact_counts_and_read_no_table_whole(
        backend: str, make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = cassandra_counts.ESTIMATE_PARTITIONS  # of 6,000 partitions in DiaObjectLastToPartition
    db = open_l1db(make_config(part_pixelization="mq3c", part_pixel_level=10, time_partition_days=30))
    db.makeSchema(first_visit_mjd=T0.tai.mjd)
    _store_visits(db, visits=4, per_visit=1500)
    exact = db.tableRowCount(exact=True)
    assert exact["DiaSource"] == 4 * 1500 and exact["DiaObject"] == 4 * 1500
    statements: list[str] = []
    # Cassandra: the requests in flight at each send (the driver's futures, counted as they end).
    in_flight: list[int] = []
    if backend == "cassandra":
        # Every request of the plain session goes through execute_async (the driver's execute calls it).
        real_execute_async = db._plain.execute_async
        running = [0]
        lock = threading.Lock()

        def ended(_: Any) -> None:
            with lock:
                running[0] -= 1

        def execute_async(query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(getattr(query, "query_string", query)))
            with lock:
                running[0] += 1
                in_flight.append(running[0])
            future = real_execute_async(query, *args, **kwargs)
            future.add_callbacks(ended, ended)
            return future

        monkeypatch.setattr(db._plain, "execute_async", execute_async)
    else:
        if backend == "postgresql":
            # The server's statistics are made by (auto)ANALYZE: made now, not in a minute.
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        sa.event.listen(db.engine, "before_cursor_execute",
                        lambda conn, cursor, statement, *rest: statements.append(statement))
    estimate = db.tableRowCount(exact=False)
    assert set(estimate) == set(exact)
    tolerance = TOLERANCE[backend]
    far = {t: (estimate[t], n) for t, n in exact.items() if abs(estimate[t] - n) > tolerance * n}
    assert not far, f"estimate, exact beyond {tolerance:.0%}: {far}"
    # No full scan: the queries say so.
    counting = [s for s in statements if "count(" in s.lower()]
    if backend in ("postgresql", "mysql"):
        assert statements and not counting  # statistics only
    elif backend == "cassandra":
        # Every count is of one partition (its key in the WHERE), at most the sample's per table.
        assert counting and all(" WHERE " in s for s in counting)
        for table in ("DiaSource", "DiaForcedSource", "DiaObject", "DiaObjectLastToPartition"):
            assert 0 < sum(f'"{table}" WHERE' in s for s in counting) <= sample
        # The tables of many partitions were estimated, not summed: some estimate differs from the count.
        assert any(estimate[t] != exact[t] for t in ("DiaSource", "DiaObject", "DiaObjectLastToPartition"))
        # Sent concurrently (dozens of partition counts in flight at once; sent one at a time, a late
        # callback could show 2), and the partition keys come from the driver's metadata, not a query each.
        assert len(in_flight) >= len(counting) and max(in_flight) > 16, max(in_flight)
        assert not [s for s in statements if "system_schema" in s]
    db.close()
