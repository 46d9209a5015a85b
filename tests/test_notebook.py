"""The analysis notebook runs headless from a CSV path set in its first cell."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from timing_fixtures import write_synthetic_log

from dia_sim.log2csv import logs_to_table, provenance_path, write_csv, write_provenance

if TYPE_CHECKING:
    from jupyter_client.manager import KernelManager

# nbformat, nbclient and jupyter_client are imported by the tests that use them: nbformat's import
# (jsonschema's format checkers compile dozens of grammars) costs seconds of CPU, which every pytest-xdist
# worker would pay when it collects this module.

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "timing_analysis.ipynb"


def _kernel_manager(tmp_path: Path) -> KernelManager:
    """A kernel running this interpreter (the venv's), found without PATH or user kernel specs."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = tmp_path / "kernels"
    # write_kernel_spec puts sys.executable (an absolute path) in the spec's argv.
    write_kernel_spec(path=str(kernels / "l1dbproto-test"))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    return KernelManager(kernel_name="l1dbproto-test", kernel_spec_manager=specs)


def test_committed_notebook_has_no_outputs() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "CSV_PATH = " in code[0].source
    # No plotting code copied in: the figures come from dia_sim.plots.
    assert not any("matplotlib.pyplot" in cell.source or ".boxplot(" in cell.source for cell in code)


def test_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    log = tmp_path / "timing.log"
    write_synthetic_log(log, n_visits=30, backend="postgresql", strategy="last_object_table")
    table, parsed = logs_to_table([log])
    csv = tmp_path / "timing.csv"
    write_csv(table, csv)
    write_provenance(provenance_path(csv), parsed.provenance, [str(log)])
    other = tmp_path / "other.csv"
    write_csv(table.assign(store_real=table["store_real"] * 2), other)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = nb.cells[0]
    assert "CSV_PATH = " in first.source
    first.source += f"\nCSV_PATH = {str(csv)!r}\nOTHER_CSVS = [{str(other)!r}]\n"

    # The venv's bin folder is not needed on PATH: the kernel is this interpreter.
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    monkeypatch.setenv("PATH", path or os.defpath)

    client = NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # Raises CellExecutionError if any cell fails.

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == 4  # selects, stores, slow fraction, comparison
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "30 visits in 1 run(s): postgresql, last_object_table" in text
