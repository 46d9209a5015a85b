"""create_l1_schema on every backend: tables, columns, keys, --drop, errors."""

from __future__ import annotations

import re
from pathlib import Path

import felis.datamodel
import pytest
import sqlalchemy as sa

from l1db.cli.create_l1_schema import main
from l1db.config import normalize_url
from l1db.parse_cat import packaged_apdb_path
from l1db.sql.schema import PIXEL_COLUMN


def _felis_columns(names: tuple[str, ...] = ("DiaObject", "DiaSource", "DiaForcedSource")) -> dict[str, list[str]]:
    """The published tables' columns as lsst-felis reads apdb.yaml."""
    model = felis.datamodel.Schema.from_uri(str(packaged_apdb_path()), context={"id_generation": True})
    return {t.name: [c.name for c in t.columns] for t in model.tables if t.name in names}


def _published_last_columns() -> list[str]:
    """DiaObjectLast's columns as lsst-felis reads apdb.yaml: the published latest-version table."""
    columns = _felis_columns(("DiaObjectLast",))["DiaObjectLast"]
    assert len(columns) == 10 and len(set(columns) & set(_felis_columns()["DiaObject"])) == 10
    return columns


def _inspect(url: str) -> sa.Inspector:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    return sa.inspect(engine)


@pytest.mark.parametrize(
    "options, extra_tables",
    [
        ({"dia_object_index": "baseline"}, set()),
        ({"dia_object_index": "pix_id_iov"}, set()),
        ({"dia_object_index": "last_object_table"}, {"DiaObjectLast"}),
        ({"dia_object_index": "baseline", "dia_object_nightly": 1}, {"DiaObjectNightly"}),
    ],
    ids=["baseline", "pix_id_iov", "last_object_table", "nightly"],
)
def test_schema_has_every_published_column(
    sql_db_url: str, make_sql_config, options: dict, extra_tables: set[str], capsys: pytest.CaptureFixture,
    base_layout: dict,
) -> None:
    partitioned = bool(base_layout.get("history_partition_days"))
    config = make_sql_config(**options)
    # The first visit's time: with time partitions, create_l1_schema makes the partitions of its days.
    assert main(["-c", str(config), "--start-time", "2026-01-01T20:00:00"]) == 0
    out = capsys.readouterr().out
    assert "created L1 schema" in out and "DiaObject:" in out
    inspector = _inspect(sql_db_url)
    tables = set(inspector.get_table_names())
    # Time partitions are tables too (named <table>_mjd<start>).
    partitions = {t for t in tables if re.fullmatch(r"(DiaObject|DiaSource|DiaForcedSource)_mjd-?\d+", t)}
    assert bool(partitions) == partitioned
    tables -= partitions
    assert tables == {"DiaObject", "DiaSource", "DiaForcedSource", "L1dbVisit", "L1dbMetadata"} | extra_tables
    felis = _felis_columns()
    assert (len(felis["DiaObject"]), len(felis["DiaSource"]), len(felis["DiaForcedSource"])) == (83, 103, 14)
    for name, columns in felis.items():
        db_columns = [c["name"] for c in inspector.get_columns(name)]
        toolkit = [PIXEL_COLUMN] if name != "DiaForcedSource" else []
        assert db_columns == columns + toolkit, name
    # The latest-version table has exactly its published columns (the full rows are in DiaObject).
    published = {"DiaObjectLast": _published_last_columns(), "DiaObjectNightly": felis["DiaObject"]}
    for name in extra_tables:
        assert [c["name"] for c in inspector.get_columns(name)] == published[name] + [PIXEL_COLUMN], name
    key = inspector.get_pk_constraint("DiaObject")["constrained_columns"]
    if options["dia_object_index"] == "pix_id_iov":
        assert key == [PIXEL_COLUMN, "diaObjectId", "validityStartMjdTai"]
    else:
        assert key == ["diaObjectId", "validityStartMjdTai"]
    if "DiaObjectLast" in extra_tables:
        assert inspector.get_pk_constraint("DiaObjectLast")["constrained_columns"] == ["diaObjectId"]
    if "DiaObjectNightly" in extra_tables:
        assert inspector.get_pk_constraint("DiaObjectNightly")["constrained_columns"] == []
        assert inspector.get_indexes("DiaObjectNightly") == []
    # A partitioned table's key holds its partition column.
    assert inspector.get_pk_constraint("DiaForcedSource")["constrained_columns"] == [
        "diaObjectId", "visit", "detector"] + (["midpointMjdTai"] if partitioned else [])
    assert inspector.get_pk_constraint("DiaSource")["constrained_columns"] == [
        "diaSourceId"] + (["midpointMjdTai"] if partitioned else [])
    nullable = {c["name"]: c["nullable"] for c in inspector.get_columns("DiaSource")}
    assert nullable["diaSourceId"] is False and nullable["ra"] is False and nullable["raErr"] is True


