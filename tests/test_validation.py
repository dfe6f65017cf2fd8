"""Validation statistics on synthetic data with known answers, and the report's structure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sme_abm.validation import _mean_ci, guarantee_targeting, investment_rates, validate, zipf_exponent

from conftest import CONFIGS, run_cli


@pytest.mark.parametrize("alpha", [1.0, 1.5, 2.5, 3.5])  # above 2: the package's default range stopped there
def test_zipf_estimator_recovers_known_exponent(alpha):
    rng = np.random.default_rng(0)
    sample = (1.0 - rng.random(100_000)) ** (-1.0 / alpha)  # P(X > x) = x^-alpha, x >= 1
    assert zipf_exponent(sample) == pytest.approx(alpha, abs=0.05)


def test_confidence_interval_of_known_sample():
    mean, half = _mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert half == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)


def test_investment_rates_of_a_known_panel():
    """Four firms a year apart (snapshots at steps 11 and 23; firm 1 also at 35). At an annual
    depreciation rate of 0.12 (0.01 a month) a year keeps 0.99^12 of the capital."""
    import pandas as pd

    kept = 0.99 ** 12
    start = [100.0, 100.0, 100.0, 100.0, 100.0]
    # I/K 0.3, 0.005, 0.1, 0 and -0.05 (capital sold): Cooper and Haltiwanger's inaction is
    # |I/K| < 0.01, and a sale below -0.01 is negative investment, not inaction
    after_year = [kept * 100 + 30, kept * 100 + 0.5, kept * 100 + 10, kept * 100, kept * 100 - 5]
    panel = pd.DataFrame({"firm_id": [1, 2, 3, 4, 5] * 2 + [1], "step": [11] * 5 + [23] * 5 + [35],
                          "capital": start + after_year + [200.0]})
    spikes, inaction, negative, mean = investment_rates(panel, depreciation_rate=0.12)
    # firm 1's second year: (200 - kept * 130) / 130 = 0.65, a spike; the others have one year
    assert spikes == pytest.approx(2 / 6) and inaction == pytest.approx(2 / 6) and negative == pytest.approx(1 / 6)
    assert mean == pytest.approx((0.3 + 0.005 + 0.1 + 0.0 - 0.05
                                  + (200 - kept * (kept * 100 + 30)) / (kept * 100 + 30)) / 6)
    # only years that start after step 11
    assert investment_rates(panel, 0.12, after_step=11)[0] == 1.0
    # a firm that exits (no later snapshot) has no firm-year
    assert np.isnan(investment_rates(panel[panel["step"] == 11], 0.12)[0])


def test_guarantee_targeting_of_a_known_record():
    applications = pd.DataFrame({"size_class": [0, 1, 2, 0, 3], "amount": [1.0, 2.0, 3.0, 6.0, 9.0],
                                 "guaranteed": [True, True, True, True, False]})
    shares = guarantee_targeting(applications)
    assert shares["guarantee_small_micro_share"] == pytest.approx(9.0 / 12.0)
    assert shares["guarantee_small_amount_share"] == pytest.approx(6.0 / 12.0)  # 1 + 2 + 3 are at most 5
    assert np.isnan(guarantee_targeting(applications.assign(guaranteed=False))["guarantee_small_micro_share"])


def test_validate_small_population_writes_complete_report(tmp_path):
    results = validate(CONFIGS / "baseline.toml", replicates=2, n_smes=800, steps=36, out=tmp_path)
    names = {r.name for r in results}
    assert {"zipf_exponent", "annual_exit_rate", "small_micro_new_loan_rate", "sme_spread_over_large_firm_loans",
            "procurement_sme_share", "procurement_sme_share_min", "procurement_small_micro_of_reserved_min",
            "average_guarantee_fee", "guarantor_leverage_over_limit", "guarantee_additionality_credit",
            "guarantee_additionality_rate", "npl_ratio_small_micro", "realised_over_priced_loss",
            "guarantor_loss_rate", "economic_default_share", "investment_spike_share",
            "investment_inaction_share", "investment_negative_share", "sme_revenue_share", "sme_profit_margin",
            "sme_expense_ratio",
            "matched_guarantee_credit_effect",
            "matched_guarantee_rate_effect", "additional_credit_per_guaranteed_yuan", "eligibility_rdd_credit",
            "eligibility_rdd_rate", "eligibility_rdd_bad_loans", "bank_capital_ratio", "new_guarantees_per_loan",
            "guarantees_to_small_micro", "guarantees_of_small_amounts", "entrant_employment",
            "entrant_first_year_growth", "entrant_first_year_exit"} == names
    assert {r.role for r in results} == {"fitted", "checked"}
    report = (tmp_path / "report.md").read_text()
    assert "| target | role |" in report and "Axtell" in report
    assert "Ciani, Gallo and Rotondi" in report and "risk class" in report
    for figure in ("size_distribution.png", "exit_rate.png", "loan_rates.png", "guarantee_experiments.png"):
        assert (tmp_path / figure).stat().st_size > 5_000
    rules = {r.name: r for r in results}
    assert rules["procurement_sme_share_min"].passed and rules["guarantor_leverage_over_limit"].passed


def test_validate_cli_json(tmp_path):
    done = run_cli("validate", str(CONFIGS / "baseline.toml"), "--replicates", "2", "--smes", "400", "--steps", "24",
                   "--workers", "1", "--out", str(tmp_path / "v"), "--json")
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)
    assert all({"name", "target", "model", "tolerance", "passed", "source"} <= set(item) for item in items)
