"""l1db_report on real short SQLite runs: its numbers against the CSV, bad input, a partial log, a browser.

Two runs of ap_proto on the small patch (tests/ap_runs.py), each with its own
database and log: 20 visits with ``last_object_table`` (enough for the
projection, `dia_sim.fits.MIN_PROJECTION_VISITS`) and 5 with ``baseline``. The statistics on the page are checked
against pandas on the CSV; the browser tests open the pages in headless
chromium (tests/headless_chromium.py), one browser for the module.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from ap_runs import run_ap_proto
from conftest import catalog_fixture, write_config
from headless_chromium import Chromium

from dia_sim.cli.log2csv import main as log2csv
from dia_sim.cli.report import main as l1db_report
from dia_sim.fits import MIN_PROJECTION_VISITS
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.timing_log import TimingLogWriter, parse_log

#: SQLite and a browser only: no shared server (tests/conftest.py).
pytestmark = pytest.mark.own_servers

sources = catalog_fixture(300, seed=5)

#: The page's wall-time statistics and the quantile pandas computes for each.
QUANTILES = {"median": 0.5, "p95": 0.95, "p99": 0.99, "max": 1.0}


def _run(tmp: Path, name: str, sources: Path, visits: int, strategy: str) -> tuple[Path, Path]:
    config = write_config(tmp / f"{name}.cfg", f"sqlite:///{tmp}/{name}.sqlite3", dia_object_index=strategy)
    assert create_l1_schema(["-c", str(config)]) == 0
    log = tmp / f"{name}.jsonl"
    assert run_ap_proto(config, sources, log, "-n", visits) == 0
    csv = tmp / f"{name}.csv"
    assert log2csv([str(log), "-o", str(csv)]) == 0
    return log, csv


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, sources: Path) -> dict[str, tuple[Path, Path]]:
    """Two real runs: name -> (timing log, per-visit CSV with its sidecar)."""
    tmp = tmp_path_factory.mktemp("report-runs")
    return {"last": _run(tmp, "last", sources, MIN_PROJECTION_VISITS, "last_object_table"),
            "baseline": _run(tmp, "baseline", sources, 5, "baseline")}


class _Tables(HTMLParser):
    """Every ``<table>``: its attributes and rows, each row its attributes and cells (attributes, text)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._open: list[dict] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._open.append({"attrs": dict(attrs), "rows": []})
        elif tag == "tr" and self._open:
            self._open[-1]["rows"].append({"attrs": dict(attrs), "cells": []})
        elif tag in ("td", "th") and self._open and self._open[-1]["rows"]:
            self._cell = []
            self._open[-1]["rows"][-1]["cells"].append((dict(attrs), self._cell))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "table" and self._open:
            self.tables.append(self._open.pop())


def _number(text: str) -> float:
    return float(text.replace(",", "")) if text.strip() else float("nan")


