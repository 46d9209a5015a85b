"""The table of backends (`l1db.backends`), the factory (`l1db.open_l1db`) and create_l1_schema's --start-time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import write_config

from l1db import L1db, L1dbConfig, open_l1db
from l1db.backends import BACKENDS, URL_SCHEMES, backend_for, backend_named
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.config import ConfigError, normalize_url


@pytest.mark.parametrize("url, name, kind", [
    ("sqlite:///x.sqlite3", "sqlite", "sql"),
    ("postgresql://u@h/db", "postgresql", "sql"),
    ("postgres://u@h/db", "postgresql", "sql"),
    ("postgresql+psycopg2://u@h/db", "postgresql", "sql"),
    ("mysql://u@h/db", "mysql", "sql"),
    ("mariadb://u@h/db", "mysql", "sql"),
    ("cassandra://127.0.0.1/ks", "cassandra", "cassandra"),
    ("CASSANDRA://127.0.0.1/ks", "cassandra", "cassandra"),
])
def test_backend_for_url(url: str, name: str, kind: str) -> None:
    backend = backend_for(url)
    assert (backend.name, backend.kind) == (name, kind)
    assert backend_named(name) is backend


def test_unknown_backends_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported URL scheme 'oracle'; allowed: sqlite://"):
        backend_for("oracle://u@h/db")
    with pytest.raises(ValueError, match="unknown backend 'oracle'"):
        backend_named("oracle")
    with pytest.raises(ConfigError, match="unsupported URL scheme"):
        L1dbConfig(url="oracle://u@h/db")


def test_every_row_names_classes_that_exist() -> None:
    assert len({b.name for b in BACKENDS}) == len(BACKENDS)
    assert len(set(URL_SCHEMES)) == len(URL_SCHEMES)
    for backend in BACKENDS:
        implementation = backend.load()
        assert issubclass(implementation, L1db) and not getattr(implementation, "__abstractmethods__", None)
        state = backend.load("state")
        assert callable(state)


def test_bare_schemes_get_the_installed_driver() -> None:
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalize_url("mariadb://u@h/db") == "mysql+mysqldb://u@h/db"
    assert normalize_url("mysql+pymysql://u@h/db") == "mysql+pymysql://u@h/db"
    assert normalize_url("sqlite:///x.sqlite3") == "sqlite:///x.sqlite3"


def test_open_l1db_loads_a_config_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import l1db.factory

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    loads = []
    original = l1db.factory.load_config
    monkeypatch.setattr(l1db.factory, "load_config", lambda path: loads.append(path) or original(path))
    with open_l1db(config) as db:
        assert type(db).__name__ == "L1dbSql" and isinstance(db, L1db)
        assert db.config.path == str(config)
    assert loads == [config]


def _partition_tables(url: str) -> set[str]:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        return {t for t in sa.inspect(engine).get_table_names() if re.fullmatch(r"\w+_mjd-?\d+", t)}
    finally:
        engine.dispose()


def test_create_l1_schema_makes_partitions_only_for_a_given_start_time(
    pg_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # The tool's [ap_proto] start_time is the tool's: l1db does not read it.
    config = write_config(tmp_path / "l1db.cfg", pg_db_url, history_partition_days=10,
                          start_time="2026-03-01T20:00:00")
    assert create_l1_schema(["-c", str(config)]) == 0
    assert _partition_tables(pg_db_url) == set()
    assert create_l1_schema(["-c", str(config), "--drop", "--start-time", "2026-03-01T20:00:00"]) == 0
    assert len(_partition_tables(pg_db_url)) == 2 * 2  # DiaSource, DiaForcedSource: that time's and the next
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        create_l1_schema(["-c", str(config), "--drop", "--start-time", "yesterday"])
    assert exit_info.value.code == 2
    assert "bad time 'yesterday'" in capsys.readouterr().err


def test_a_scratch_database_whose_server_went_away_keeps_the_run_s_error(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The run's error comes out, not the drop's that follows it (a server gone fails both); the drop's is a warning."""
    from l1db.scratch import Servers, scratch_database

    gone = Servers(cassandra_hosts="127.0.0.9")  # no node listens there
    with pytest.raises(ValueError, match="the run failed"):
        with scratch_database("cassandra", "l1dbtest_gone", tmp_path, gone) as url:
            assert url == "cassandra://127.0.0.9/l1dbtest_gone"
            raise ValueError("the run failed")
    assert "could not drop the scratch database l1dbtest_gone" in caplog.text
    # Without an error of the block, a drop that fails is the error.
    with pytest.raises(Exception, match="127.0.0.9"):
        with scratch_database("cassandra", "l1dbtest_gone", tmp_path, gone):
            pass
