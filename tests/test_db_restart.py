"""Surviving the database: connection-level errors classified per backend, real server restarts survived.

The restarts are real (PostgreSQL through pg_ctlcluster, MariaDB by stopping
and starting mariadbd) and short: the servers are down for a few seconds.
They affect every client of the servers, so only these tests make them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from ap_runs import ap_proto_command, wait_for_visits
from conftest import catalog_fixture, create_test_database, write_config

from dia_sim.log2csv import logs_to_table
from l1db.config import normalize_url
from l1db.errors import DatabaseUnreachable, describe_error, driver_error_reason, is_retryable
from l1db.timing_log import parse_log

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from _faults import check_database, restart_server, server_is_up  # noqa: E402

sources = catalog_fixture(400)


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)


def test_connection_errors_are_retryable_others_not(sql_backend: str, tmp_path: Path) -> None:
    """Real errors of each SQL backend: a connection killed by the server is worth a retry, a bad statement not."""
    import l1db.sql.database  # noqa: F401 - registers the drivers' errors

    url, drop = create_test_database(sql_backend, tmp_path)
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError) as bad_sql:
                conn.exec_driver_sql("SELECT no_such_column FROM no_such_table")
        assert not is_retryable(bad_sql.value)
        assert driver_error_reason(bad_sql.value) and "\n" not in driver_error_reason(bad_sql.value)
        if sql_backend == "sqlite":
            return
        # The server ends this client's connection, as a restart does.
        with engine.connect() as victim, _engine(url).connect() as admin:
            if sql_backend == "postgresql":
                pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            else:
                pid = victim.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()
                admin.exec_driver_sql(f"KILL CONNECTION {pid}")
                admin.commit()
            with pytest.raises(sa.exc.DBAPIError) as killed:
                victim.exec_driver_sql("SELECT 1").all()
        assert is_retryable(killed.value), killed.value
        error, reason = describe_error(killed.value)
        assert error in ("AdminShutdown", "OperationalError") and "\n" not in reason
        # Raised while cleaning up after the lost connection: the cause is still found.
        try:
            try:
                raise killed.value
            except sa.exc.DBAPIError:
                raise SystemError("<function decode> returned a result with an exception set")  # noqa: B904 - the implicit chain is tested
        except SystemError as chained:
            assert is_retryable(chained) and driver_error_reason(chained) == driver_error_reason(killed.value)
        # A server that does not answer at all.
        port = 1 if sql_backend == "postgresql" else 2
        closed = sa.make_url(normalize_url(url)).set(port=port, host="127.0.0.1")
        with pytest.raises(sa.exc.OperationalError) as refused:
            sa.create_engine(closed, poolclass=sa.pool.NullPool).connect()
        assert is_retryable(refused.value)
        assert is_retryable(DatabaseUnreachable("cannot connect"))
        assert not is_retryable(ValueError("a bug"))
    finally:
        engine.dispose()
        drop()


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_a_deadlock_between_two_transactions_is_retryable(server: str, tmp_path: Path) -> None:
    """Two transactions that lock two rows in opposite orders, as two tiles of a visit updating the same
    DiaObjects may: the server rolls one back (a deadlock), and that one is worth trying again."""
    import threading

    import l1db.sql.database  # noqa: F401 - registers the drivers' errors

    url, drop = create_test_database(server, tmp_path)
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE lockme (id INTEGER PRIMARY KEY, n INTEGER)")
            conn.exec_driver_sql("INSERT INTO lockme VALUES (1, 0), (2, 0)")
        errors: list[BaseException] = []
        both_locked = threading.Barrier(2, timeout=30)

        def update(first: int, second: int) -> None:
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"UPDATE lockme SET n = n + 1 WHERE id = {first}")
                    both_locked.wait()
                    conn.exec_driver_sql(f"UPDATE lockme SET n = n + 1 WHERE id = {second}")
            except sa.exc.DBAPIError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=update, args=order) for order in ((1, 2), (2, 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(errors) == 1, errors  # one rolled back, the other committed
        assert is_retryable(errors[0]), errors[0]
        assert "deadlock" in driver_error_reason(errors[0]).lower()
        with engine.connect() as conn:
            assert sorted(conn.exec_driver_sql("SELECT n FROM lockme").scalars()) == [1, 1]
    finally:
        engine.dispose()
        drop()


def test_cassandra_errors_classified() -> None:
    """The driver's own exception types (no cluster needed): unanswered requests retry, refused ones do not."""
    from cassandra import InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionShutdown

    import l1db.cassandra.session  # noqa: F401 - registers the driver's errors

    retryable = [
        NoHostAvailable("Unable to connect to any servers", {"127.0.0.1:9042": ConnectionRefusedError(111, "refused")}),
        OperationTimedOut("errors={}, last_host=127.0.0.1:9042"),
        Unavailable("Cannot achieve consistency level QUORUM", consistency=4, required_replicas=2, alive_replicas=1),
        ReadTimeout("Operation timed out", consistency=4, required_responses=2, received_responses=1),
        WriteTimeout("Operation timed out", consistency=4, required_responses=2, received_responses=1, write_type=0),
        ConnectionShutdown("Connection to 127.0.0.1:9042 was closed"),
    ]
    for exc in retryable:
        assert is_retryable(exc), exc
        error, reason = describe_error(exc)
        assert error == type(exc).__name__ and "\n" not in reason
    assert "no Cassandra host answered" in describe_error(retryable[0])[1]
    assert not is_retryable(InvalidRequest("Undefined column name nope"))


