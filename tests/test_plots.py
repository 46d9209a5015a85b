"""Tests of dia_sim.plots and the plot_timing command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from timing_fixtures import write_synthetic_log

from dia_sim.cli.plot_timing import main
from dia_sim.log2csv import logs_to_table, provenance_path, write_csv, write_provenance
from dia_sim.plots import (
    SELECT_PANELS,
    WAIT_LABEL,
    choose_bin_size,
    load_run,
    plot_compare,
    plot_selects,
    plot_slow_fraction,
    plot_stores,
    store_panels,
    write_plots,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _csv(tmp_path: Path, name: str, **kwargs) -> Path:
    log = tmp_path / f"{name}.log"
    write_synthetic_log(log, **kwargs)
    table, parsed = logs_to_table([log])
    csv = tmp_path / f"{name}.csv"
    write_csv(table, csv)
    write_provenance(provenance_path(csv), parsed.provenance, [str(log)])
    return csv


@pytest.fixture(scope="module")
def two_csvs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp_path = tmp_path_factory.mktemp("plots")
    a = _csv(tmp_path, "a", n_visits=120, backend="postgresql", strategy="last_object_table", per_visit=10000)
    b = _csv(tmp_path, "b", n_visits=80, backend="mysql", strategy="baseline", tiles=2, seed=5)
    return a, b


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


@pytest.mark.parametrize("visits, expected", [
    ([1], 1), ([1, 20], 1), ([1, 40], 2), ([1, 100], 5), ([1, 400], 20), ([0, 999], 50),
    ([1, 15_000], 1000), ([], 1),
])
def test_choose_bin_size(visits: list[int], expected: int) -> None:
    assert choose_bin_size(visits) == expected


def test_selects_figure(two_csvs: tuple[Path, Path]) -> None:
    fig = plot_selects(_table(two_csvs[0]), label="postgresql")
    assert len(fig.axes) == 4
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == list(SELECT_PANELS)
    for ax in fig.axes:
        assert ax.get_xlabel() == "visit number"
        assert "(s)" in ax.get_ylabel()
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("per 1,000 visits" in t for t in legend)
    assert "postgresql" in fig.get_suptitle()


def test_fit_slope_in_legend_is_least_squares() -> None:
    visits = np.arange(1, 201)
    table = pd.DataFrame({"visit": visits, "obj_select_real": 0.5 + 0.002 * visits})
    fig = plot_selects(table)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "least squares: +2 s per 1,000 visits" in legend
    # Panels with no data say so instead of failing.
    assert any(t.get_text() == "no records" for t in fig.axes[1].texts)


def test_stores_figure_panels_follow_strategy(two_csvs: tuple[Path, Path]) -> None:
    last = _table(two_csvs[0])
    assert store_panels(last) == ["obj_insert", "obj_last_delete", "obj_last_insert", "src_insert",
                                  "fsrc_insert", "store"]
    assert len(plot_stores(last).axes) == 6
    baseline = _table(two_csvs[1])
    assert store_panels(baseline) == ["obj_insert", "obj_validity_update", "src_insert", "fsrc_insert", "store"]
    assert len(plot_stores(baseline).axes) == 5


def test_back_pressure_waits_drawn_over_the_store_and_the_selects() -> None:
    visits = np.arange(1, 41)
    waits = np.where(visits > 20, 2.0, 0.0)  # the second half of the run waited 2 s a visit
    table = pd.DataFrame({"visit": visits, "store_real": 5.0 + waits, "store_wait": waits,
                          "sum_select_real": np.full(40, 3.0), "select_wait": np.zeros(40),
                          "src_insert_real": np.full(40, 1.0)})
    store_ax = plot_stores(table, bin_size=10).axes[-1]
    assert store_ax.get_title().startswith("store")
    (line,) = [line for line in store_ax.get_lines() if line.get_label() == WAIT_LABEL]
    assert list(line.get_ydata()) == [0.0, 0.0, 2.0, 2.0]
    assert WAIT_LABEL in [t.get_text() for t in store_ax.get_legend().get_texts()]
    # No wait, no line; and none on a cpu figure.
    sum_ax = plot_selects(table, bin_size=10).axes[3]
    assert not [line for line in sum_ax.get_lines() if line.get_label() == WAIT_LABEL]
    cpu_ax = plot_stores(table.rename(columns={"store_real": "store_cpu"}), bin_size=10, metric="cpu").axes[-1]
    assert not [line for line in cpu_ax.get_lines() if line.get_label() == WAIT_LABEL]


def test_slow_fraction_values() -> None:
    visits = np.arange(1, 41)
    table = pd.DataFrame({"visit": visits, "visit_real": np.where(visits % 4 == 0, 12.0, 3.0)})
    fig = plot_slow_fraction(table, threshold=10.0, bin_size=20)
    (ax,) = fig.axes
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([0.25, 0.25])
    assert "10 s" in ax.get_ylabel()


def test_compare_means(two_csvs: tuple[Path, Path]) -> None:
    visits = np.arange(1, 21)
    t1 = pd.DataFrame({"visit": visits, "sum_select_real": visits * 1.0, "store_real": 2.0})
    t2 = pd.DataFrame({"visit": visits, "sum_select_real": 5.0, "store_real": 1.0})
    fig = plot_compare([t1, t2], ["one", "two"], bin_size=10)
    assert len(fig.axes) == 2
    first = fig.axes[0].get_lines()
    assert [line.get_label() for line in first] == ["one", "two"]
    assert first[0].get_ydata() == pytest.approx([5.5, 15.5])
    assert first[1].get_ydata() == pytest.approx([5.0, 5.0])
    with pytest.raises(ValueError):
        plot_compare([t1], ["one", "two"])


def test_write_plots_one_csv(two_csvs: tuple[Path, Path], tmp_path: Path) -> None:
    figures = write_plots([two_csvs[0]], tmp_path / "out", threshold=0.5)
    names = {path.name: len(fig.axes) for path, fig in figures.items()}
    assert names == {"selects.png": 4, "stores.png": 6, "slow_fraction.png": 1, "compare.png": 2}
    for path in figures:
        _assert_png(path)
    # The provenance sidecar gives the titles.
    selects = figures[tmp_path / "out" / "selects.png"]
    assert "postgresql, last_object_table, 10000 sources/visit" in selects.get_suptitle()


def test_store_panel_says_what_the_backend_does(two_csvs: tuple[Path, Path], tmp_path: Path) -> None:
    """SQL stores a visit in one transaction, Cassandra in idempotent writes: the store panel's title is the run's."""

    def store_title(figure) -> str:
        return next(ax.get_title() for ax in figure.axes if ax.get_title().startswith("store:"))

    cassandra = _csv(tmp_path, "c", n_visits=40, backend="cassandra", strategy="last_object_table")
    figures = write_plots([two_csvs[0], cassandra], tmp_path / "out")
    stores = {path.name.split("-")[0]: fig for path, fig in figures.items() if path.name.endswith("_stores.png")}
    assert store_title(stores["postgresql"]) == "store: whole store (one transaction)"
    cql = store_title(stores["cassandra"])
    assert "idempotent" in cql and "transaction)" in cql and "one transaction" not in cql
    # Runs of both kinds overlaid: the title claims neither; two SQL runs: one transaction.
    assert store_title(figures[tmp_path / "out" / "compare.png"]) == "store: whole store"
    # (The figure alone, from the runs' own backends: the files' wiring is checked above.)
    runs = [load_run(path) for path in two_csvs]
    sql = plot_compare([table for table, _ in runs], ["a", "b"], backends=[d["backend"] for _, d in runs])
    assert store_title(sql) == "store: whole store (one transaction)"
    # Without a provenance: no claim.
    assert store_title(plot_stores(_table(two_csvs[0]))) == "store: whole store"


def test_cli_several_csvs_with_labels(two_csvs: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "png"
    argv = [str(p) for p in two_csvs] + ["-o", str(out), "--label", "PG last", "My base", "--bin", "10"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = {"pg-last_selects.png", "pg-last_stores.png", "pg-last_slow_fraction.png",
                "my-base_selects.png", "my-base_stores.png", "my-base_slow_fraction.png", "compare.png"}
    assert {p.name for p in out.iterdir()} == expected
    assert len(printed) == len(expected)
    for path in out.iterdir():
        _assert_png(path)


def test_cli_bad_input(two_csvs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "png")
    assert main([str(tmp_path / "missing.csv"), "-o", out]) == 1
    assert main([str(two_csvs[0]), "-o", out, "--label", "a", "b"]) == 1
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert main([str(tmp_path / "other.csv"), "-o", out]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err
    assert "not a log2csv table" in err
    with pytest.raises(SystemExit) as exc:
        main([str(two_csvs[0]), "-o", out, "--bin", "0"])
    assert exc.value.code == 2


def test_incomplete_visits_left_out_of_plots_and_fits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Visits abandoned by a kill (reads only, low sum_select) stay out of the plots and fits, and it is said."""
    log = tmp_path / "killed.log"
    run, records = write_synthetic_log(log, n_visits=60, seed=2)
    from l1db.timer import TimingRecord
    from l1db.timing_log import TimingLogWriter

    with TimingLogWriter(log, run=run) as writer:
        # Ten abandoned attempts of later visits: reads only, tiny times, no "visit" record.
        for visit in range(61, 71):
            writer.timing(TimingRecord("obj_select", 1e-4, 1e-4, 0.0, 1), visit, 0)
    table, parsed = logs_to_table([log])
    assert int((table["complete"] == 0).sum()) == 10
    csv = tmp_path / "killed.csv"
    write_csv(table, csv)
    figures = write_plots([csv], tmp_path / "default")
    selects = figures[tmp_path / "default" / "selects.png"]
    assert "10 incomplete visits left out" in selects.get_suptitle()
    # The fit and the scatter hold the 60 complete visits only.
    sum_axes = selects.axes[3]
    assert len(sum_axes.collections[0].get_offsets()) == 60
    assert any("least squares" in text.get_text() for text in sum_axes.get_legend().get_texts())
    legend = figures[tmp_path / "default" / "compare.png"].axes[0].get_legend()
    assert "10 incomplete" in legend.get_texts()[0].get_text()
    every = write_plots([csv], tmp_path / "every", include_incomplete=True)
    assert len(every[tmp_path / "every" / "selects.png"].axes[0].collections[0].get_offsets()) == 70
    assert "left out" not in every[tmp_path / "every" / "selects.png"].get_suptitle()
    # The command line says it on stderr.
    assert main([str(csv), "-o", str(tmp_path / "cli")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "10 incomplete visits left out" in err and "--include-incomplete" in err
    # Nothing complete: an error, nothing written.
    write_csv(table[table["complete"] == 0], tmp_path / "none.csv")
    assert main([str(tmp_path / "none.csv"), "-o", str(tmp_path / "none")]) == 1
    assert "no complete visit row" in capsys.readouterr().err and not (tmp_path / "none").exists()
