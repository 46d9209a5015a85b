"""Back-pressure on a real node made slow on purpose: waited for, resent, measured; never a half or double store.

The module starts a node of its own on 127.0.0.41 (not the shared one: it is
made slow) that admits at most `RATE` requests a second and answers the rest
``Overloaded`` (``native_transport_rate_limiting_enabled``,
``native_transport_throw_on_overload``, set as the node's ``cassandra.settings.``
system properties). A store or a read that sends more than that at once is
refused in part: the client must wait for what it has in flight, send the
refused requests again, record the wait and the resends in its timing
records, and store every row exactly once.

Reads the node fails are made on demand too: a real ``ReadTimeout`` (the
node's read timeout set to 1 ms) and a real ``ReadFailure`` (the node's local
read-size limit set to 1 byte), each lifted once the client has seen it.

What is not reproduced here: ``ConnectionBusy`` (the node not reading its
socket) and a ``ReadFailure`` from reads a loaded replica dropped. They take
the same path through `l1db.cassandra.session.execute_concurrently` (its
`is_back_pressure` says which errors are back-pressure); the node's rate limit
is the one way found to make a node refuse requests on demand in a few
seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lsst.sphgeom as sg
import numpy as np
import pandas as pd
import pytest
from astropy.time import Time
from cassandra.cluster import NoHostAvailable
from conftest import write_config
from l1db_frames import random_sky_points, random_visit

from dia_sim.log2csv import logs_to_table
from l1db import L1db, open_l1db
from l1db.cassandra import server
from l1db.cassandra.nodetool import cluster_nodes
from l1db.cassandra.session import connect, is_back_pressure
from l1db.config import CassandraSection, load_config, parse_cassandra_url
from l1db.errors import is_retryable
from l1db.scratch import read_table
from l1db.timer import Timer, TimingRecord
from l1db.timing_log import TimingLogWriter

pytestmark = pytest.mark.own_servers

#: The node's own address (docs/tests.md lists the addresses tests take).
ADDRESS = "127.0.0.41"
#: Requests per second the node admits; the rest are answered Overloaded.
RATE = 200
T0 = Time(60000.0, format="mjd", scale="tai")
#: Rows of each table in the store: at 4 KiB a batch, hundreds of requests, sent 256 at a time.
ROWS = 1500

#: Options that send many small requests at once (many batches, many partitions, a read per sky pixel).
BURSTY = {"replication_factor": 1, "read_consistency": "ONE", "write_consistency": "ONE", "batch_max_kib": 4,
          "write_concurrency": 256, "read_concurrency": 500, "part_pixel_level": 10, "spatial_queries": 0,
          "backpressure_pause": 0.05}


@pytest.fixture(scope="module")
def slow_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A node of this module's own (its run dir), rate-limited to `RATE` requests a second; stopped afterwards."""
    run_dir = tmp_path_factory.mktemp("slow_node")
    options = ("-Dcassandra.config.allow_system_properties=true "
               "-Dcassandra.settings.native_transport_throw_on_overload=true "
               "-Dcassandra.settings.native_transport_rate_limiting_enabled=true "
               f"-Dcassandra.settings.native_transport_max_requests_per_second={RATE}")
    saved = os.environ.get(server.JVM_OPTIONS_ENV)
    os.environ[server.JVM_OPTIONS_ENV] = options
    try:
        server.start(run_dir, base_address=ADDRESS, heap="512M")
    finally:
        if saved is None:
            del os.environ[server.JVM_OPTIONS_ENV]
        else:
            os.environ[server.JVM_OPTIONS_ENV] = saved
    try:
        yield run_dir
    finally:
        server.stop(run_dir)


@pytest.fixture(autouse=True)
def calm_node(slow_node: Path) -> None:
    """Each test starts on a node that answers again.

    After a test's burst the node may refuse every request for seconds, a new client's
    connection queries included (the driver's schema fetch is dozens at once: connecting
    waits for it, but a test would then measure the last one's burst). A test starts once a query is answered and the
    limiter has had 2 s to refill its one second of permits, so that what it measures is
    its own burst.
    """
    deadline = time.monotonic() + 60.0
    while server.cql_release_version(ADDRESS, timeout=5.0) is None:
        assert time.monotonic() < deadline, f"the rate-limited node at {ADDRESS} refused every query for 60 s"
        time.sleep(1.0)
    time.sleep(2.0)


