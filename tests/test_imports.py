"""What a command pays before it does anything: the package and the light commands import no heavy library.

Every test and every user's command starts Python; ``import l1db`` used to load pandas,
SQLAlchemy, numba, astropy and healpy (with matplotlib): about 2 s of CPU for
``cassandra_nodes --help``. The package's names are now imported on first use
(``l1db/__init__.py``), healpy only for a HEALPix index (``l1db/pixelization.py``) and Dask
only for a pool of workers (``dia_sim/tile_pool.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import l1db

#: Libraries that take a tenth of a second or more to import.
HEAVY = ("pandas", "sqlalchemy", "numba", "astropy", "healpy", "matplotlib", "cassandra", "distributed")

#: Own servers: none (a fresh interpreter only).
pytestmark = pytest.mark.own_servers


def loaded_after(statement: str) -> set[str]:
    """The `HEAVY` libraries a fresh interpreter has loaded after running ``statement``."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(set(sys.modules))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.splitlines()[-1])) & set(HEAVY)


def test_the_package_imports_nothing_heavy() -> None:
    assert loaded_after("import l1db") == set()


def test_cassandra_nodes_imports_nothing_heavy() -> None:
    assert loaded_after("import l1db.cli.cassandra_nodes") == set()


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
