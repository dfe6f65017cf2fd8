"""Validation statistics on synthetic data with known answers, and the report's structure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sme_abm.validation import _mean_ci, validate, zipf_exponent

from conftest import CONFIGS, run_cli


@pytest.mark.parametrize("alpha", [1.0, 1.5])
def test_zipf_estimator_recovers_known_exponent(alpha):
    rng = np.random.default_rng(0)
    sample = (1.0 - rng.random(100_000)) ** (-1.0 / alpha)  # P(X > x) = x^-alpha, x >= 1
    assert zipf_exponent(sample) == pytest.approx(alpha, abs=0.05)


def test_confidence_interval_of_known_sample():
    mean, half = _mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert half == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)


def test_validate_small_population_writes_complete_report(tmp_path):
    results = validate(CONFIGS / "baseline.toml", replicates=2, n_smes=800, steps=36, out=tmp_path)
    names = {r.name for r in results}
    assert {"zipf_exponent", "annual_exit_rate", "small_micro_new_loan_rate", "sme_spread_over_large_firm_loans",
            "procurement_sme_share", "procurement_sme_share_min", "procurement_small_micro_of_reserved_min",
            "average_guarantee_fee", "guarantor_leverage_over_limit", "guarantee_additionality_credit",
            "guarantee_additionality_rate", "npl_ratio_small_micro", "realised_over_priced_loss",
            "guarantor_loss_rate", "economic_default_share"} == names
    assert {r.role for r in results} == {"fitted", "checked"}
    report = (tmp_path / "report.md").read_text()
    assert "| target | role |" in report and "Axtell" in report
    for figure in ("size_distribution.png", "exit_rate.png", "loan_rates.png"):
        assert (tmp_path / figure).stat().st_size > 5_000
    rules = {r.name: r for r in results}
    assert rules["procurement_sme_share_min"].passed and rules["guarantor_leverage_over_limit"].passed


def test_validate_cli_json(tmp_path):
    done = run_cli("validate", str(CONFIGS / "baseline.toml"), "--replicates", "2", "--smes", "400", "--steps", "24",
                   "--workers", "1", "--out", str(tmp_path / "v"), "--json")
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)
    assert all({"name", "target", "model", "tolerance", "passed", "source"} <= set(item) for item in items)