@dataclasses.dataclass
class Stored:
    """The visit stored on the slow node by `stored`, and what its store recorded."""

    config: Path
    ids: np.ndarray
    frames: dict[str, pd.DataFrame]
    records: list[TimingRecord]


def _open(config: Path) -> L1db:
    return open_l1db(config)


@pytest.fixture(scope="module")
def stored(slow_node: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    """One visit of `ROWS` objects stored on the slow node with `BURSTY` options, and its timing records."""
    # The default first pause (0.25 s) and 8 tries, not BURSTY's 0.05 s and 6: since the store encodes its
    # batches itself (2026-12-07) it sends them faster, and one of them ran out of 6 tries (1.55 s of pauses,
    # ~300 requests admitted) in a fresh-clone suite; 7 pauses of 0.25-16 s let ~6,000 through.
    config = write_config(tmp_path_factory.mktemp("bp") / "l1db.cfg", f"cassandra://{ADDRESS}/bp",
                          **{**BURSTY, "backpressure_pause": 0.25, "backpressure_tries": 8})
    db = _open(config)
    db.makeSchema(drop=True)
    rng = np.random.default_rng(5)
    ra, dec = random_sky_points(rng, ROWS, [(20.0, -30.0)], 1.0)
    ids = np.arange(1, ROWS + 1, dtype=np.int64)
    objects, sources, forced = random_visit(rng, db.definitions, ra, dec, ids, visit=1, visit_mjd=T0.mjd)
    records: list[TimingRecord] = []
    with db.timing(records.append):
        db.store(T0, objects, sources, forced, visit_id=1)
    db.close()
    yield Stored(config, ids, {"DiaObject": objects, "DiaSource": sources, "DiaForcedSource": forced}, records)


def test_store_on_an_overloaded_node_waits_resends_and_stores_each_row_once(stored: Stored, tmp_path: Path) -> None:
    records = stored.records
    store = next(r for r in records if r.op == "store")
    assert store.wait > 0 and store.resent > 0, store
    # The store's waits are its table operations' waits (nested timers share them out).
    inner = [r for r in records if r.op != "store"]
    assert sum(r.resent for r in inner) == store.resent
    assert sum(r.wait for r in inner) == pytest.approx(store.wait, abs=1e-6)
    # Every row exactly once: nothing lost to a refusal, nothing doubled by a resend.
    for table, source, key in (("DiaObject", "DiaObject", "diaObjectId"), ("DiaSource", "DiaSource", "diaSourceId"),
                               ("DiaForcedSource", "DiaForcedSource", "diaForcedSourceId"),
                               ("DiaObjectLast", "DiaObject", "diaObjectId")):
        stored_keys = read_table(stored.config, table, [key])[key].to_numpy()
        wanted = stored.frames[source][key].to_numpy()
        assert len(stored_keys) == len(wanted) and np.array_equal(np.sort(stored_keys), np.sort(wanted)), table
    # Measured through the timing log to the per-visit table.
    log = tmp_path / "timing.log"
    with TimingLogWriter(log, run="bp") as writer:
        for record in records:
            writer.timing(record, visit=1)
    table, parsed = logs_to_table([log])
    assert parsed.malformed == 0
    row = table.iloc[0]
    assert row["store_wait"] == pytest.approx(store.wait, abs=1e-5) and row["store_resent"] == store.resent
    assert row["select_wait"] == 0 and row["select_resent"] == 0


def test_reads_refused_by_an_overloaded_node_are_retried(stored: Stored) -> None:
    # The default first pause (0.25 s), not BURSTY's 0.05 s: the node admits RATE reads a second, so the
    # five pauses of 0.05-0.8 s (1.55 s) let through only ~300 resends before a read's tries run out (it
    # happened once, on a busy machine); 0.25-4 s (7.75 s) let through ~1,500. And 8 tries, not the
    # default 6: on a fast client (2026-12-07) the object read alone was refused 1,001 times and a
    # source read still ran out of 6 tries once in 6 suites; 7 pauses of 0.25-16 s (31.75 s) let
    # through ~6,000. The test is that refused reads are sent again and every row comes back once.
    config = write_config(stored.config.parent / "reads.cfg", load_config(stored.config).url,
                          **{**BURSTY, "backpressure_pause": 0.25, "backpressure_tries": 8})
    db = _open(config)
    region = sg.Circle(sg.UnitVector3d(sg.LonLat.fromDegrees(20.0, -30.0)), sg.Angle.fromDegrees(1.05))
    later = Time(T0.mjd + 1, format="mjd", scale="tai")
    # Timed as ap_proto times its reads (dia_sim.tile_processor): with the client's back-pressure totals.
    with Timer("obj_select", pressure=db.back_pressure) as obj_timer:
        objects = db.getDiaObjects(region)
    with Timer("src_select", pressure=db.back_pressure) as src_timer:
        sources = db.getDiaSources(region, stored.ids, later)
    db.close()
    selects = [r for r in (obj_timer.record, src_timer.record) if r is not None]
    assert len(selects) == 2
    assert sum(r.resent for r in selects) > 0 and sum(r.wait for r in selects) > 0, selects
    # Every row read once: a read sent again adds no row.
    assert np.array_equal(np.sort(objects["diaObjectId"].to_numpy()), np.sort(stored.ids))
    assert np.array_equal(np.sort(sources["diaSourceId"].to_numpy()),
                          np.sort(stored.frames["DiaSource"]["diaSourceId"].to_numpy()))


def test_a_request_refused_more_often_than_its_tries_fails_as_a_retryable_error(stored: Stored,
                                                                              tmp_path: Path) -> None:
    config = write_config(tmp_path / "l1db.cfg", load_config(stored.config).url, **BURSTY, backpressure_tries=1)
    db = _open(config)
    frames = stored.frames
    with pytest.raises(NoHostAvailable) as caught:
        # The same rows again (a store is idempotent): only the node's refusals can fail it.
        db.store(T0, frames["DiaObject"], frames["DiaSource"], frames["DiaForcedSource"], visit_id=1)
    db.close()
    # The node's refusal, not a bug: ap_proto records the failure and retries the tile.
    assert is_back_pressure(caught.value) and is_retryable(caught.value)
    assert "overloaded" in str(caught.value).lower()


#: The MBean whose attributes set the node's read-size thresholds (Cassandra 5.0 has no nodetool command for them).
_STORAGE_SERVICE = "org.apache.cassandra.db:type=StorageService"


def _set_attribute(name: str, value: str) -> list[str]:
    """nodetool arguments that set an attribute of `_STORAGE_SERVICE` (nodetool's sjk, on nodetool's JMX port)."""
    return ["sjk", "mx", "-b", _STORAGE_SERVICE, "-f", name, "--set", "-v", value]


def _read_while_the_node_fails_reads(stored: Stored, slow_node: Path, caplog: pytest.LogCaptureFixture, kind: str,
                                     fail: list[list[str]], undo: list[list[str]]) -> None:
    """A DiaSource read while nodetool's ``fail`` commands make the node fail reads with ``kind``; ``undo`` once seen.

    The read must see the failure (the session logs it), wait, send the
    failed requests again until the node answers, record the wait and the
    resends, and return every row once.
    """
    (node,) = cluster_nodes(slow_node, (ADDRESS,))
    # Pauses and tries enough to outlast undoing the failure (nodetool runs), and the rate limit,
    # which refuses most of 16 reads sent at once, for up to 5 rounds of halved windows before they go
    # one at a time (6 tries ran out 2 times in 9).
    config = write_config(stored.config.parent / "dropped.cfg", load_config(stored.config).url,
                          **{**BURSTY, "read_concurrency": 16, "backpressure_pause": 0.5, "backpressure_tries": 10})
    db = _open(config)
    region = sg.Circle(sg.UnitVector3d(sg.LonLat.fromDegrees(20.0, -30.0)), sg.Angle.fromDegrees(1.05))
    later = Time(T0.mjd + 1, format="mjd", scale="tai")
    db.getDiaObjects(region)  # statements prepared before the node is made to fail reads
    result: dict[str, object] = {}

    def read() -> None:
        try:
            with Timer("src_select", pressure=db.back_pressure) as timer:
                result["sources"] = db.getDiaSources(region, stored.ids, later)
            result["record"] = timer.record
        except BaseException as exc:  # noqa: BLE001 - the test asserts on it below
            result["error"] = exc

    def failed_reads_seen() -> bool:
        return any(kind in r.getMessage() for r in caplog.records if r.name.endswith("session"))

    caplog.set_level(logging.INFO, logger="l1db.cassandra.session")
    try:
        for args in fail:
            node.nodetool(*args, what=f"make the node fail reads with {kind}")
        worker = threading.Thread(target=read)
        worker.start()
        deadline = time.monotonic() + 20
        while worker.is_alive() and not failed_reads_seen() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for args in undo:
            node.nodetool(*args, what="make the node answer reads again")
    worker.join(60)
    db.close()
    assert "error" not in result, result.get("error")
    assert failed_reads_seen(), [r.getMessage() for r in caplog.records]
    record = result["record"]
    assert isinstance(record, TimingRecord) and record.resent > 0 and record.wait > 0, record
    sources = result["sources"]
    assert isinstance(sources, pd.DataFrame)
    assert np.array_equal(np.sort(sources["diaSourceId"].to_numpy()),
                          np.sort(stored.frames["DiaSource"]["diaSourceId"].to_numpy()))


def test_reads_the_node_drops_are_retried_alone_and_then_succeed(stored: Stored, slow_node: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A real ReadTimeout: the node's read timeout set to 1 ms while a read runs, then back once one is seen."""
    _read_while_the_node_fails_reads(stored, slow_node, caplog, "ReadTimeout",
                                     fail=[["settimeout", "read", "1"]], undo=[["settimeout", "read", "120000"]])


def test_reads_the_node_fails_are_retried_alone_and_then_succeed(stored: Stored, slow_node: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A real ReadFailure: every read of a user table refused by the node's local read-size limit, then lifted.

    The node answers ``ReadFailure`` (reason READ_SIZE: a replica failed the
    read) once ``ReadThresholdsEnabled`` and a 1-byte
    ``LocalReadTooLargeAbortThreshold`` are set over JMX; the driver's
    queries of system tables are not limited. What is proven is the client's
    ReadFailure path (a read failure other than too many tombstones is sent
    again after the requests in flight end, and measured); a ReadFailure from
    messages a loaded replica dropped takes the same path, but could not be
    made on demand.
    """
    _read_while_the_node_fails_reads(
        stored, slow_node, caplog, "ReadFailure",
        fail=[_set_attribute("ReadThresholdsEnabled", "true"), _set_attribute("LocalReadTooLargeAbortThreshold", "1B")],
        undo=[_set_attribute("LocalReadTooLargeAbortThreshold", "<null>"),
              _set_attribute("ReadThresholdsEnabled", "false")])


@contextlib.contextmanager
def _refusing(until: Callable[[], bool], seconds: float = 30.0) -> Iterator[None]:
    """The node made to refuse, by bursts of small requests from another client, ``until()`` (at most ``seconds``)."""
    cluster, session, _ = connect(parse_cassandra_url(f"cassandra://{ADDRESS}/system"),
                                  {**CassandraSection().model_dump(), "backpressure_tries": 20})
    end = time.monotonic() + seconds
    refusing = threading.Event()

    def burst() -> None:
        while time.monotonic() < end and not until():
            futures = [session.execute_async("SELECT release_version FROM system.local") for _ in range(2 * RATE)]
            for future in futures:
                try:
                    future.result()
                except Exception:  # noqa: BLE001 - a refusal: what the bursts are for
                    refusing.set()

    worker = threading.Thread(target=burst)
    worker.start()
    try:
        # The node's permits spent: it refuses from now on (waited for, not assumed: a busy machine is slower).
        refusing.wait(timeout=seconds)
        yield
    finally:
        worker.join()
        cluster.shutdown()


def test_connecting_to_a_refusing_node_waits_and_then_succeeds(stored: Stored, caplog: pytest.LogCaptureFixture
                                                              ) -> None:
    """The driver's own queries of a new connection refused Overloaded: connecting waits, then succeeds."""
    config = write_config(stored.config.parent / "connect.cfg", load_config(stored.config).url,
                          **{**BURSTY, "backpressure_pause": 0.1, "backpressure_tries": 12})
    caplog.set_level(logging.INFO, logger="l1db.cassandra.session")

    def refused() -> bool:
        return any("connecting refused" in r.getMessage() for r in caplog.records)

    # The node refuses until the client has been refused once (or 30 s: then connecting never waited). A
    # connect whose few queries all fell between two bursts was not refused and tests nothing (it happened once,
    # in a suite on a busy machine): it is closed and made again, up to 3 times.
    with _refusing(refused):
        for _ in range(3):
            db = _open(config)
            if refused():
                break
            db.close()
    assert refused(), [r.getMessage() for r in caplog.records]
    # Recorded as every wait is: in the client's back-pressure totals (a timer around the connection takes them).
    assert db.back_pressure.wait > 0 and db.back_pressure.resent > 0, db.back_pressure
    db.checkSchema()  # a working connection
    db.close()

