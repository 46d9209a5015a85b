"""What a command pays before it does anything: the package and the light commands import no heavy library.

Every test and every user's command starts Python; ``import l1db`` used to load pandas,
SQLAlchemy, numba, astropy and healpy (with matplotlib): about 2 s of CPU for
``cassandra_nodes --help``. The package's names are now imported on first use
(``l1db/__init__.py``), healpy only for a HEALPix index (``l1db/pixelization.py``) and Dask
only for a pool of workers (``dia_sim/tile_pool.py``). Each command imports at its start only
the heavy libraries its work needs (`COMMANDS`): the rest comes with the function that uses it.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import l1db

#: Libraries that take a tenth of a second or more to import.
HEAVY = ("pandas", "sqlalchemy", "numba", "astropy", "healpy", "matplotlib", "cassandra", "distributed")

#: The heavy libraries each command may load when its module is imported (what every run, ``--help`` and
#: usage error pays): what its work needs, nothing else; a database's libraries come with the database it
#: opens.
COMMANDS = {
    "dia_sim.cli.log2csv": {"pandas"},
    "dia_sim.cli.plot_timing": {"pandas", "matplotlib"},
    "dia_sim.cli.report": {"pandas", "matplotlib"},
    "l1db.cli.create_l1_schema": set(),
    "l1db.cli.l1db_state": set(),
    "l1db.cli.cassandra_nodes": set(),
    "dia_sim.cli.ap_proto": set(),
}

#: Own servers: none (a fresh interpreter only).
pytestmark = pytest.mark.own_servers


def loaded_after(statement: str) -> set[str]:
    """The `HEAVY` libraries a fresh interpreter has loaded after running ``statement``."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(set(sys.modules))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.splitlines()[-1])) & set(HEAVY)


def test_the_package_imports_nothing_heavy() -> None:
    assert loaded_after("import l1db") == set()


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_a_command_imports_what_its_work_needs(module: str) -> None:
    assert loaded_after(f"import {module}") <= COMMANDS[module]


def test_the_import_check_can_fail() -> None:
    """The same check on a module that loads more than a command may: the check sees it."""
    assert loaded_after("import dia_sim.plots") > COMMANDS["dia_sim.cli.log2csv"]


def ap_proto_loads(args: list[str]) -> set[str]:
    """The `HEAVY` libraries ``ap_proto ARGS`` has loaded when it exits (its output discarded)."""
    return loaded_after(
        "import contextlib, io\nfrom dia_sim.cli.ap_proto import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    try:\n        main({args!r})\n    except SystemExit:\n        pass")


def test_ap_proto_says_help_and_bad_input_before_the_loop(tmp_path: Path) -> None:
    """``--help``, a usage error, a bad option or config exit before the loop is imported (pandas, numba, Dask)."""
    sources = str(tmp_path / "missing.npy")
    (tmp_path / "bad.cfg").write_text(f"[database]\nurl = sqlite:///{tmp_path / 'l1db.sqlite3'}\n"
                                      f"[ap_proto]\nseed = -3\n")
    for args in (["--help"], ["--no-such-flag", sources], []):
        assert ap_proto_loads(args) == set(), args
    for args in (["--seed", "x", sources], ["-c", str(tmp_path / "bad.cfg"), sources]):
        # The config read: SQLAlchemy checks an SQL URL's driver, astropy reads the start time.
        assert ap_proto_loads(args) <= {"sqlalchemy", "astropy"}, args
    # The check can fail: a run past its config (here to a missing catalogue) does import the loop.
    (tmp_path / "good.cfg").write_text(f"[database]\nurl = sqlite:///{tmp_path / 'l1db.sqlite3'}\n")
    assert {"pandas", "numba"} <= ap_proto_loads(["-c", str(tmp_path / "good.cfg"), "--no-progress",
                                                  "--log", str(tmp_path / "log"), sources])


