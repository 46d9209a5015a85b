"""Tests of dia_sim.log2csv and the log2csv command."""

from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from timing_fixtures import write_synthetic_log

from dia_sim.cli.log2csv import main
from dia_sim.log2csv import (
    COUNT_COLUMNS,
    CSV_COLUMNS,
    CSV_OPERATIONS,
    logs_to_table,
    provenance_path,
    read_csv,
    read_provenance,
    run_description,
    visit_table,
    write_csv,
)
from l1db.timer import TimingRecord
from l1db.timing_log import TimingLogWriter, parse_log


def naive_visit_rows(records: pd.DataFrame, run: str) -> dict[int, dict[str, float]]:
    """Per-visit values computed record by record with plain loops (the reference)."""
    tile_real: dict = defaultdict(float)
    tile_cpu: dict = defaultdict(float)
    tile_rows: dict = defaultdict(int)
    tiles: dict = defaultdict(set)
    for rec in records.itertuples(index=False):
        key = (rec.visit, rec.tile, rec.op)
        tile_real[key] += rec.real
        tile_cpu[key] += rec.user + rec.sys
        if rec.rows is not None and not pd.isna(rec.rows):
            tile_rows[key] += int(rec.rows)
        tiles[rec.visit].add(rec.tile)
    for (visit, tile) in {(v, t) for v, t, _ in list(tile_real)}:
        selects = [(visit, tile, op) for op in ("obj_select", "src_select", "fsrc_select")]
        if any(k in tile_real for k in selects):
            tile_real[(visit, tile, "sum_select")] = sum(tile_real[k] for k in selects if k in tile_real)
            tile_cpu[(visit, tile, "sum_select")] = sum(tile_cpu[k] for k in selects if k in tile_cpu)
    out: dict[int, dict[str, float]] = {}
    for visit, visit_tiles in tiles.items():
        row: dict[str, float] = {"run": run, "n_tiles": len(visit_tiles)}
        for op in CSV_OPERATIONS:
            reals = [tile_real[(visit, t, op)] for t in visit_tiles if (visit, t, op) in tile_real]
            cpus = [tile_cpu[(visit, t, op)] for t in visit_tiles if (visit, t, op) in tile_cpu]
            row[f"{op}_real"] = max(reals) if reals else math.nan
            row[f"{op}_cpu"] = sum(cpus) if cpus else math.nan
        for name, (ops, _doc) in COUNT_COLUMNS.items():
            counts = [tile_rows[(visit, t, op)] for t in visit_tiles for op in ops if (visit, t, op) in tile_rows]
            row[name] = sum(counts) if counts else None
        out[visit] = row
    return out


