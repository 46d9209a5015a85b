"""Packaging for l1dbproto: the L1 (Alert Production) database benchmark toolkit.

Every dependency and its tested lower bound is declared here, and only here.
"""

from setuptools import setup

# Lower bounds are the versions the test suite was run with (see BENCHMARKS.md
# and docs/installing.md); older ones may work but are not tested.
INSTALL_REQUIRES = [
    "SQLAlchemy>=2.1.9,<3",
    "psycopg2-binary>=2.9.13",
    "mysqlclient>=2.3.1",
    # 3.30.1's wheel carries the Cython numpy result parser (see l1db/cassandra/session.py);
    # l1db/cassandra/wire.py calls two of Session's internal methods, so a newer minor
    # version is taken only once tests/test_l1db_cassandra.py has passed with it.
    "cassandra-driver>=3.30.1,<3.31",
    "numpy>=2.4",
    "numba>=0.68",
    "healpy>=1.20",
    "hpgeom>=1.6",
    "lsst-sphgeom>=30.2026.4000",
    "lsst-sdm-schemas>=30.2026.4300",
    # The schema language's own library: parse_cat reads and validates Felis YAML with it.
    "lsst-felis>=30.2026.4300",
    "astropy>=8.0",
    "pandas>=3.1",
    "matplotlib>=3.11",
    "PyYAML>=6.0.3",
    "sqlglot>=30.30",
    "tqdm>=4.70",
    "pydantic>=2.14.4,<3",
    # The tiles' worker pool, local (LocalCluster) or on a cluster (dask scheduler / dask worker).
    "dask[distributed]>=2026.8.0",
]

TEST_REQUIRES = [
    "pytest>=9.0",
    # Runs the suite on three workers (scripts/test.sh; tests/conftest.py says what may run side by side).
    "pytest-xdist>=3.8.0",
    "nbclient>=0.11",
    "nbformat>=5.11",
    "ipykernel>=7.4",
    # Lint and type check, run by scripts/test.sh before the tests (configured in pyproject.toml).
    "ruff>=0.17.6",
    "mypy>=2.4.1",
    # The import contracts of pyproject.toml ([tool.importlinter]), checked by scripts/test.sh after mypy.
    "import-linter>=2.16",
]

# Opening notebooks/timing_analysis.ipynb: scripts/quickstart.sh (and scripts/test.sh) install it.
NOTEBOOK_REQUIRES = [
    "jupyterlab>=4.6.6",
    "ipykernel>=7.4",
]

# The production APDB client, only for benchmarks/bench_vs_apdb_cassandra.py (the version
# the side-by-side in BENCHMARKS.md was run with).
APDB_REQUIRES = [
    "lsst-dax-apdb==30.2026.4100",
]

CONSOLE_SCRIPTS = [
    "create_l1_schema = l1db.cli.create_l1_schema:main",
    "parse_cat = l1db.cli.parse_cat:main",
    "gen_sources = dia_sim.cli.gen_sources:main",
    "ap_proto = dia_sim.cli.ap_proto:main",
    "log2csv = dia_sim.cli.log2csv:main",
    "plot_timing = dia_sim.cli.plot_timing:main",
    "l1db_report = dia_sim.cli.report:main",
    "cassandra_nodes = l1db.cli.cassandra_nodes:main",
    "l1db_state = l1db.cli.l1db_state:main",
]

setup(
    name="l1dbproto",
    version="0.1.0",
    description="Benchmark toolkit for the L1 (Alert Production) database workload",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=[
        "l1db",
        "l1db.cli",
        "l1db.sql",
        "l1db.cassandra",
        "dia_sim",
        "dia_sim.cli",
        # The schema/ and cfg/ folders ship inside the installed package so that
        # the tools find the default schema and config without a source tree.
        "l1dbproto_schema",
        "l1dbproto_cfg",
    ],
    package_dir={"l1dbproto_schema": "schema", "l1dbproto_cfg": "cfg"},
    package_data={"l1dbproto_schema": ["*.yaml"], "l1dbproto_cfg": ["*.cfg"], "l1db.cassandra": ["conf/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "notebook": NOTEBOOK_REQUIRES, "apdb": APDB_REQUIRES},
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