def page_stats(page: str, css_class: str, **attrs: str) -> dict[str, dict[str, float]]:
    """Of the table of ``css_class`` (and ``attrs``): row key (data-op, data-rows) -> data-stat -> the number shown."""
    found = [t for t in _Tables(page).tables if t["attrs"].get("class") == css_class
             and all(t["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]
    assert len(found) == 1, f"{len(found)} tables of class {css_class} {attrs}"
    out = {}
    for row in found[0]["rows"]:
        key = row["attrs"].get("data-op") or row["attrs"].get("data-rows")
        if key:
            out[key] = {(a.get("data-run", "") + ":" if "data-run" in a else "") + a["data-stat"]:
                        _number("".join(text)) for a, text in row["cells"] if "data-stat" in a}
    return out


def assert_summary_matches_csv(page: str, csv: Path, run: int = 0) -> None:
    """The page's summary table of run ``run`` against pandas on the CSV's complete visits."""
    table = pd.read_csv(csv)
    complete = table[table["complete"] == 1]
    shown = page_stats(page, "summary", data_run=str(run))
    # The operations: the columns with a wall (_real) and a cpu (_cpu) time; lost_real has no cpu twin.
    present = [c[: -len("_real")] for c in table.columns
               if c.endswith("_real") and c.replace("_real", "_cpu") in table.columns and complete[c].notna().any()]
    assert sorted(shown) == sorted(present)
    for op, stats in shown.items():
        values = complete[f"{op}_real"].dropna()
        assert stats["visits"] == len(values), op
        for stat, q in QUANTILES.items():
            # Shown to 0.1 ms (4 decimals): equal to that rounding.
            assert abs(stats[stat] - values.quantile(q)) <= 0.5e-4 + 1e-9, (op, stat, stats[stat], values.quantile(q))
        assert abs(stats["cpu_median"] - complete[f"{op}_cpu"].dropna().median()) <= 0.5e-4 + 1e-9, op
    rows = page_stats(page, "rows", data_run=str(run))
    assert set(rows) >= {"obj_read", "src_read", "src_stored", "fsrc_stored"}
    for column, stats in rows.items():
        assert stats["total"] == complete[column].sum(), column
        assert abs(stats["median"] - complete[column].median()) <= 0.05, column


def _report(tmp_path: Path, *inputs: object, name: str = "report.html") -> str:
    out = tmp_path / name
    assert l1db_report([*map(str, inputs), "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shared_report(tmp_path_factory: pytest.TempPathFactory):
    """``shared_report(*inputs)``: the page of ``inputs``, written once for the module's tests that only read it.

    A page of the 20-visit run takes seconds of matplotlib: the tests that check one page
    in pandas and another in the browser share it.
    """
    pages: dict[tuple[str, ...], Path] = {}

    def page(*inputs: object) -> Path:
        key = tuple(map(str, inputs))
        if key not in pages:
            out = tmp_path_factory.mktemp("page") / "report.html"
            assert l1db_report([*key, "-o", str(out)]) == 0
            pages[key] = out
        return pages[key]

    return page


def test_numbers_equal_the_csv(runs: dict[str, tuple[Path, Path]], tmp_path: Path, shared_report) -> None:
    csv = runs["last"][1]
    page = shared_report(csv).read_text(encoding="utf-8")
    assert_summary_matches_csv(page, csv)
    # A log directly gives the numbers of its CSV (log2csv's aggregation, not a second one).
    from_log = page_stats(_report(tmp_path, runs["baseline"][0], name="log.html"), "summary", data_run="0")
    from_csv = page_stats(_report(tmp_path, runs["baseline"][1], name="csv.html"), "summary", data_run="0")
    assert from_log.keys() == from_csv.keys()
    for op, stats in from_csv.items():
        # The CSV holds times to 1 microsecond: a last digit may round the other way.
        np.testing.assert_allclose([from_log[op][k] for k in stats], list(stats.values()), atol=1.01e-4, err_msg=op)
    # What was run, from the provenance; enough complete visits: the projection is there.
    provenance = json.loads(Path(f"{csv}.provenance.json").read_text())["runs"][0]
    assert f"<td>{provenance['server_version']}</td>" in page and provenance["run"] in page
    assert "<td>last_object_table</td>" in page and 'class="projection"' in page
    assert page.count("data:image/png;base64,") == 4  # selects, stores, slow fraction, projection


def test_comparison_side_by_side(runs: dict[str, tuple[Path, Path]], shared_report) -> None:
    # A CSV and a log side by side (the log gives its CSV's numbers: test_numbers_equal_the_csv).
    page = shared_report(runs["last"][1], runs["baseline"][0]).read_text(encoding="utf-8")
    for k, name in enumerate(("last", "baseline")):
        assert_summary_matches_csv(page, runs[name][1], run=k)
        complete = pd.read_csv(runs[name][1]).query("complete == 1")
        for op, stats in page_stats(page, "compare").items():
            if f"{k}:median" in stats and np.isfinite(stats[f"{k}:median"]):
                assert abs(stats[f"{k}:median"] - complete[f"{op}_real"].median()) <= 0.5e-4 + 1e-9
    differences = {row["attrs"]["data-key"] for t in _Tables(page).tables if t["attrs"].get("class") == "differences"
                   for row in t["rows"] if "data-key" in row["attrs"]}
    assert "config.l1db.dia_object_index" in differences and "config.database.url" in differences
    assert "seed" not in differences and "run" not in differences
    # Only one run has enough complete visits: one projection; the other says why not.
    assert page.count('class="projection"') == 1
    assert f"a projection needs at least {MIN_PROJECTION_VISITS}" in page


def test_escapes_what_it_reads(runs: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    csv = tmp_path / "odd.csv"
    shutil.copy(runs["baseline"][1], csv)
    sidecar = json.loads(Path(f"{runs['baseline'][1]}.provenance.json").read_text())
    sidecar["runs"][0]["config"]["ap_proto"]["note"] = '<script>alert("x")</script> & <img src="https://e.org/x">'
    Path(f"{csv}.provenance.json").write_text(json.dumps(sidecar))
    page = _report(tmp_path, csv, "--label", "<b>odd</b>")
    assert "<script" not in page and "<b>odd" not in page and "<img src=\"https" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page


def test_failures_listed(runs: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    """A failed attempt written by the log's writer: the log's page lists the record, the CSV's counts it."""
    log = tmp_path / "failed.jsonl"
    shutil.copy(runs["baseline"][0], log)
    run = parse_log(log).provenance[0]["run"]
    with TimingLogWriter(log, run=run) as writer:
        writer.failure(3, 0, "src_insert", "OperationalError", "database is locked <again>", 1, 0.25, 2.0, True)
    page = _report(tmp_path, log)
    failures = [t for t in _Tables(page).tables if t["attrs"].get("class") == "failures"]
    cells = ["".join(text) for _, text in failures[0]["rows"][1]["cells"]]
    assert cells[:6] == [run, "3", "0", "src_insert", "OperationalError", "database is locked <again>"]
    assert "database is locked &lt;again&gt;" in page and "1 failed attempt(s)" in page
    csv = tmp_path / "failed.csv"
    assert log2csv([str(log), "-o", str(csv)]) == 0
    page = _report(tmp_path, csv, name="csv.html")
    assert "1 failed attempt(s) in 1 visit(s)" in page


def test_partial_log(runs: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A run still going: its last visit unfinished, its last line half written."""
    lines = runs["baseline"][0].read_text().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])
    parsed = parse_log(partial)
    assert parsed.malformed == 1
    visits = parsed.timings.loc[parsed.timings["op"] == "visit", "visit"]
    last = int(parsed.timings["visit"].max())
    assert last not in set(visits)  # the last visit has records but did not finish
    page = _report(tmp_path, partial)
    assert "1 malformed record(s)" in page and f"the last visit ({last}) is unfinished" in page
    assert page_stats(page, "summary", data_run="0")["visit"]["visits"] == len(visits)
    incomplete = [t for t in _Tables(page).tables if t["attrs"].get("class") == "incomplete"]
    assert [["".join(text) for _, text in row["cells"]][1] for row in incomplete[0]["rows"][1:]] == [str(last)]
    # Only the provenance written so far: a page that says so.
    started = tmp_path / "started.jsonl"
    started.write_text(lines[0])
    page = _report(tmp_path, started, name="started.html")
    assert "no visit recorded yet" in page and 'class="summary"' not in page
    # Where the page went is the last line on stdout.
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "started.html")


def _bad(tmp_path: Path) -> Iterator[tuple[str, list[str], int, str]]:
    """(case, arguments, exit code, what the error line says) of each bad input."""
    missing = tmp_path / "missing.csv"
    yield "missing file", [str(missing)], 1, f"no such run file: {missing}"
    yield "directory", [str(tmp_path)], 1, "is a directory"
    bare = tmp_path / "bare.csv"
    bare.write_text("run,visit,complete\nr,1,1\n")
    yield "CSV without provenance", [str(bare)], 1, "no provenance sidecar"
    empty = tmp_path / "empty.csv"
    empty.write_text("run,visit,complete\nr,1,1\n")
    Path(f"{empty}.provenance.json").write_text('{"runs": [], "logs": []}')
    yield "sidecar without run", [str(empty)], 1, "holds no run record"
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    yield "not a table", [str(binary)], 1, "not a log2csv table"
    text = tmp_path / "notes.log"
    text.write_text("INFO nothing to see\n")
    yield "log without a run", [str(text)], 1, "no run in it"
    yield "labels", [str(text), "--label", "a", "b"], 1, "1 inputs but 2 labels"
    yield "no input", [], 2, "the following arguments are required"


def _exit_code(args: list[str]) -> int | str | None:
    """l1db_report's exit code: what main returns, or argparse's SystemExit code."""
    try:
        return l1db_report(args)
    except SystemExit as exc:
        return exc.code


def test_bad_input(runs: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    for case, args, code, message in _bad(tmp_path):
        result = _exit_code([*args, "-o", str(out)])
        err = capsys.readouterr().err
        assert result == code, case
        lines = err.strip().splitlines()
        assert lines[-1].startswith("l1db_report: error: ") and message in lines[-1], (case, err)
        # argparse's usage comes before its error line.
        assert (len(lines) == 1 or code == 2) and "Traceback" not in err, (case, err)
        assert not list(out.parent.iterdir()), case
    # An output that cannot be written: one line, nothing left behind.
    result = l1db_report([str(runs["baseline"][1]), "-o", str(tmp_path / "no-such-dir" / "r.html")])
    err = capsys.readouterr().err
    assert result == 1 and err.startswith("l1db_report: error: cannot write") and err.count("\n") == 1, err


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as chromium:
        yield chromium


def _resource_urls(page: str) -> list[str]:
    """Every src and href value that is not a data URI or a fragment."""
    return [url for url in re.findall(r'\b(?:src|href)\s*=\s*["\']?([^"\' >]+)', page, re.I)
            if not url.startswith(("data:", "#"))]


def assert_looks_right(browser: Chromium, path: Path) -> str:
    """Open ``path``: no error, no request but the page itself, a screenshot that is not blank; the DOM."""
    page = path.read_text(encoding="utf-8")
    assert _resource_urls(page) == []
    visit = browser.load(path)
    assert visit.errors == []
    assert [url for url in visit.requests if not url.startswith("data:")] == [visit.url]
    assert not_blank(browser, visit.screenshot)
    return visit.dom


def not_blank(browser: Chromium, screenshot: bytes) -> bool:
    """Whether a screenshot of the browser's viewport shows text, tables and figures: many shades, far from one."""
    pixels = matplotlib.image.imread(io.BytesIO(screenshot), format="png")
    assert pixels.shape[:2] == (browser.height, browser.width)
    grey = pixels[..., :3].mean(axis=2)
    return bool(grey.std() > 0.05 and np.unique(np.round(grey, 2)).size > 20)


def test_single_run_in_a_browser(browser: Chromium, runs: dict[str, tuple[Path, Path]], tmp_path: Path,
                                 shared_report) -> None:
    dom = assert_looks_right(browser, shared_report(runs["last"][1]))
    assert_summary_matches_csv(dom, runs["last"][1])
    assert dom.count("data:image/png;base64,") == 4
    # The checks can fail: a page that fetches an image shows the request and its failure.
    fetching = tmp_path / "fetching.html"
    fetching.write_text('<!DOCTYPE html><html><body><p>x</p><img src="http://example.org/x.png"></body></html>')
    visit = browser.load(fetching)
    assert "http://example.org/x.png" in visit.requests and visit.errors
    assert not not_blank(browser, visit.screenshot)  # a line of text on white is blank enough
    assert _resource_urls(fetching.read_text()) == ["http://example.org/x.png"]


def test_comparison_in_a_browser(browser: Chromium, runs: dict[str, tuple[Path, Path]], shared_report) -> None:
    dom = assert_looks_right(browser, shared_report(runs["last"][1], runs["baseline"][0]))  # a CSV and a log
    assert_summary_matches_csv(dom, runs["last"][1], run=0)
    assert_summary_matches_csv(dom, runs["baseline"][1], run=1)
    compare = page_stats(dom, "compare")
    last = pd.read_csv(runs["last"][1]).query("complete == 1")
    assert abs(compare["store"]["0:median"] - last["store_real"].median()) <= 0.5e-4 + 1e-9
    assert "config.l1db.dia_object_index" in dom and "Comparison" in dom
    assert dom.count("data:image/png;base64,") == 1 + 4 + 3  # overlaid; last: 3 + projection; baseline: 3
