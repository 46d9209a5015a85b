"""The fault-injection script, shortened: a few kill -9s and a PostgreSQL restart, then the checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import SERVERS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fault_injection  # noqa: E402

#: It restarts PostgreSQL for real: alone among the tests using it (tests/conftest.py).
pytestmark = pytest.mark.restarts_servers


def test_kills_and_a_restart_leave_a_database_equal_to_its_log(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    code = fault_injection.main([
        "--backends", "sqlite,postgresql", "--kills", "3", "--restarts", "1", "--visits", "8", "--down", "1.5",
        "--per-visit", "400", "--noise", "100", "--retry-wait", "0.5", "--keep", str(tmp_path),
        "--pg-admin-url", SERVERS.pg_admin_url,
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in out.splitlines() if line.startswith("| sqlite") or line.startswith("| postgresql")}
    assert set(rows) == {"sqlite", "postgresql"}
    for cells in rows.values():
        assert cells[2] == "3" and cells[9] == "all passed", cells
        assert int(cells[1]) >= 8  # the visits of the last run, after those of the killed runs
    assert rows["postgresql"][3].startswith("1 ") and int(rows["postgresql"][4]) >= 1  # a restart, failures logged
    assert rows["sqlite"][3] == "n/a"
    assert (tmp_path / "postgresql.jsonl").is_file()