def assert_matches_reference(table: pd.DataFrame, reference: dict[int, dict[str, float]]) -> None:
    assert list(table.columns) == list(CSV_COLUMNS)
    assert sorted(table["visit"].tolist()) == sorted(reference)
    for row in table.to_dict("records"):
        expected = reference[row["visit"]]
        for name, value in expected.items():
            got = row[name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert pd.isna(got), (row["visit"], name, got)
            elif isinstance(value, str):
                assert got == value
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (row["visit"], name)


def test_single_process_matches_records(tmp_path: Path) -> None:
    run, records = write_synthetic_log(tmp_path / "a.log", n_visits=25, strategy="last_object_table")
    table, parsed = logs_to_table([tmp_path / "a.log"])
    assert parsed.malformed == 0
    assert (table["n_tiles"] == 1).all()
    assert_matches_reference(table, naive_visit_rows(records, run))
    # Operations this strategy does not use are empty, but their columns exist.
    assert table["obj_validity_update_real"].isna().all()
    assert table["obj_last_delete_real"].notna().all()


def test_tiles_in_several_files(tmp_path: Path) -> None:
    run, records = write_synthetic_log(tmp_path / "t.log", n_visits=12, tiles=4, files=3, nightly=True,
                                       merge_every=5, seed=3)
    paths = [tmp_path / "t.log", tmp_path / "t.log.1", tmp_path / "t.log.2"]
    table, parsed = logs_to_table(paths)
    assert len(parsed.provenance) == 3
    assert (table["n_tiles"] == 4).all()
    reference = naive_visit_rows(records, run)
    assert_matches_reference(table, reference)
    assert table["daily_merge_real"].notna().sum() == 2
    assert table["obj_stored"].notna().all()  # From obj_nightly_insert.


def test_wall_max_cpu_sum_and_sum_select_is_a_sum() -> None:
    def rec(visit: int, tile: int, op: str, real: float, cpu: float, rows: int | None = None) -> str:
        stream = io.StringIO()
        TimingLogWriter(stream, run="r").timing(TimingRecord(op, real, cpu * 0.75, cpu * 0.25, rows), visit, tile)
        return stream.getvalue()

    lines = [
        rec(5, 0, "obj_select", 1.0, 0.5, 100), rec(5, 0, "src_select", 2.0, 0.5, 200),
        rec(5, 0, "fsrc_select", 3.0, 0.5, 300),
        rec(5, 1, "obj_select", 2.0, 1.0, 10), rec(5, 1, "src_select", 0.5, 1.0, 20),
        rec(5, 1, "fsrc_select", 0.5, 1.0, 30),
        # The same operation twice in one tile ran sequentially: its times add up.
        rec(5, 1, "src_insert", 0.25, 0.125, 7), rec(5, 1, "src_insert", 0.5, 0.25, 8),
        rec(5, 0, "src_insert", 0.5, 0.5, 1),
    ]
    table = visit_table(parse_log(lines).timings)
    row = table.iloc[0]
    assert row["n_tiles"] == 2
    assert row["obj_select_real"] == 2.0 and row["obj_select_cpu"] == 1.5
    assert row["fsrc_select_real"] == 3.0
    # Per tile: 6.0 and 3.0; wall = max over tiles. Neither the sum of the per-op maxima
    # (7.0) nor an average of the selects (2.0).
    assert row["sum_select_real"] == 6.0
    assert row["sum_select_cpu"] == pytest.approx(4.5)
    assert row["src_insert_real"] == 0.75
    assert row["src_insert_cpu"] == pytest.approx(0.875)
    assert (row["obj_read"], row["src_read"], row["fsrc_read"], row["src_stored"]) == (110, 220, 330, 16)
    assert pd.isna(row["obj_stored"]) and pd.isna(row["store_real"])


def test_two_runs_kept_apart(tmp_path: Path) -> None:
    run_a, rec_a = write_synthetic_log(tmp_path / "a.log", n_visits=10, seed=1)
    run_b, rec_b = write_synthetic_log(tmp_path / "b.log", n_visits=15, seed=2, strategy="last_object_table",
                                       replace=True, tiles=2)
    assert run_a != run_b
    table, parsed = logs_to_table([tmp_path / "b.log", tmp_path / "a.log"])
    assert table["run"].tolist() == sorted(table["run"].tolist())
    assert sorted(table["run"].unique()) == sorted([run_a, run_b])
    assert_matches_reference(table[table["run"] == run_a], naive_visit_rows(rec_a, run_a))
    assert_matches_reference(table[table["run"] == run_b], naive_visit_rows(rec_b, run_b))
    assert table.loc[table["run"] == run_b, "obj_last_upsert_real"].notna().all()


def test_csv_round_trip_and_empty_fields(tmp_path: Path) -> None:
    write_synthetic_log(tmp_path / "a.log", n_visits=8)
    table, _ = logs_to_table([tmp_path / "a.log"])
    write_csv(table, tmp_path / "a.csv")
    header = (tmp_path / "a.csv").read_text().splitlines()[0].split(",")
    assert header == list(CSV_COLUMNS)
    first = (tmp_path / "a.csv").read_text().splitlines()[1].split(",")
    assert first[header.index("obj_last_upsert_real")] == ""
    back = read_csv(tmp_path / "a.csv")
    pd.testing.assert_frame_equal(back, table, check_exact=False, atol=1e-6)


def test_empty_input_gives_all_columns() -> None:
    table = visit_table(parse_log([]).timings)
    assert list(table.columns) == list(CSV_COLUMNS)
    assert table.empty


def test_run_description() -> None:
    provenance = [{"run": "r", "backend": "postgresql",
                   "config": {"l1db": {"dia_object_index": "last_object_table", "dia_object_nightly": 0,
                                       "object_last_replace": 1},
                              "ap_proto": {"per_visit": 10000}}}]
    described = run_description(provenance)
    assert described["backend"] == "postgresql"
    assert described["strategy"] == "last_object_table+upsert"
    assert described["density"] == 10000
    assert described["label"] == "postgresql, last_object_table+upsert, 10000 sources/visit"
    assert run_description([])["label"] == ""


# --- the command -------------------------------------------------------------


def test_cli_writes_csv_and_provenance(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, records = write_synthetic_log(tmp_path / "a.log", n_visits=6, tiles=2, files=2, backend="mysql")
    out = tmp_path / "out.csv"
    assert main([str(tmp_path / "a.log"), str(tmp_path / "a.log.1"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "0 malformed" in err
    assert_matches_reference(read_csv(out), naive_visit_rows(records, run))
    sidecar = json.loads(provenance_path(out).read_text())
    assert [p["run"] for p in sidecar["runs"]] == [run, run]
    assert read_provenance(out)[0]["backend"] == "mysql"


def test_cli_stdout_garbage_and_truncated_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, records = write_synthetic_log(tmp_path / "a.log", n_visits=5)
    lines = (tmp_path / "a.log").read_text().splitlines(keepends=True)
    noisy = ["INFO ap_proto: visit 1\n", *lines[:10], "WARNING something } odd {\n", *lines[10:]]
    truncated = noisy[-1][: len(noisy[-1]) // 2]  # A run killed mid-write.
    (tmp_path / "noisy.log").write_text("".join(noisy[:-1]) + truncated)
    assert main([str(tmp_path / "noisy.log")]) == 0
    captured = capsys.readouterr()
    assert "1 malformed" in captured.err
    table = pd.read_csv(io.StringIO(captured.out))
    assert list(table.columns) == list(CSV_COLUMNS)
    assert len(table) == 5
    # The last record (visit 5's "visit") was cut: everything else is there.
    complete = records.iloc[:-1]
    reference = naive_visit_rows(complete, run)
    assert np.isnan(table["visit_real"].iloc[-1])
    # Visit 5 lost its "visit" record: it is not complete.
    assert table["complete"].tolist() == [1, 1, 1, 1, 0]
    assert table["store_real"].tolist() == pytest.approx([reference[v]["store_real"] for v in table["visit"]],
                                                          abs=1e-6)


def test_complete_marks_visits_whose_every_tile_finished(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A visit is complete when each of its divide x divide tiles wrote its closing "visit" record."""
    path = tmp_path / "runs.log"
    with TimingLogWriter(path, run="tiled") as writer:
        writer.provenance({"config": {"ap_proto": {"divide": 2}}})
        for visit, tiles in ((1, (0, 1, 2, 3)), (2, (0, 1, 2, 3)), (3, (0, 1))):
            for tile in tiles:
                writer.timing(TimingRecord("obj_select", 0.5, 0.1, 0.0, 10), visit, tile)
                writer.timing(TimingRecord("visit", 1.0, 0.2, 0.0, None), visit, tile)
        # Visit 4 was killed in tile 3 after its reads.
        writer.timing(TimingRecord("obj_select", 0.5, 0.1, 0.0, 10), 4, 3)
    with TimingLogWriter(path, run="resumed") as writer:
        writer.provenance({"config": {"ap_proto": {"divide": 2}}})
        # The resumed run finishes visit 3's last two tiles, then runs visit 4 whole.
        for visit, tiles in ((3, (2, 3)), (4, (0, 1, 2, 3))):
            for tile in tiles:
                writer.timing(TimingRecord("visit", 1.0, 0.2, 0.0, None), visit, tile)
    with TimingLogWriter(path, run="no-provenance") as writer:
        writer.timing(TimingRecord("visit", 1.0, 0.2, 0.0, None), 9, 0)
        writer.timing(TimingRecord("src_select", 1.0, 0.2, 0.0, 5), 10, 0)
    table, _ = logs_to_table([path])
    got = {(r.run, r.visit): r.complete for r in table.itertuples()}
    assert got == {("tiled", 1): 1, ("tiled", 2): 1, ("tiled", 3): 0, ("tiled", 4): 0,
                   ("resumed", 3): 0, ("resumed", 4): 1, ("no-provenance", 9): 1, ("no-provenance", 10): 0}
    out = tmp_path / "out.csv"
    assert main([str(path), "-o", str(out)]) == 0
    assert "8 visit rows (4 incomplete, " in capsys.readouterr().err
    assert read_csv(out)["complete"].tolist() == table["complete"].tolist()


def _complete_tiled_visits(writer: TimingLogWriter, visits: tuple[int, ...]) -> None:
    """A run of 2 x 2 tiles a visit, with the closing ``visit`` record of every tile of ``visits``."""
    writer.provenance({"config": {"ap_proto": {"divide": 2}}})
    for tile in range(4):
        for visit in visits:
            writer.timing(TimingRecord("visit", 1.0, 0.2, 0.0, None), visit, tile)


def test_failures_counted_and_their_time_added_up(tmp_path: Path) -> None:
    path = tmp_path / "failing.log"
    with TimingLogWriter(path, run="r") as writer:
        _complete_tiled_visits(writer, (1, 2))
        # Visit 2: tile 0 failed twice (1.5 + 2 s, then 0.5 + 4 s), tile 3 once (3 + 2 s).
        writer.failure(2, 0, "obj_select", "OperationalError", "server closed the connection", 1, 1.5, 2.0, True)
        writer.failure(2, 0, "connect", "DatabaseUnreachable", "cannot connect", 2, 0.5, 4.0, True)
        writer.failure(2, 3, "store", "AdminShutdown", "terminating connection", 1, 3.0, 2.0, True)
        # The loop's own work logged under visits 1 and 2: not theirs (the row counts after 1, the daily job before 2).
        writer.failure(1, 0, "counts", "ReadTimeout", "timed out", 1, 10.0, 1.0, True)
        writer.failure(2, 0, "daily_merge", "OperationalError", "server closed the connection", 1, 30.0, 2.0, True)
        # Visit 3 failed for good before any record.
        writer.failure(3, 1, "obj_select", "OperationalError", "server closed the connection", 6, 0.25, 0.0, False)
    table, parsed = logs_to_table([path])
    assert len(parsed.failures) == 6
    rows = table.set_index("visit")
    assert rows["failures"].tolist() == [0, 3, 1]
    assert rows["loop_failures"].tolist() == [1, 1, 0]
    assert rows["lost_real"].tolist() == pytest.approx([0.0, 8.0, 0.25])  # tile 0's 8 s, the largest
    assert rows["complete"].tolist() == [1, 1, 0]
    assert rows.loc[3, "n_tiles"] == 0 and np.isnan(rows.loc[3, "visit_real"])
    out = tmp_path / "out.csv"
    write_csv(table, out)
    back = read_csv(out)
    assert back["failures"].dtype == "Int64" and back["lost_real"].tolist() == pytest.approx([0.0, 8.0, 0.25])
    assert back["loop_failures"].tolist() == [1, 1, 0]


def test_back_pressure_waits_and_resends_per_visit(tmp_path: Path) -> None:
    path = tmp_path / "waiting.log"
    with TimingLogWriter(path, run="r") as writer:
        _complete_tiled_visits(writer, (1, 2))
        # Visit 1: tile 0's selects waited 0.5 + 0.25 s, tile 2's 1 s; the store of tile 1 2 s (its table
        # operations' waits are inside the store's and must not count twice).
        writer.timing(TimingRecord("obj_select", 1.0, 0.1, 0.0, 10, wait=0.5, resent=3), 1, 0)
        writer.timing(TimingRecord("src_select", 1.0, 0.1, 0.0, 10, wait=0.25, resent=1), 1, 0)
        writer.timing(TimingRecord("src_select", 2.0, 0.1, 0.0, 10, wait=1.0, resent=5), 1, 2)
        writer.timing(TimingRecord("src_insert", 3.0, 0.1, 0.0, 10, wait=2.0, resent=40), 1, 1)
        writer.timing(TimingRecord("store", 4.0, 0.1, 0.0, None, wait=2.0, resent=40), 1, 1)
        # Visit 2 waited for nothing.
        writer.timing(TimingRecord("store", 4.0, 0.1, 0.0, None), 2, 1)
    table, _parsed = logs_to_table([path])
    rows = table.set_index("visit")
    assert rows["select_wait"].tolist() == pytest.approx([1.0, 0.0])  # the largest tile's sum: tile 2
    assert rows["select_resent"].tolist() == [9, 0]
    assert rows["store_wait"].tolist() == pytest.approx([2.0, 0.0])
    assert rows["store_resent"].tolist() == [40, 0]
    out = tmp_path / "out.csv"
    write_csv(table, out)
    back = read_csv(out)
    assert back["store_resent"].dtype == "Int64" and back["store_wait"].tolist() == pytest.approx([2.0, 0.0])


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "missing.log")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.log" in err

    (tmp_path / "text.log").write_text("nothing here\n{\"record\": \"timing\"\n")
    assert main([str(tmp_path / "text.log")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no timing record" in err and "1 malformed" in err

    write_synthetic_log(tmp_path / "a.log", n_visits=2)
    assert main([str(tmp_path / "a.log"), str(tmp_path / "missing.log")]) == 1
    assert main([str(tmp_path / "a.log"), "-o", str(tmp_path / "no" / "dir" / "x.csv")]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err

    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
