"""l1db_state: save a database after a few visits, restore it into an empty one, and the next visit is the same.

On every backend, with the engines' own tools: the original and the restored
database then run one more ap_proto visit each, and every table must hold the
same rows, bit for bit, and the two timing logs the same row counts.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from ap_runs import run_ap_proto
from conftest import cassandra_session, catalog_fixture, create_test_database, write_config

from l1db.cli.create_l1_schema import main as create_schema
from l1db.cli.l1db_state import main as l1db_state
from l1db.config import load_config, normalize_url, parse_cassandra_url
from l1db.state import MANIFEST, schema_digest
from l1db.tables import load_definitions
from l1db.timing_log import parse_log

VISITS = 3


sources = catalog_fixture(300, seed=5)


@pytest.fixture
def target_url(backend: str, tmp_path: Path):
    """A second empty database on the same backend: where a state is restored."""
    (tmp_path / "target").mkdir()
    url, drop = create_test_database(backend, tmp_path / "target")
    try:
        yield url
    finally:
        drop()


def _ap_proto(config: Path, sources: Path, log: Path, visits: int) -> None:
    assert run_ap_proto(config, sources, log, "--false-per-visit", "50", "--transients-per-visit", "5",
                        "--row-count-every", "1", "-n", visits) == 0


def _tables(config: Path) -> dict[str, pd.DataFrame]:
    """Every row of every table of the database, sorted by its key, read with the backend's driver."""
    cfg = load_config(config)
    frames = {}
    if cfg.backend == "cassandra":
        keyspace = parse_cassandra_url(cfg.url).keyspace
        cluster, session = cassandra_session()
        try:
            columns = list(session.execute(
                "SELECT table_name, column_name, kind, position FROM system_schema.columns "
                "WHERE keyspace_name = %s", [keyspace]))
            for table in sorted({c.table_name for c in columns}):
                names = [c.column_name for c in columns if c.table_name == table]
                keys = [c.column_name for c in sorted(columns, key=lambda c: (c.kind, c.position))
                        if c.table_name == table and c.kind in ("partition_key", "clustering")]
                rows = session.execute(f'SELECT * FROM "{keyspace}"."{table}"', timeout=120)
                frame = pd.DataFrame([tuple(r) for r in rows], columns=rows.column_names or names)
                frames[table] = frame.sort_values(keys).reset_index(drop=True)
        finally:
            cluster.shutdown()
        return frames
    engine = sa.create_engine(normalize_url(cfg.url), poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        with engine.connect() as conn:
            for table in sorted(inspector.get_table_names()):
                keys = inspector.get_pk_constraint(table)["constrained_columns"]
                frame = pd.read_sql_table(table, conn)
                frames[table] = frame.sort_values(keys).reset_index(drop=True)
    finally:
        engine.dispose()
    return frames


def _files(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: its modification time (ns), size and SHA-256."""
    import hashlib

    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size,
                                         hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_only(folder: Path, on: bool = True) -> None:
    """Make ``folder`` and what it holds read-only (``on``), or writable again."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222 if on else mode | 0o200)


def _last_visit_records(log: Path) -> tuple[pd.DataFrame, dict]:
    """(op, rows) of the log's last visit, and its last row-count record."""
    parsed = parse_log(log)
    timings = parsed.timings
    last = timings[timings["visit"] == timings["visit"].max()]
    ops = last[["visit", "op", "rows"]].sort_values(["op"]).reset_index(drop=True)
    return ops, parsed.counts[-1]


def test_restored_database_makes_the_same_next_visit(backend: str, db_url: str, target_url: str, sources: Path,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     base_layout: dict) -> None:
    # base_layout: also on PostgreSQL with time partitions (their rows are in the partitions); with the
    # replica's tables, which a state must carry too.
    options = {**base_layout, "dia_object_index": "last_object_table", "enable_replica": 1}
    original = write_config(tmp_path / "original.cfg", db_url, **options)
    restored = write_config(tmp_path / "restored.cfg", target_url, **options)
    assert create_schema(["-c", str(original)]) == 0
    _ap_proto(original, sources, tmp_path / "first.jsonl", VISITS)
    saved = tmp_path / "saved"
    assert l1db_state(["save", "-c", str(original), str(saved)]) == 0
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["backend"] == backend
    assert manifest["last_visit"]["id"] == VISITS and manifest["row_counts"]["L1dbVisit"] == VISITS
    assert manifest["row_counts"]["DiaSource"] > 0 and manifest["tools"]
    assert manifest["row_counts"]["ApdbReplicaChunks"] > 0
    assert not list(tmp_path.glob(".saved.partial*"))

    monkeypatch.chdir(tmp_path)  # a folder given relative to the working directory
    files = _files(saved)
    _read_only(saved)
    try:
        assert l1db_state(["restore", "-c", str(restored), saved.name]) == 0
    finally:
        _read_only(saved, False)
    # A saved state is read-only to a restore: no file of it written, moved or touched.
    assert _files(saved) == files
    before = _tables(original)
    after_restore = _tables(restored)
    assert list(before) == list(after_restore)
    for table in before:
        pd.testing.assert_frame_equal(after_restore[table], before[table], check_exact=True, obj=table)

    # One more visit on each: it resumes after the saved visit and does exactly the same.
    _ap_proto(original, sources, tmp_path / "original.jsonl", 1)
    _ap_proto(restored, sources, tmp_path / "restored.jsonl", 1)
    original_tables, restored_tables = _tables(original), _tables(restored)
    assert list(original_tables) == list(restored_tables)
    assert len(original_tables["L1dbVisit"]) == VISITS + 1
    for table, frame in original_tables.items():
        assert len(frame) >= len(before[table])
        if table == "ApdbReplicaChunks":
            # A store gives its chunk a new random unique_id (as dax_apdb's): all else is the same.
            assert frame["unique_id"].notna().all()
            frame, restored_tables[table] = (f.drop(columns="unique_id") for f in (frame, restored_tables[table]))
        pd.testing.assert_frame_equal(restored_tables[table], frame, check_exact=True, obj=table)
    original_ops, original_counts = _last_visit_records(tmp_path / "original.jsonl")
    restored_ops, restored_counts = _last_visit_records(tmp_path / "restored.jsonl")
    assert original_ops["visit"].iloc[0] == VISITS + 1
    pd.testing.assert_frame_equal(restored_ops, original_ops)
    assert restored_counts["visit"] == original_counts["visit"] == VISITS + 1
    assert restored_counts["tables"] == original_counts["tables"]
    # The saved folder is untouched by a restore: it can serve again.
    assert l1db_state(["show", str(saved)]) == 0


def test_refusals(backend: str, db_url: str, target_url: str, sources: Path, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    original = write_config(tmp_path / "original.cfg", db_url)
    assert create_schema(["-c", str(original)]) == 0
    _ap_proto(original, sources, tmp_path / "first.jsonl", 1)
    saved = tmp_path / "saved"
    assert l1db_state(["save", "-c", str(original), str(saved)]) == 0
    capsys.readouterr()

    def refused(*argv: str) -> str:
        assert l1db_state(list(argv)) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return err

    # A folder that exists is never overwritten.
    assert "exists" in refused("save", "-c", str(original), str(saved))
    # A database that is not empty is not restored into (the source itself here), and is left as it was.
    counts = {t: len(f) for t, f in _tables(original).items()}
    assert "not empty" in refused("restore", "-c", str(original), str(saved))
    assert {t: len(f) for t, f in _tables(original).items()} == counts
    # Another schema option than the saved one.
    other = write_config(tmp_path / "other.cfg", target_url, dia_object_index="pix_id_iov",
                         part_pixel_level=8)
    assert "other schema options" in refused("restore", "-c", str(other), str(saved))
    # A state saved when DiaObjectLast held full rows: the toolkit's table definitions then were the
    # packaged ones without DiaObjectLast's, and their digest is in its manifest.
    old = tmp_path / "before_published_last"
    shutil.copytree(saved, old)
    manifest = json.loads((old / MANIFEST).read_text())
    definitions = load_definitions(load_config(original))
    assert manifest["schema_digest"] == schema_digest(definitions)
    without_last = dataclasses.replace(definitions, tables={
        name: table for name, table in definitions.tables.items() if name != "DiaObjectLast"})
    manifest["schema_digest"] = schema_digest(without_last)
    (old / MANIFEST).write_text(json.dumps(manifest))
    empty = write_config(tmp_path / "empty.cfg", target_url)
    assert "other table definitions" in refused("restore", "-c", str(empty), str(old))
    assert _tables(empty) == {}
    # Another backend than the saved one.
    sqlite = write_config(tmp_path / "sqlite.cfg", f"sqlite:///{tmp_path}/other.sqlite3")
    if backend != "sqlite":
        assert f"holds a {json.loads((saved / MANIFEST).read_text())['backend']} database" in refused(
            "restore", "-c", str(sqlite), str(saved))
    # No manifest, or a broken one.
    assert "not a saved state" in refused("restore", "-c", str(sqlite), str(tmp_path))
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    (broken / MANIFEST).write_text("{not json")
    assert "unreadable manifest.json" in refused("restore", "-c", str(sqlite), str(broken))
    # A saved file cut short: the restore fails in one line and leaves the target empty.
    truncated = tmp_path / "truncated"
    shutil.copytree(saved, truncated)
    data = max((p for p in truncated.rglob("*") if p.is_file() and p.name != MANIFEST), key=lambda p: p.stat().st_size)
    manifest = json.loads((truncated / MANIFEST).read_text())
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    manifest["files"][str(data.relative_to(truncated))] = data.stat().st_size
    (truncated / MANIFEST).write_text(json.dumps(manifest))
    target = write_config(tmp_path / "target.cfg", target_url)
    assert "failed, the target is left empty" in refused("restore", "-c", str(target), str(truncated))
    assert _tables(target) == {}
    # The target is still usable: the intact state restores into it.
    assert l1db_state(["restore", "-c", str(target), str(saved)]) == 0
    assert {t: len(f) for t, f in _tables(target).items()} == counts


def test_missing_tools_and_unknown_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any database is touched, naming what to install or where the nodes are."""
    mysql = write_config(tmp_path / "mysql.cfg", "mysql://l1dbtest@127.0.0.1:3306/l1dbtest_no_such_db")
    empty = tmp_path / "bin"
    empty.mkdir()
    with monkeypatch.context() as patch:
        patch.setenv("PATH", str(empty))
        assert l1db_state(["save", "-c", str(mysql), str(tmp_path / "saved")]) == 1
    assert capsys.readouterr().err == "l1db_state: error: mariadb-dump not found: install mariadb-client\n"
    cassandra = write_config(tmp_path / "cassandra.cfg", "cassandra://127.0.0.1/l1dbtest_no_such_keyspace")
    assert l1db_state(["save", "-c", str(cassandra), "--run-dir", str(tmp_path), str(tmp_path / "saved")]) == 1
    assert f"{tmp_path} holds no Cassandra nodes: give --run-dir" in capsys.readouterr().err
    assert l1db_state(["save", "-c", str(mysql), "--run-dir", str(tmp_path), str(tmp_path / "saved")]) == 1
    assert "--run-dir is for Cassandra configs only" in capsys.readouterr().err
    assert not (tmp_path / "saved").exists()
