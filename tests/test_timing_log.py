"""Tests of l1db.timing_log: the timing-log writer and parser."""

from __future__ import annotations

import io
import json
import multiprocessing
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from l1db.timer import Timer, TimingRecord
from l1db.timing_log import (
    FORMAT_VERSION,
    OPERATIONS,
    TIMING_COLUMNS,
    HeldRecords,
    TimingLogWriter,
    machine_info,
    new_run_id,
    parse_log,
    parse_logs,
    toolkit_info,
)

RECORDS = [
    (1, 0, TimingRecord("obj_select", 0.5, 0.25, 0.125, 1000)),
    (1, 1, TimingRecord("src_select", 1.5, 0.5, 0.0, 0)),
    (2, 0, TimingRecord("store", 2.25, 1.0, 0.5, None)),
    (2, 3, TimingRecord("daily_merge", 10.0, 0.75, 0.25, 123456)),
    # A store that waited on the database's back-pressure and sent 7 requests again.
    (3, 0, TimingRecord("store", 4.5, 1.0, 0.25, None, wait=1.75, resent=7)),
]


def _write(writer: TimingLogWriter) -> None:
    writer.provenance({"backend": "sqlite", "seed": np.int64(7), "config": {"l1db": {"x": 1}},
                       "argv": ["ap_proto", "-n", "2"], "extra_key": {"nested": [1, 2]}})
    for visit, tile, record in RECORDS:
        writer.sink(visit, tile)(record)


def _expected(run: str) -> pd.DataFrame:
    rows = [(run, v, t, r.op, r.real, r.user, r.sys, r.rows, r.wait, r.resent, False) for v, t, r in RECORDS]
    frame = pd.DataFrame(rows, columns=list(TIMING_COLUMNS))
    return frame.astype({"run": "str", "op": "str", "rows": "Int64", "wait": "float64", "resent": "int64",
                         "daily": "bool"})


