"""The tutorial notebook and the interop examples (SALib, EMA Workbench) run, at a tiny size."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "experiments" / "notebooks").glob("*.ipynb"))
TINY = {"SME_ABM_TUTORIAL_SMES": "300", "SME_ABM_TUTORIAL_STEPS": "12", "SME_ABM_TUTORIAL_TRAJECTORIES": "2"}


def load_script(relative: str) -> ModuleType:
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def kernel_of_this_interpreter(tmp_path, monkeypatch) -> str:
    """A ``python3`` kernelspec that runs ``sys.executable``, found first through JUPYTER_PATH."""
    from ipykernel.kernelspec import install

    install(prefix=str(tmp_path / "jupyter"), kernel_name="python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter" / "share" / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend renders the figures
    for name, value in TINY.items():
        monkeypatch.setenv(name, value)
    pythonpath = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", ":".join(pythonpath))
    return "python3"


def test_there_is_a_tutorial_notebook():
    assert ROOT / "experiments" / "notebooks" / "tutorial.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_saved_without_outputs(path: Path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before saving"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, kernel_of_this_interpreter: str):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(notebook, kernel_name=kernel_of_this_interpreter, timeout=600,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors
    figures = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
               if "image/png" in output.get("data", {})]
    assert len(figures) >= 2  # the comparison and the sensitivity plot
    assert notebook.cells[-1].outputs[0].text.strip() == sys.executable  # ran in this environment


def test_salib_morris_interop(tmp_path):
    module = load_script("experiments/interop/salib_morris.py")
    out = tmp_path / "morris"
    assert module.main(["--trajectories", "2", "--smes", "300", "--steps", "6", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * (len(module.SCREENED_PARAMETERS) + 1)
    indices = pd.read_csv(out / "morris.csv")
    assert set(indices["parameter"]) == set(module.SCREENED_PARAMETERS)
    assert indices["mu_star"].notna().all() and (indices["mu_star"] >= 0).all()
    # the corporate tax rate on small firms moves the fiscal cost of the levers
    fiscal = indices[indices["outcome"] == "fiscal_cost_total"].set_index("parameter")["mu_star"]
    assert fiscal["levers.p07_tax_relief.small_micro_cit_rate"] > 0
    assert (out / "morris.png").stat().st_size > 5_000


def test_ema_workbench_prim_interop(tmp_path):
    pytest.importorskip("ema_workbench", reason="ema_workbench comes with the test extra (pip install -e '.[test]')")
    module = load_script("experiments/interop/ema_prim.py")
    out = tmp_path / "ema"
    assert module.main(["--scenarios", "10", "--policies", "2", "--smes", "300", "--steps", "6",
                        "--out", str(out)]) == 0
    experiments = pd.read_csv(out / "experiments.csv")
    assert len(experiments) == 20
    inputs = list(module.UNCERTAINTIES) + list(module.LEVERS)
    assert set(inputs + list(module.OUTCOMES)) <= set(experiments.columns)
    # Latin hypercube: every scenario draw of an uncertainty falls in its own stratum
    for name, (_, low, high) in module.UNCERTAINTIES.items():
        draws = experiments.drop_duplicates("scenario")[name]
        strata = ((draws - low) / (high - low) * len(draws)).astype(int)
        assert sorted(strata) == list(range(len(draws)))
    box = pd.read_csv(out / "prim_box.csv", index_col=0)
    assert list(box.index) == ["low", "high"] and set(box.columns) <= set(inputs)
    assert (box.loc["low"] <= box.loc["high"]).all()
    assert (out / "prim_box.png").stat().st_size > 5_000
    # the wrapped function is the model: same inputs, same answer as sme_abm.run
    direct = module.sme_economy(n_smes=300, steps=6, seed=1, guarantee_fee_cap=0.02, growth_drift=0.0)
    assert direct == module.sme_economy(n_smes=300, steps=6, seed=1, guarantee_fee_cap=0.02, growth_drift=0.0)

