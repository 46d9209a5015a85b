"""Every bad input is one line on stderr naming the file, option or value, exit code 1, and nothing written.

One test per class of bad input: config, database URL, catalogue, options,
timing logs, CSV tables. "Nothing written" is checked where it could happen:
no timing log (so no provenance record), no SQLite file made by connecting,
no visit stored, no CSV, no PNG and no output folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ap_runs import PATCH
from astropy.time import Time
from conftest import catalog_fixture, write_config

from dia_sim.catalog import generate_catalog
from dia_sim.cli import ap_proto, gen_sources, log2csv, plot_timing
from l1db import open_l1db
from l1db.cli import create_l1_schema

sources = catalog_fixture(200)


@pytest.fixture
def good_config(tmp_path: Path) -> Path:
    """A config of an SQLite database holding the L1 schema and no visit."""
    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    assert create_l1_schema.main(["-c", str(config)]) == 0
    return config


def _one_line(capsys: pytest.CaptureFixture, prog: str, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    return err


def _ap_proto(tmp_path: Path, *argv: str) -> int:
    return ap_proto.main(["-l", str(tmp_path / "timing.jsonl"), "--no-progress", *argv])


def _visits_stored(config: Path) -> int:
    with open_l1db(config) as db:
        return db.tableRowCount()["L1dbVisit"]


def test_bad_config(tmp_path: Path, sources: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path}/l1db.sqlite3"
    not_yaml = tmp_path / "not.yaml"
    not_yaml.write_text("tables: [\n  {name: DiaObject\n")
    not_schema = tmp_path / "other.yaml"
    not_schema.write_text("foo: 1\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)))
    # A schema_file pointing at a config that holds a password: never echoed.
    secret = tmp_path / "secret.cfg"
    secret.write_text("[database]\nurl = postgresql://user:s3cretpw@127.0.0.1/x\n")
    # No backend stores a time type: the format has none, and says so naming the column.
    timestamp = tmp_path / "timestamp.yaml"
    timestamp.write_text("tables:\n- name: DiaObject\n  primary_key: [diaObjectId]\n  columns:\n"
                         "  - {name: diaObjectId, type: BIGINT, nullable: false}\n"
                         "  - {name: lastSeen, type: TIMESTAMP}\n")
    cases = {
        "missing": (tmp_path / "nope.yaml", "file not found"),
        "directory": (tmp_path, "directory"),
        "not YAML": (not_yaml, "not valid YAML"),
        "not a schema": (not_schema, "not a schema file"),
        "binary": (binary, "not a text file"),
        "a config": (secret, "not"),
        "a time column": (timestamp, "column 'lastSeen': unknown type 'TIMESTAMP' (no backend stores a time type"),
    }
    for name, (schema_file, words) in cases.items():
        config = write_config(tmp_path / "bad.cfg", url, schema_file=schema_file)
        assert create_l1_schema.main(["-c", str(config)]) == 1, name
        err = _one_line(capsys, "create_l1_schema", "bad.cfg", "schema_file", str(schema_file), words)
        assert "s3cretpw" not in err
        assert _ap_proto(tmp_path, "-c", str(config), str(sources)) == 1, name
        err = _one_line(capsys, "ap_proto", "bad.cfg", "schema_file", words)
        assert "s3cretpw" not in err
    # Config file values are checked like command-line ones, naming the file and key.
    (tmp_path / "ap.cfg").write_text(f"[database]\nurl = {url}\n[ap_proto]\nstart_time = garbage\n")
    assert _ap_proto(tmp_path, "-c", str(tmp_path / "ap.cfg"), str(sources)) == 1
    _one_line(capsys, "ap_proto", "ap.cfg", "start_time", "garbage")
    (tmp_path / "ap.cfg").write_text(f"[database]\nurl = {url}\n[ap_proto]\nfov = nan\n")
    assert _ap_proto(tmp_path, "-c", str(tmp_path / "ap.cfg"), str(sources)) == 1
    _one_line(capsys, "ap_proto", "ap.cfg", "fov", "nan")
    # A value out of its bounds fails at loading, before the simulator sees it.
    (tmp_path / "ap.cfg").write_text(f"[database]\nurl = {url}\n[ap_proto]\ndetection_fraction = 2\n")
    assert _ap_proto(tmp_path, "-c", str(tmp_path / "ap.cfg"), str(sources)) == 1
    _one_line(capsys, "ap_proto", "ap.cfg: [ap_proto] detection_fraction: bad value '2'; allowed: a number from 0 to 1")
    assert not (tmp_path / "l1db.sqlite3").exists()
    assert not (tmp_path / "timing.jsonl").exists()


def test_bad_url(tmp_path: Path, sources: Path, capsys: pytest.CaptureFixture) -> None:
    cases = {
        "oracle://scott:tiger@db/x": "unsupported URL scheme 'oracle'",
        "mysql+pymysql://scott:tiger@127.0.0.1/x": "pymysql",
        "postgresql+asyncpg://scott:tiger@127.0.0.1/x": "asyncpg",
        "sqlite+nodriver:///x.sqlite3": "sqlite+nodriver",
        "cassandra://127.0.0.1/bad-name": "keyspace",
        "no url at all": "unsupported URL scheme",
        # Unreachable server: the URL is named, its password never.
        "postgresql://scott:tiger@127.0.0.1:1/x": "cannot connect",
    }
    for url, words in cases.items():
        config = tmp_path / "url.cfg"
        config.write_text(f"[database]\nurl = {url}\n")
        assert create_l1_schema.main(["-c", str(config)]) == 1, url
        err = _one_line(capsys, "create_l1_schema", words)
        assert "tiger" not in err
        assert _ap_proto(tmp_path, "-c", str(config), str(sources)) == 1, url
        err = _one_line(capsys, "ap_proto", words)
        assert "tiger" not in err
    # An SQLite file that does not exist yet: ap_proto says so and does not create it.
    config = write_config(tmp_path / "new.cfg", f"sqlite:///{tmp_path}/new.sqlite3")
    assert _ap_proto(tmp_path, "-c", str(config), str(sources)) == 1
    _one_line(capsys, "ap_proto", "new.sqlite3", "create_l1_schema")
    assert not (tmp_path / "new.sqlite3").exists()
    assert not (tmp_path / "timing.jsonl").exists()


def test_bad_catalogue(tmp_path: Path, good_config: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "text.npy"
    text.write_text("ra,dec\n1,2\n")
    np.savez(tmp_path / "arrays.npz", a=np.zeros(3))
    npz = (tmp_path / "arrays.npz").rename(tmp_path / "arrays.npy")
    shape = tmp_path / "shape.npy"
    np.save(shape, np.zeros((3, 3)))
    empty = tmp_path / "empty.npy"
    generate_catalog(empty, per_visit=0, seed=1)
    cases = {
        tmp_path / "missing.npy": "not found",
        tmp_path: "directory",
        text: "not a .npy catalogue",
        npz: ".npz",
        shape: "float64 fields",
        empty: "no source",
    }
    for path, words in cases.items():
        assert _ap_proto(tmp_path, "-c", str(good_config), str(path)) == 1, path
        _one_line(capsys, "ap_proto", str(path), words)
    assert not (tmp_path / "timing.jsonl").exists()
    assert _visits_stored(good_config) == 0
    # gen_sources: values that make no catalogue, or an unusable one.
    out = tmp_path / "new.npy"
    for argv, words in ((["--seed", "-1"], "--seed"), (["--per-visit", "0"], "--per-visit"),
                        (["--per-visit", "nan"], "--per-visit"), (["--fov", "inf"], "--fov")):
        assert gen_sources.main(["-o", str(out), *argv]) == 1, argv
        _one_line(capsys, "gen_sources", words)
        assert not out.exists()


def test_bad_options(tmp_path: Path, good_config: Path, sources: Path, capsys: pytest.CaptureFixture) -> None:
    cases = [
        (["--start-time", "garbage"], "--start-time"),
        (["--false-per-visit", "nan"], "--false-per-visit"),
        (["-i", "inf"], "--interval"),
        (["--seed", "-1"], "--seed"),
        (["--seed", "one"], "--seed"),
        (["--fov", "0"], "--fov"),
        (["--detection-fraction", "2"], "--detection-fraction"),
        (["--start-visit-id", "-3"], "--start-visit-id"),
        (["--start-visit-id", "3000000000"], "--start-visit-id"),
        (["--start-visit-id", "2147483640", "-n", "20"], "--num-visits"),
        (["--row-count-every", "-1"], "--row-count-every"),
        (["--divide", "0"], "--divide"),
        (["-n", "-1"], "--num-visits"),
        (["--sky", "north"], "--sky"),
        (["--pointing-area", "1,2,3"], "--pointing-area"),
        (["--pointing-area", "0,20,10,30"], "north of the equator"),
    ]
    for argv, words in cases:
        assert _ap_proto(tmp_path, "-c", str(good_config), *argv, str(sources)) == 1, argv
        _one_line(capsys, "ap_proto", words)
    assert not (tmp_path / "timing.jsonl").exists()
    assert _visits_stored(good_config) == 0
    # A partly stored tiled visit is resumed only with its tiling: refused before any record is written.
    with open_l1db(good_config) as db:
        db.saveVisit(7, Time("2026-01-01T20:00:00", scale="tai"), tile=0, n_tiles=4)
    assert _ap_proto(tmp_path, "-c", str(good_config), "--pointing-area", PATCH, str(sources)) == 1
    _one_line(capsys, "ap_proto", "visit 7", "--divide 2")
    assert not (tmp_path / "timing.jsonl").exists()
    assert _visits_stored(good_config) == 1


def test_bad_logs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    binary = tmp_path / "binary.log"
    binary.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "out.csv"
    cases = {
        str(tmp_path / "missing.log"): "missing.log",
        str(tmp_path): "is a directory",
        str(binary): "no timing record",
    }
    for path, words in cases.items():
        assert log2csv.main([path, "-o", str(out)]) == 1, path
        _one_line(capsys, "log2csv", path, words)
    assert not out.exists() and not Path(f"{out}.provenance.json").exists()


def test_bad_csv(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    header_only = tmp_path / "header.csv"
    header_only.write_text("run,visit,n_tiles,sum_select_real\n")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    out = tmp_path / "png"
    cases = {
        binary: "not UTF-8",
        header_only: "no visit rows",
        other: "not a log2csv table",
        empty: "empty file",
        tmp_path / "missing.csv": "no such CSV file",
        tmp_path: "is a directory",
    }
    for path, words in cases.items():
        assert plot_timing.main([str(path), "-o", str(out)]) == 1, path
        _one_line(capsys, "plot_timing", str(path), words)
        assert not out.exists()


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder nothing can be made in: read-only to a user, a /proc folder to root (who ignores modes)."""
    import os

    if os.geteuid() == 0:
        return Path("/proc/self/fdinfo")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


