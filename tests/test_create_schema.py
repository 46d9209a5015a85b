"""create_l1_schema on every backend: tables, columns, keys, --drop, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from l1db.cli.create_l1_schema import main
from l1db.config import normalize_url
from l1db.schema import PIXEL_COLUMN

APDB_YAML = Path(sa.__file__).parent.parent / "lsst" / "sdm" / "schemas" / "apdb.yaml"


def _felis_columns() -> dict[str, list[str]]:
    doc = yaml.safe_load(APDB_YAML.read_text())
    return {
        t["name"]: [c["name"] for c in t["columns"]]
        for t in doc["tables"]
        if t["name"] in ("DiaObject", "DiaSource", "DiaForcedSource")
    }


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
    db_url: str, make_config, options: dict, extra_tables: set[str], capsys: pytest.CaptureFixture
) -> None:
    config = make_config(**options)
    assert main(["-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "created L1 schema" in out and "DiaObject:" in out
    inspector = _inspect(db_url)
    tables = set(inspector.get_table_names())
    assert tables == {"DiaObject", "DiaSource", "DiaForcedSource", "L1dbVisit", "L1dbMetadata"} | extra_tables
    felis = _felis_columns()
    assert (len(felis["DiaObject"]), len(felis["DiaSource"]), len(felis["DiaForcedSource"])) == (83, 103, 14)
    for name, columns in felis.items():
        db_columns = [c["name"] for c in inspector.get_columns(name)]
        toolkit = [PIXEL_COLUMN] if name != "DiaForcedSource" else []
        assert db_columns == columns + toolkit, name
    for name in extra_tables:
        assert [c["name"] for c in inspector.get_columns(name)] == felis["DiaObject"] + [PIXEL_COLUMN]
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
    assert inspector.get_pk_constraint("DiaForcedSource")["constrained_columns"] == [
        "diaObjectId", "visit", "detector"]
    nullable = {c["name"]: c["nullable"] for c in inspector.get_columns("DiaSource")}
    assert nullable["diaSourceId"] is False and nullable["ra"] is False and nullable["raErr"] is True


def test_refuses_existing_tables_without_drop(db_url: str, make_config, capsys: pytest.CaptureFixture) -> None:
    config = make_config(dia_object_index="baseline")
    assert main(["-c", str(config)]) == 0
    engine = sa.create_engine(normalize_url(db_url), poolclass=sa.pool.NullPool)
    visits = sa.table("L1dbVisit", sa.column("visitId"), sa.column("tile"), sa.column("visitTimeMjdTai"),
                      sa.column("nTiles"))
    count = sa.select(sa.func.count()).select_from(visits)
    with engine.begin() as conn:
        conn.execute(visits.insert().values(visitId=1, tile=0, visitTimeMjdTai=60000.0, nTiles=1))
    capsys.readouterr()
    assert main(["-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "--drop" in err and "Traceback" not in err
    with engine.connect() as conn:  # untouched
        assert conn.execute(count).scalar_one() == 1

    # --drop re-creates, also switching to another strategy's tables.
    other = make_config(dia_object_index="last_object_table")
    assert main(["-c", str(other), "--drop"]) == 0
    with engine.connect() as conn:
        assert conn.execute(count).scalar_one() == 0
    assert "DiaObjectLast" in sa.inspect(engine).get_table_names()
    back = make_config(dia_object_index="baseline")
    assert main(["-c", str(back), "--drop"]) == 0
    assert "DiaObjectLast" not in sa.inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nobody:hunter2@127.0.0.1:1/l1db",
        "mysql://nobody:hunter2@127.0.0.1:1/l1db",
        "sqlite:////nonexistent-dir/sub/l1db.sqlite3",
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