def test_round_trip_file(tmp_path: Path) -> None:
    path = tmp_path / "timing.log"
    with TimingLogWriter(path, run="run-a") as writer:
        _write(writer)
    parsed = parse_log(path)
    assert parsed.malformed == 0
    assert parsed.unknown == 0
    pd.testing.assert_frame_equal(parsed.timings, _expected("run-a"))
    assert parsed.timings.dtypes["visit"] == np.int64
    (prov,) = parsed.provenance
    assert prov["record"] == "provenance"
    assert prov["format"] == FORMAT_VERSION
    assert prov["run"] == "run-a"
    assert prov["seed"] == 7
    assert prov["extra_key"] == {"nested": [1, 2]}
    assert prov["argv"] == ["ap_proto", "-n", "2"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*\+00:00$", prov["time"])
    assert parsed.runs() == ["run-a"]


def test_round_trip_stream_and_one_json_object_per_line() -> None:
    stream = io.StringIO()
    writer = TimingLogWriter(stream)
    _write(writer)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 + len(RECORDS)
    for line in lines:
        record = json.loads(line)
        assert list(record)[0] == "record"
    assert json.loads(lines[1]) == {
        "record": "timing", "run": writer.run, "visit": 1, "tile": 0, "op": "obj_select",
        "real": 0.5, "user": 0.25, "sys": 0.125, "rows": 1000,
    }
    # Back-pressure fields only where the operation waited.
    assert json.loads(lines[-1])["wait"] == 1.75 and json.loads(lines[-1])["resent"] == 7
    assert all("wait" not in json.loads(line) and "resent" not in json.loads(line) for line in lines[1:-1])
    parsed = parse_log(io.StringIO(stream.getvalue()))
    pd.testing.assert_frame_equal(parsed.timings, _expected(writer.run))


def test_back_pressure_fields_validated() -> None:
    base = '{"record": "timing", "run": "r", "visit": 1, "tile": 0, "op": "store", "real": 1, "user": 0, "sys": 0, ' \
           '"rows": null'
    lines = [base + "}", base + ', "wait": 0.5, "resent": 2}', base + ', "wait": -1, "resent": 2}',
             base + ', "wait": 0.5, "resent": 1.5}', base + ', "wait": 0.5, "resent": -1}']
    parsed = parse_log(lines)
    assert parsed.malformed == 3
    assert parsed.timings["wait"].tolist() == [0.0, 0.5]
    assert parsed.timings["resent"].tolist() == [0, 2]


def test_daily_job_records_marked() -> None:
    """The daily job's records say so (``daily``, only on them); a mark that is not a bool is malformed."""
    stream = io.StringIO()
    writer = TimingLogWriter(stream, run="r")
    writer.sink(4, 0, daily=True)(TimingRecord("obj_insert", 0.5, 0.25, 0.0, 10))
    writer.sink(4, 0)(TimingRecord("obj_nightly_insert", 0.5, 0.25, 0.0, 3))
    lines = stream.getvalue().splitlines()
    assert json.loads(lines[0])["daily"] is True and "daily" not in json.loads(lines[1])
    bad = lines[0].replace('"daily": true', '"daily": 1')
    parsed = parse_log([*lines, bad])
    assert parsed.malformed == 1 and parsed.timings["daily"].tolist() == [True, False]


def test_timer_sink_writes_record() -> None:
    stream = io.StringIO()
    writer = TimingLogWriter(stream, run="r")
    with Timer("obj_insert", writer.sink(visit=np.int64(42), tile=3)) as timer:
        timer.rows = np.int64(17)
    parsed = parse_log(stream.getvalue().splitlines())
    row = parsed.timings.iloc[0]
    assert (row["run"], row["visit"], row["tile"], row["op"], row["rows"]) == ("r", 42, 3, "obj_insert", 17)
    assert row["real"] >= 0


def test_garbage_lines_ignored_and_prefixed_records_kept() -> None:
    stream = io.StringIO()
    writer = TimingLogWriter(stream, run="r")
    _write(writer)
    lines = stream.getvalue().splitlines()
    mixed = ["INFO ap_proto: starting", "", "   ", "Traceback? no: just text with a } brace"]
    mixed += lines[:2]
    mixed += ["2026-11-21 10:00:00 INFO timing " + lines[2], "progress 3/10 [####   ]"]
    mixed += lines[3:]
    parsed = parse_log(mixed)
    assert parsed.malformed == 0
    pd.testing.assert_frame_equal(parsed.timings, _expected("r"))
    assert len(parsed.provenance) == 1


@pytest.mark.parametrize("bad", [
    '{"record": "timing", "run": "r", "visit": 1, "tile": 0, "op": "x", "real": 1.0, "user": 0.5}',  # no sys
    '{"record": "timing", "run": "r", "visit": "1", "tile": 0, "op": "x", "real": 1, "user": 0, "sys": 0, "rows": 1}',
    '{"record": "timing", "run": "r", "visit": 1, "tile": -1, "op": "x", "real": 1, "user": 0, "sys": 0, "rows": 1}',
    '{"record": "timing", "run": "r", "visit": 1, "tile": 0, "op": "x", "real": -1, "user": 0, "sys": 0, "rows": 1}',
    '{"record": "timing", "run": "r", "visit": 1, "tile": 0, "op": "x", "real": 1, "user": 0, "sys": 0, "rows": 1.5}',
    '{"record": "timing", "run": "r", "visit": true, "tile": 0, "op": "x", "real": 1, "user": 0, "sys": 0, "rows": 1}',
    '{"record": "timing", "run": "", "visit": 1, "tile": 0, "op": "x", "real": 1, "user": 0, "sys": 0, "rows": 1}',
    '{"record": "timing", "run": "r", "visit": 1, "tile": 0, "op": "x", "real": NaN, "user": 0, "sys": 0, "rows": 1}',
    '{"record": "provenance", "run": "r"}',  # no format, no time
    '{"record": 5}',
    '{"record": "timing", "run": "r", "visit": 1,,}',
    '{"record": "timing", "run": "r", "visit": 1, "tile": 0, "op": "x", "real": 1, "user": 0, "sys": 0, "rows": 1} x',
    '{"not_a_record": 1}',
])
def test_malformed_records_counted(bad: str) -> None:
    good = ('{"record": "timing", "run": "r", "visit": 1, "tile": 0, "op": "x", "real": 1, "user": 0, "sys": 0, '
            '"rows": null}')
    parsed = parse_log([good, bad, "plain text", good])
    assert parsed.malformed == 1
    assert len(parsed.timings) == 2
    assert parsed.timings["rows"].isna().all()


def test_unknown_record_kind_skipped_not_malformed() -> None:
    parsed = parse_log(['{"record": "table_rows", "run": "r", "DiaObject": 5}'])
    assert (parsed.unknown, parsed.malformed, len(parsed.timings)) == (1, 0, 0)


def test_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "killed.log"
    with TimingLogWriter(path, run="r") as writer:
        _write(writer)
    text = path.read_text()
    last = text.splitlines()[-1]
    for cut in (5, len(last) // 2, len(last) - 1):
        path.write_text(text[: len(text) - len(last) - 1] + last[:cut])
        parsed = parse_log(path)
        assert parsed.malformed == 1, cut
        pd.testing.assert_frame_equal(parsed.timings, _expected("r").iloc[:-1])


def test_truncated_multibyte_character(tmp_path: Path) -> None:
    path = tmp_path / "killed.log"
    with TimingLogWriter(path, run="r") as writer:
        writer.provenance({"note": "héhé"})
    data = path.read_bytes()
    path.write_bytes(data[: data.index("é".encode()) + 1])  # Half of a UTF-8 character.
    parsed = parse_log(path)
    assert parsed.malformed == 1
    assert parsed.provenance == []


def test_append_keeps_earlier_records(tmp_path: Path) -> None:
    path = tmp_path / "timing.log"
    with TimingLogWriter(path, run="first") as writer:
        _write(writer)
    with TimingLogWriter(path, run="second") as writer:
        _write(writer)
    parsed = parse_log(path)
    assert [p["run"] for p in parsed.provenance] == ["first", "second"]
    assert parsed.runs() == ["first", "second"]
    assert len(parsed.timings) == 2 * len(RECORDS)


def test_record_after_a_torn_line_starts_a_fresh_line(tmp_path: Path) -> None:
    """A run killed mid-write leaves a torn last line; the next run's provenance record is not lost on it."""
    path = tmp_path / "timing.log"
    with TimingLogWriter(path, run="killed") as writer:
        _write(writer)
    text = path.read_text()
    path.write_text(text[: len(text) - 20])  # The last record torn in the middle.
    with TimingLogWriter(path, run="next") as writer:
        _write(writer)
    parsed = parse_log(path)
    assert [p["run"] for p in parsed.provenance] == ["killed", "next"]
    assert parsed.malformed == 1
    assert len(parsed.timings) == 2 * len(RECORDS) - 1
    # An intact file gets no blank line.
    with TimingLogWriter(path, run="third") as writer:
        _write(writer)
    assert "\n\n" not in path.read_text()
    assert parse_log(path).malformed == 1


def _append_many(path: str, tile: int, count: int) -> None:
    with TimingLogWriter(path, run="shared") as writer:
        sink = writer.sink(visit=1, tile=tile)
        for k in range(count):
            sink(TimingRecord("src_insert", 0.001 * k, 0.0, 0.0, k))


def test_processes_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.log"
    count = 2000
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_append_many, args=(str(path), tile, count)) for tile in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    parsed = parse_log(path)
    assert parsed.malformed == 0
    counts = parsed.timings.groupby("tile")["rows"].agg(["count", "sum"])
    assert counts["count"].tolist() == [count] * 3
    assert counts["sum"].tolist() == [count * (count - 1) // 2] * 3


def test_closed_writer_refuses() -> None:
    writer = TimingLogWriter(io.StringIO())
    writer.close()
    with pytest.raises(ValueError):
        writer.timing(RECORDS[0][2], 1)


def test_parse_logs_combines(tmp_path: Path) -> None:
    paths = []
    for k in range(2):
        paths.append(tmp_path / f"tile{k}.log")
        with TimingLogWriter(paths[-1], run="r") as writer:
            _write(writer)
    (tmp_path / "bad.log").write_text('{"record": "timing"\n')
    parsed = parse_logs([*paths, tmp_path / "bad.log"])
    assert len(parsed.timings) == 2 * len(RECORDS)
    assert len(parsed.provenance) == 2
    assert parsed.malformed == 1
    empty = parse_logs([])
    assert list(empty.timings.columns) == list(TIMING_COLUMNS) and empty.timings.empty


def test_run_ids_unique_and_sortable() -> None:
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", i) for i in ids)


def test_operations_documented() -> None:
    expected = {
        "sim", "sim_detect", "sim_associate", "sim_rows", "obj_select", "src_select", "fsrc_select",
        "obj_insert", "obj_validity_update",
        "obj_last_delete", "obj_last_insert", "obj_last_upsert", "obj_nightly_insert", "src_insert",
        "fsrc_insert", "visit_insert", "store", "daily_merge", "daily_partitions", "visit", "connect",
    }
    assert set(OPERATIONS) == expected
    assert all(isinstance(doc, str) and doc for doc in OPERATIONS.values())


def test_provenance_helpers() -> None:
    machine = machine_info()
    assert machine["cpus"] >= 1
    assert machine["memory_bytes"] > 2**20
    assert isinstance(machine["platform"], str)
    info = toolkit_info()
    assert set(info) == {"toolkit_version", "git_commit"}
    json.dumps(info)


def test_counts_records_round_trip_and_malformed(tmp_path: Path) -> None:
    log = tmp_path / "counts.jsonl"
    with TimingLogWriter(log, run="r1") as writer:
        writer.counts(10, {"DiaObject": 5, "DiaSource": 7}, exact=True)
        writer.counts(20, {"DiaObject": 9}, exact=False)
    with open(log, "a") as f:
        f.write('{"record": "counts", "run": "r1", "visit": 30, "tables": {"DiaObject": "many"}}\n')
        f.write('{"record": "counts", "run": "r1", "visit": 40, "exact": "no", "tables": {"DiaObject": 1}}\n')
        # Written before the field existed: those counts were exact.
        f.write('{"record": "counts", "run": "r1", "visit": 50, "tables": {"DiaObject": 11}}\n')
    parsed = parse_log(log)
    assert [c["visit"] for c in parsed.counts] == [10, 20, 50]
    assert [c["exact"] for c in parsed.counts] == [True, False, True]
    assert parsed.counts[0]["tables"] == {"DiaObject": 5, "DiaSource": 7}
    assert parsed.malformed == 2
    assert parse_logs([log, log]).counts[-1]["visit"] == 50


def test_failure_records_round_trip(tmp_path: Path) -> None:
    from l1db.timing_log import FAILURE_COLUMNS

    path = tmp_path / "timing.log"
    with TimingLogWriter(path, run="r") as writer:
        writer.provenance({"backend": "postgresql"})
        writer.failure(7, 0, "src_insert", "AdminShutdown", "terminating connection\n due to administrator command",
                       attempt=1, lost=1.2345678, wait=2.0, retry=True)
        writer.failure(7, 3, "connect", "DatabaseUnreachable", "cannot connect", attempt=2, lost=0.01, wait=0.0,
                       retry=False)
        writer.sink(7, 0)(TimingRecord("obj_select", 0.5, 0.25, 0.125, 10))
    with open(path, "a") as stream:
        stream.write('{"record": "failure", "run": "r", "visit": 7, "tile": 0, "op": "x", "attempt": 0}\n')
    parsed = parse_log(path)
    assert parsed.malformed == 1 and parsed.unknown == 0
    failures = parsed.failures
    assert list(failures.columns) == list(FAILURE_COLUMNS)
    assert failures.to_dict("records") == [
        {"run": "r", "visit": 7, "tile": 0, "op": "src_insert", "error": "AdminShutdown",
         "reason": "terminating connection due to administrator command", "attempt": 1, "lost": 1.234568,
         "wait": 2.0, "retry": True},
        {"run": "r", "visit": 7, "tile": 3, "op": "connect", "error": "DatabaseUnreachable",
         "reason": "cannot connect", "attempt": 2, "lost": 0.01, "wait": 0.0, "retry": False},
    ]
    assert len(parsed.timings) == 1  # A failure is not a timing.
    both = parse_logs([path, path])
    assert len(both.failures) == 4 and both.failures["attempt"].dtype == "int64"
    assert parse_log([]).failures.empty


def test_held_records_travel_and_are_written_as_the_writer_would() -> None:
    """A tile on another host holds its records; after pickling, the driver writes the very same lines."""
    import pickle

    def work(writer) -> None:
        writer.failure(7, 2, "store", "AdminShutdown", "terminating\nconnection", attempt=1, lost=1.5, wait=2.0,
                       retry=True)
        for visit, tile, record in RECORDS:
            writer.sink(visit, tile)(record)

    direct, relayed = io.StringIO(), io.StringIO()
    work(TimingLogWriter(direct, run="r1"))
    held = HeldRecords()
    work(held)
    assert len(held) == 1 + len(RECORDS)
    pickle.loads(pickle.dumps(held)).write_to(TimingLogWriter(relayed, run="r1"))
    assert relayed.getvalue() == direct.getvalue()
    parsed = parse_log(io.StringIO(relayed.getvalue()))
    assert parsed.malformed == 0 and len(parsed.timings) == len(RECORDS) and len(parsed.failures) == 1