def test_a_pool_worker_imports_what_a_tile_needs(tmp_path: Path) -> None:
    """A worker unpickles a tile's task and runs it: the database's libraries and the simulation's, no
    plots, no Dask of its own making, and no astropy (its options and plans hold MJDs, which the API takes)."""
    from dia_sim.catalog import generate_catalog
    from dia_sim.options import ApProtoSection, load_ap_config, run_options
    from dia_sim.tile_task import TileJob
    from dia_sim.visit_plan import plan_visit
    from l1db.cli.create_l1_schema import main as create_l1_schema
    from l1db.config_model import validate_section

    (tmp_path / "l1db.cfg").write_text(f"[database]\nurl = sqlite:///{tmp_path / 'l1db.sqlite3'}\n")
    assert create_l1_schema(["-c", str(tmp_path / "l1db.cfg")]) == 0
    generate_catalog(tmp_path / "sources.npy", per_visit=50, seed=1)
    config = load_ap_config(tmp_path / "l1db.cfg")
    options = run_options(validate_section(ApProtoSection, config.sections.get("ap_proto", {}), str), num_visits=1)
    job = TileJob("run", config, str(tmp_path / "sources.npy"), options)
    (tmp_path / "task.pickle").write_bytes(pickle.dumps((job, plan_visit(1, options.start_time, options))))
    task = (f"import pickle\nfrom dia_sim.tile_task import process_tile\n"
            f"job, plan = pickle.loads(open({str(tmp_path / 'task.pickle')!r}, 'rb').read())\n"
            f"outcome = process_tile(job, plan, 0)\nassert outcome.error is None, outcome.traceback\n"
            f"assert outcome.result.sources > 0, outcome.result")
    loaded = loaded_after(task)
    assert {"pandas", "numba", "sqlalchemy"} <= loaded and not loaded & {"matplotlib", "healpy", "distributed",
                                                                         "astropy"}, loaded


def test_an_sql_database_needs_no_healpy() -> None:
    loaded = loaded_after("import l1db.cli.create_l1_schema, l1db.sql.l1db_sql")
    assert "healpy" not in loaded and "matplotlib" not in loaded
    # The check can fail: the same statement with a HEALPix index does load it.
    loaded = loaded_after("import numpy as np\nfrom l1db.pixelization import Pixelization\n"
                          "Pixelization('healpix', 8).pixel_index(np.array([1.0]), np.array([2.0]))")
    assert "healpy" in loaded


def test_every_exported_name_resolves() -> None:
    assert sorted(l1db.__all__) == sorted(l1db._EXPORTS)
    for name in l1db.__all__:
        assert getattr(l1db, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        l1db.nothing  # noqa: B018


def test_dask_only_for_a_pool_with_workers() -> None:
    """ap_proto's loop loads Dask only when its tiles go to workers (``--workers`` > 1 or a scheduler)."""
    assert "distributed" not in loaded_after("import dia_sim.ap_loop\n"
                                             "from dia_sim.tile_pool import TilePool\nTilePool(1, n_tasks=4)")
    # The check can fail: a pool of two local workers does load it.
    assert "distributed" in loaded_after("from dia_sim.tile_pool import TilePool\n"
                                         "TilePool(2, n_tasks=4).close()")


def test_reading_a_catalogue_needs_no_healpy(tmp_path: Path) -> None:
    """ap_proto and each worker read the catalogue through hpgeom: healpy's second of imports (matplotlib,
    astropy.coordinates) is paid only by gen_sources, which draws the positions with healpy."""
    from dia_sim.catalog import generate_catalog

    path = tmp_path / "sources.npy"
    generate_catalog(path, per_visit=50, seed=1)
    read = (f"from dia_sim.catalog import SourceCatalog\nimport dia_sim.tile_processor\n"
            f"c = SourceCatalog.load({str(path)!r})\nc.sources_in_region((10.0, -30.0, 2.0))")
    loaded = loaded_after(read)
    assert "healpy" not in loaded and "matplotlib" not in loaded
    # The check can fail: making a catalogue does load healpy.
    assert "healpy" in loaded_after(f"from dia_sim.catalog import generate_catalog\n"
                                    f"generate_catalog({str(tmp_path / 'other.npy')!r}, per_visit=50, seed=2)")


def test_local_workers_fork_with_the_tile_modules_loaded() -> None:
    """A local pool's workers fork from a server that has imported and warmed up the tile's modules
    (`dia_sim.tile_pool.FORKSERVER_PRELOAD`): a spawned worker would import them anew, seconds of CPU each."""
    code = ("import json, sys\nfrom dia_sim.tile_pool import TilePool\npool = TilePool(2, n_tasks=2)\n"
            "found = pool.client.run(lambda: [m in sys.modules for m in ('dia_sim.pool_preload', 'numba')])\n"
            "pool.close()\nprint(json.dumps(list(found.values())))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    # Both workers had them before any task of the run: only the preload imports dia_sim.pool_preload.
    assert json.loads(done.stdout.splitlines()[-1]) == [[True, True], [True, True]]
