"""log2csv, plot_timing and the notebook on logs of real ap_proto runs (SQLite).

One single-process run and one ``--divide 2`` run, each with its own database
and log; then the reports are checked against the records.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import write_config
from test_log2csv import assert_matches_reference, naive_visit_rows
from test_notebook import NOTEBOOK, _kernel_manager

from dia_sim.catalog import generate_catalog
from dia_sim.cli.ap_proto import main as ap_proto
from dia_sim.cli.log2csv import main as log2csv
from dia_sim.cli.plot_timing import main as plot_timing
from dia_sim.log2csv import read_csv, read_provenance
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.timing_log import parse_log


def _run(tmp: Path, name: str, sources: Path, *extra: str) -> Path:
    config = write_config(tmp / f"{name}.cfg", f"sqlite:///{tmp}/{name}.sqlite3",
                          dia_object_index="last_object_table")
    assert create_l1_schema(["-c", str(config)]) == 0
    log = tmp / f"{name}.jsonl"
    assert ap_proto(["-c", str(config), "-l", str(log), "--pointing-area", "0,5,-15,-10", "--false-per-visit",
                     "100", "--transients-per-visit", "5", "--no-progress", *extra, str(sources)]) == 0
    return log


@pytest.fixture(scope="module")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("real")
    sources = tmp / "sources.npy"
    generate_catalog(sources, per_visit=300, seed=11)
    single = _run(tmp, "single", sources, "-n", "12")
    tiled = _run(tmp, "tiled", sources, "-n", "3", "--divide", "2")
    return single, tiled


def _csv(tmp_path: Path, *logs: Path) -> Path:
    out = tmp_path / "out.csv"
    assert log2csv([*map(str, logs), "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize("which", ["single", "tiled"])
def test_csv_matches_records(real_logs: tuple[Path, Path], tmp_path: Path, which: str) -> None:
    log = real_logs[0] if which == "single" else real_logs[1]
    parsed = parse_log(log)
    assert parsed.malformed == 0
    table = read_csv(_csv(tmp_path, log))
    run = parsed.provenance[0]["run"]
    assert_matches_reference(table, naive_visit_rows(parsed.timings, run))
    assert set(table["n_tiles"]) == ({1} if which == "single" else {4})
    assert (table["sum_select_real"] > 0).all()
    prov = read_provenance(tmp_path / "out.csv")
    assert prov and prov[0]["backend"] == "sqlite"


def test_two_runs_at_once(real_logs: tuple[Path, Path], tmp_path: Path) -> None:
    table = read_csv(_csv(tmp_path, *real_logs))
    assert table.groupby("run").size().sort_values().tolist() == [3, 12]


def test_garbage_and_truncated_last_line(real_logs: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    lines = real_logs[0].read_text().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    # A log line in between, a broken record, and the run killed in mid-write.
    damaged.write_text("".join(lines[:5]) + "INFO something happened\n" + '{"record": "timing", "run": 1}\n'
                       + "".join(lines[5:-1]) + lines[-1][: len(lines[-1]) // 2])
    out = tmp_path / "damaged.csv"
    assert log2csv([str(damaged), "-o", str(out)]) == 0
    assert "2 malformed" in capsys.readouterr().err
    whole = read_csv(_csv(tmp_path, real_logs[0]))
    assert len(read_csv(out)) == len(whole)


def test_plots_from_real_run(real_logs: tuple[Path, Path], tmp_path: Path) -> None:
    csv = _csv(tmp_path, real_logs[0])
    out = tmp_path / "plots"
    assert plot_timing([str(csv), "-o", str(out)]) == 0
    for name in ("selects.png", "stores.png", "slow_fraction.png", "compare.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_notebook_on_real_run(real_logs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat  # imported here, as in test_notebook: seconds of CPU for every worker collecting
    from nbclient import NotebookClient

    csv = _csv(tmp_path, real_logs[0])
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells[0].source += f"\nCSV_PATH = {str(csv)!r}\nOTHER_CSVS = []\n"
    venv_bin = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                               if p != venv_bin) or os.defpath)
    NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert len([out for out in outputs if "image/png" in out.get("data", {})]) >= 3
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "12 visits in 1 run(s): sqlite, last_object_table" in text
