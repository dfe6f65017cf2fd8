"""The calibration runs through the sweep machinery and writes its fit."""

from __future__ import annotations

import importlib.util
import json

from conftest import ROOT


def test_calibration_quick_runs_sweeps_and_writes_fit(tmp_path):
    spec = importlib.util.spec_from_file_location("calibrate", ROOT / "experiments/calibration/calibrate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--workers", "1", "--out", str(tmp_path)]) == 0
    fitted = json.loads((tmp_path / "fitted.json").read_text())
    assert set(fitted["parameters"]) == {"banks.markup", "banks.risk_premium_share", "banks.pd_base",
                                         "economy.entry_rate", "economy.demand_volatility"}
    assert fitted["loss"] >= 0 and set(fitted["moments"]) == {"annual_exit_rate", "small_micro_new_loan_rate",
                                                             "sme_count_ratio"}
    # every stage is an ordinary sweep folder with a manifest and a runs table
    for stage in ("stage1-hypercube", "stage1-zoom", "stage2-candidate-1"):
        assert (tmp_path / stage / "manifest.json").exists() and (tmp_path / stage / "runs.parquet").exists()