@pytest.mark.restarts_servers
@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_server_restart_mid_run_is_survived(server: str, sources: Path, tmp_path: Path) -> None:
    """The server goes down for 2 s during a run: ap_proto reconnects, retries, finishes; the failure is logged."""
    url, drop = create_test_database(server, tmp_path)
    try:
        config = write_config(tmp_path / "l1db.cfg", url, dia_object_index="last_object_table",
                              retry_attempts=8, retry_wait=0.5)
        from l1db.cli.create_l1_schema import main as create

        assert create(["-c", str(config)]) == 0
        log = tmp_path / "run.jsonl"
        total = 40
        proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", total), stderr=subprocess.PIPE, text=True)
        try:
            wait_for_visits(log, 4, 180, proc)
            restart_server(server, down=2.0)
            _, err = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "retry 1 of 8" in err
        parsed = parse_log(log)
        failures = parsed.failures
        assert len(failures) >= 1 and failures["retry"].all()
        assert (failures["lost"] > 0).all() and (failures["wait"] > 0).all()
        # Every visit done once, complete, its failures counted against it.
        table, _ = logs_to_table([log])
        assert table["visit"].tolist() == list(range(1, total + 1))
        assert (table["complete"] == 1).all()
        assert int(table["failures"].sum()) == len(failures)
        assert (table.loc[table["failures"] > 0, "lost_real"] > 0).all()
        # A failed attempt's reads are not added to the visit: one of each per visit.
        per_visit = parsed.timings.groupby(["visit", "op"]).size()
        for op in ("obj_select", "src_select", "fsrc_select", "store", "visit"):
            assert (per_visit.xs(op, level="op") == 1).all(), op
        # The database equals the log.
        check = check_database(config, [log])
        assert check.problems == [] and check.visits == total and check.unlogged == []
    finally:
        assert server_is_up(server)
        drop()


@pytest.mark.restarts_servers
def test_retries_exhausted_stop_with_one_line_and_resume(sources: Path, tmp_path: Path) -> None:
    """PostgreSQL down longer than the retries last: one line, exit 1; a later run resumes cleanly."""
    url, drop = create_test_database("postgresql", tmp_path)
    try:
        config = write_config(tmp_path / "l1db.cfg", url, retry_attempts=1, retry_wait=0.2)
        from l1db.cli.create_l1_schema import main as create

        assert create(["-c", str(config)]) == 0
        log = tmp_path / "run.jsonl"
        proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", 200), stderr=subprocess.PIPE, text=True)
        try:
            wait_for_visits(log, 3, 180, proc)
            restart_server("postgresql", down=4.0)
            _, err = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 1, err
        errors = [line for line in err.splitlines() if line.startswith("ap_proto: ")]
        assert len(errors) == 1 and "Traceback" not in err, err
        assert "failed 2 times" in errors[0] and "run again to resume" in errors[0]
        failures = parse_log(log).failures
        assert failures["attempt"].tolist()[-2:] == [1, 2] and failures["retry"].tolist()[-2:] == [True, False]
        # Resume: the run continues where it stopped; the database equals the log.
        proc = subprocess.run(ap_proto_command(config, sources, log, "-n", 3), stderr=subprocess.PIPE, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr
        check = check_database(config, [log])
        assert check.problems == [] and check.unlogged == []
        table, _ = logs_to_table([log])
        stopped = table[table["complete"] == 0]
        assert len(stopped) == 1 and stopped["failures"].iloc[0] == 2
    finally:
        assert server_is_up("postgresql")
        drop()