def test_unwritable_outputs(tmp_path: Path, good_config: Path, sources: Path, capsys: pytest.CaptureFixture) -> None:
    """An output that cannot be written (a folder, a path under a file, no permission) is one line, not a traceback."""
    from l1db.cli import l1db_state

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for log, words in ((tmp_path, "Is a directory"), (a_file / "timing.jsonl", "Not a directory"),
                       (_unwritable_folder(tmp_path) / "timing.jsonl", "cannot write the timing log")):
        assert ap_proto.main(["-c", str(good_config), "-l", str(log), "--no-progress", str(sources)]) == 1
        _one_line(capsys, "ap_proto", str(log), words)
    assert _visits_stored(good_config) == 0
    for folder, words in ((a_file / "state", "a-file is a file, not a folder"),
                          (_unwritable_folder(tmp_path) / "state", "cannot write the saved state")):
        assert l1db_state.main(["save", "-c", str(good_config), str(folder)]) == 1
        _one_line(capsys, "l1db_state", words)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_damaged_cassandra_run_dirs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A Cassandra run dir that is a file, lies under one, or holds a damaged cluster.json: one line each."""
    from l1db.cli import cassandra_nodes, l1db_state

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for run_dir in (a_file, a_file / "run"):
        for command in (["start", "--base-address", "127.0.0.41"], ["status"], ["stop"]):
            assert cassandra_nodes.main([*command, "--run-dir", str(run_dir)]) == 1, command
            _one_line(capsys, "cassandra_nodes", f"{a_file} is a file, not a folder")
    assert not (a_file / "run").exists()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "cluster.json").write_text('{"version": ')
    config = write_config(tmp_path / "cassandra.cfg", "cassandra://127.0.0.41/l1db_damaged")
    assert l1db_state.main(["save", "-c", str(config), "--run-dir", str(damaged), str(tmp_path / "state")]) == 1
    _one_line(capsys, "l1db_state", "cluster.json is damaged")
    assert not (tmp_path / "state").exists()


def test_wording_of_huge_values_bad_ports_and_refusals(tmp_path: Path, good_config: Path, sources: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    """What a fault tester met: each said in the toolkit's words, in one line, at once."""
    import re
    import time

    # A huge float is echoed as such, never as its 300 digits, nor as numpy's words.
    for argv, words in ((["--observations-per-year", "1e300", "--pointing-area", PATCH], "K = 1e+300"),
                        (["--false-per-visit", "1e300"], "--false-per-visit"),
                        (["--transients-per-visit", "1e300"], "--transients-per-visit")):
        assert _ap_proto(tmp_path, "-c", str(good_config), *argv, str(sources)) == 1, argv
        err = _one_line(capsys, "ap_proto", words)
        assert not re.search(r"\d{20}", err) and "lam value" not in err, err
    assert gen_sources.main(["--per-visit", "1e300", "-o", str(tmp_path / "huge.npy")]) == 1
    err = _one_line(capsys, "gen_sources", "--per-visit 1e+300", "GB free")
    assert not (tmp_path / "huge.npy").exists()
    # A bad port is named as a port (an SQL URL; the Cassandra URL's says so already); the password never.
    for port in ("abc", "99999999", "1e300"):
        config = tmp_path / "port.cfg"
        config.write_text(f"[database]\nurl = postgresql://scott:tiger@127.0.0.1:{port}/x\n")
        assert create_l1_schema.main(["-c", str(config)]) == 1, port
        err = _one_line(capsys, "create_l1_schema", f"bad port '{port}'", "65535")
        assert "invalid literal" not in err and "tiger" not in err
    # plot_timing -o that is a file, or lies under one: said so, not "[Errno 17] File exists".
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    csv = tmp_path / "run.csv"
    csv.write_text("visit\n1\n")
    for out in (a_file, a_file / "plots"):
        assert plot_timing.main([str(csv), "-o", str(out)]) == 1
        err = _one_line(capsys, "plot_timing", f"{a_file} is a file, not a folder")
        assert "Errno" not in err
    # A scheduler address where nothing listens is said at once (Dask would retry for 30 s).
    started = time.monotonic()
    assert _ap_proto(tmp_path, "-c", str(good_config), "--divide", "2", "--scheduler", "tcp://127.0.0.1:1",
                     str(sources)) == 1
    _one_line(capsys, "ap_proto", "tcp://127.0.0.1:1", "connection refused")
    assert time.monotonic() - started < 20
    assert not (tmp_path / "timing.jsonl").exists()


def test_mariadb_url_without_a_database(tmp_path: Path, sources: Path, capsys: pytest.CaptureFixture) -> None:
    """A MariaDB URL naming no database: one line from every tool (was a driver traceback), no password."""
    from l1db.cli import l1db_state

    config = tmp_path / "mariadb.cfg"
    config.write_text("[database]\nurl = mysql://scott:tiger@127.0.0.1:3306/\n")
    runs = {
        "create_l1_schema": lambda: create_l1_schema.main(["-c", str(config)]),
        "ap_proto": lambda: _ap_proto(tmp_path, "-c", str(config), str(sources)),
        "l1db_state": lambda: l1db_state.main(["restore", "-c", str(config), str(tmp_path / "saved")]),
    }
    for prog, run in runs.items():
        assert run() == 1, prog
        err = _one_line(capsys, prog, "names no database", "/DATABASE")
        assert "tiger" not in err