def test_refuses_existing_tables_without_drop(db_url: str, make_config, capsys: pytest.CaptureFixture) -> None:
    from astropy.time import Time

    from l1db import open_l1db

    config = make_config(dia_object_index="baseline", part_pixel_level=9)
    assert main(["-c", str(config)]) == 0
    with open_l1db(config) as db:
        db.saveVisit(1, Time(60000.0, format="mjd", scale="tai"))
    capsys.readouterr()
    assert main(["-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "--drop" in err and "Traceback" not in err and err.count("\n") == 1
    with open_l1db(config) as db:  # untouched
        assert db.tableRowCount()["L1dbVisit"] == 1

    # --drop re-creates, also with another layout's tables or partitions.
    other = make_config(dia_object_index="last_object_table", part_pixel_level=8)
    assert main(["-c", str(other), "--drop"]) == 0
    with open_l1db(other) as db:
        counts = db.tableRowCount()
        assert counts["L1dbVisit"] == 0 and "DiaObjectLast" in counts
    back = make_config(dia_object_index="baseline", part_pixel_level=9)
    assert main(["-c", str(back), "--drop"]) == 0
    with open_l1db(back) as db:
        assert ("DiaObjectLast" in db.tableRowCount()) == db_url.startswith("cassandra")


def test_cassandra_schema_layout(cassandra_db_url: str, make_cassandra_config, capsys: pytest.CaptureFixture) -> None:
    """Cassandra: every published column, production's partition and clustering keys, the keyspace's replication."""
    from conftest import cassandra_session

    db_url = cassandra_db_url
    config = make_cassandra_config(replication_factor=1)
    assert main(["-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "created L1 schema" in out and "DiaObjectLast:" in out and "partition key (apdb_part)" in out
    keyspace = db_url.rsplit("/", 1)[1]
    cluster, session = cassandra_session()
    try:
        rows = list(session.execute(
            "SELECT table_name, column_name, kind, position FROM system_schema.columns WHERE keyspace_name = %s",
            [keyspace]))
        replication = session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", [keyspace]).one()[0]
    finally:
        cluster.shutdown()
    assert replication["replication_factor"] == "1"
    columns: dict[str, dict[str, tuple[str, int]]] = {}
    for table, column, kind, position in rows:
        columns.setdefault(table, {})[column] = (kind, position)

    def key(table: str, kind: str) -> list[str]:
        return [c for c, (k, p) in sorted(columns[table].items(), key=lambda item: item[1][1]) if k == kind]

    felis = _felis_columns()
    for name, published in felis.items():
        toolkit = {"apdb_part", "apdb_time_part"}
        assert set(columns[name]) == set(published) | toolkit, name
    assert set(columns["DiaObjectLast"]) == set(_published_last_columns()) | {"apdb_part"}
    assert key("DiaObjectLast", "partition_key") == ["apdb_part"]
    assert key("DiaObjectLast", "clustering") == ["diaObjectId"]
    for name in felis:
        assert key(name, "partition_key") == ["apdb_part", "apdb_time_part"], name
    assert key("DiaObject", "clustering") == ["diaObjectId", "validityStartMjdTai"]
    assert key("DiaSource", "clustering") == ["diaSourceId"]
    assert key("DiaForcedSource", "clustering") == ["diaObjectId", "visit", "detector"]
    assert key("DiaObjectLastToPartition", "partition_key") == ["diaObjectId"]


def test_cassandra_replication_above_the_live_nodes_is_refused(cassandra_db_url: str, make_cassandra_config,
                                                               capsys: pytest.CaptureFixture) -> None:
    """A replication factor above the live nodes: one line naming both numbers, and no keyspace made."""
    from conftest import cassandra_session

    cluster, session = cassandra_session()
    try:
        up = sorted(str(host.endpoint.address) for host in cluster.metadata.all_hosts() if host.is_up)
        live = len(up)
        keyspace = cassandra_db_url.rsplit("/", 1)[1]
        config = make_cassandra_config(replication_factor=live + 2)
        assert main(["-c", str(config)]) == 1
        err = capsys.readouterr().err
        assert err == (f"create_l1_schema: error: replication_factor {live + 2} is above the {live} live node(s) "
                       f"of the cluster ({', '.join(up)}): nothing created; set "
                       f"replication_factor to at most {live}, or start more nodes\n"), err
        assert not list(session.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                                        [keyspace]))
    finally:
        cluster.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nobody:hunter2@127.0.0.1:1/l1db",
        "mysql://nobody:hunter2@127.0.0.1:1/l1db",
        "sqlite:////nonexistent-dir/sub/l1db.sqlite3",
        "cassandra://127.0.0.1:1/l1db",
    ],
)
def test_unreachable_database_is_one_line(tmp_path: Path, url: str, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "bad.cfg"
    config.write_text(f"[database]\nurl = {url}\n")
    assert main(["-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot connect" in err
    assert "hunter2" not in err
    assert "Traceback" not in err


def test_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "bad.cfg"
    config.write_text("[database]\nurl = sqlite://\n[l1db]\ndia_object_index = nope\n")
    assert main(["-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dia_object_index" in err

