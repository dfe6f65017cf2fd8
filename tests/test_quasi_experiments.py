"""The guarantee evaluations of the literature, run inside the model (issue 17): the
estimators on data with known effects, the application record, and the mechanism they
measure (the discontinuity's first stage vanishes without guarantees)."""

import numpy as np
import pandas as pd
import pytest

from sme_abm.quasi_experiments import (HORIZON, application_outcomes, arc_growth, eligibility_discontinuity,
                                       matched_guarantee_effects)
from sme_abm.recorder import APPLICATION_COLUMNS
from sme_abm.runner import run


def test_arc_growth_is_bounded_and_defined_at_zero():
    growth = arc_growth(np.array([1.0, 0.0, 2.0, 0.0]), np.array([1.5, 3.0, 0.0, 0.0]))
    assert growth == pytest.approx([0.4, 2.0, -2.0, 0.0])


def _synthetic(effect: float, n_firms: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Firms applying once, in month 1; micro firms (half of them) see their debt shrink by
    30% whatever happens and get most guarantees (a confounder the size-class cells absorb),
    and guaranteed firms' debt grows by ``effect`` (in log points) on top."""
    rng = np.random.default_rng(seed)
    firm = np.arange(n_firms)
    micro = rng.random(n_firms) < 0.5
    treated = rng.random(n_firms) < np.where(micro, 0.4, 0.05)
    debt0 = rng.uniform(1.0, 2.0, n_firms)
    debt1 = debt0 * np.exp(np.where(micro, np.log(0.7), 0.0) + effect * treated + rng.normal(0, 0.02, n_firms))
    applications = pd.DataFrame({"step": 1, "firm_id": firm, "size_class": np.where(micro, 0, 1), "sector": 0,
                                 "estimated_pd": rng.uniform(0.0, 0.12, n_firms), "amount": 0.5,
                                 "direct": ~treated, "eligible": True, "guaranteed": treated, "granted": True,
                                 "rate": 0.04})
    rate0 = np.full(n_firms, 0.05)
    rate1 = rate0 - 0.005 * treated + np.where(micro, 0.002, 0.0)
    panel = pd.concat([
        pd.DataFrame({"firm_id": firm, "step": step, "debt": debt, "guaranteed": guaranteed, "loan_rate": rate})
        for step, debt, guaranteed, rate in (
            (0, debt0, np.zeros(n_firms), rate0),
            *((s, debt0, treated * 0.5, rate0) for s in range(1, 1 + HORIZON)),
            (1 + HORIZON, debt1, treated * 0.5, rate1))])
    return applications, panel


def test_matched_comparison_recovers_a_known_effect_that_a_raw_comparison_misses():
    applications, panel = _synthetic(effect=0.08)
    found = matched_guarantee_effects(applications, panel)
    assert found["credit"] == pytest.approx(8.0, abs=0.6)  # arc growth of a 0.08 log change: 8.0 points
    assert found["rate"] == pytest.approx(-50.0, abs=1.0)
    data = application_outcomes(applications, panel)
    raw = 100 * (data.loc[data["guaranteed"], "credit_growth"].mean() - data.loc[~data["guaranteed"], "credit_growth"].mean())
    assert raw < -10  # guarantees go to the firms whose credit shrinks: the raw difference has the wrong sign
    # the extra debt per guaranteed yuan: (e^0.08 - 1) of a debt of 1.5 on average, scaled by
    # 0.7 for the micro firms (8 in 9 of the treated), against a loan of 0.5
    assert found["additionality"] == pytest.approx(1.5 * np.expm1(0.08) * (8 / 9 * 0.7 + 1 / 9) / 0.5, rel=0.1)
    assert found["treated"] == int(applications["guaranteed"].sum())
    none = matched_guarantee_effects(*_synthetic(effect=0.0))
    assert abs(none["credit"]) < 0.6


def test_matched_comparison_needs_a_monthly_panel():
    applications, panel = _synthetic(effect=0.08)
    with pytest.raises(ValueError, match="panel_every = 1"):
        matched_guarantee_effects(applications, panel[panel["step"] % 2 == 0])


def test_discontinuity_recovers_a_known_jump_and_later_defaults():
    rng = np.random.default_rng(3)
    n = 6000
    pd_hat = rng.uniform(0.06, 0.18, n)
    eligible = pd_hat <= 0.12
    firm = np.arange(n)
    debt0 = np.full(n, 1.0)
    growth = 0.3 * (0.12 - pd_hat) + 0.10 * eligible + rng.normal(0, 0.05, n)
    debt1 = debt0 * np.exp(growth)
    applications = pd.DataFrame({"step": 1, "firm_id": firm, "size_class": 0, "sector": 0, "estimated_pd": pd_hat,
                                 "amount": 0.2, "direct": False, "eligible": eligible, "guaranteed": eligible,
                                 "granted": eligible, "rate": np.where(eligible, 0.05, np.nan)})
    panel = pd.concat([pd.DataFrame({"firm_id": firm, "step": s, "debt": d, "guaranteed": 0.0, "loan_rate": 0.05})
                       for s, d in [(0, debt0), *((s, debt0) for s in range(1, HORIZON + 1)),
                                    (HORIZON + 1, debt1), *((s, debt1) for s in range(HORIZON + 2, 40))]])
    # eligible firms default more often within two years: 20% against 5%
    defaults = firm[rng.random(n) < np.where(eligible, 0.20, 0.05)]
    exits = pd.DataFrame({"step": 10, "firm_id": defaults,
                          "reason": pd.Categorical(["default"] * defaults.size, categories=["default", "voluntary"])})
    found = eligibility_discontinuity(applications, panel, exits, cutoff=0.12)
    assert found["credit"] == pytest.approx(10.0, abs=3 * found["credit_se"])
    assert found["credit"] - 1.96 * found["credit_se"] > 0
    assert abs(found["rate"]) < 1.0
    assert found["bad_loans"] == pytest.approx(15.0, abs=3 * found["bad_loans_se"])
    assert found["guarantee_take_up"] == pytest.approx(100.0, abs=1.0)


@pytest.fixture(scope="module")
def recorded():
    """The baseline with the guarantors' default-probability ceiling at 0.12, and lowered to 0.09,
    and guarantors with five times the net assets, so that the ceiling, not their capacity,
    decides who gets a guarantee: guarantors at their leverage limit ration candidates by default
    probability (``credit.ration``), the effective cutoff falls below the ceiling and the
    discontinuity at it fades (in the SG&A candidate, docs/calibration.md, 16% of the applicants
    just below 0.12 were guaranteed after a 360-month burn-in; in this fixture 88%)."""
    return {ceiling: run("configs/baseline.toml", {"simulation.panel_every": 1, "simulation.burn_in_months": 24,
                                                   "guarantors.max_default_probability": ceiling,
                                                   "guarantors.net_assets_ratio": 0.04},
                         n_smes=3000, steps=48, seed=11, record_applications=True)
            for ceiling in (0.12, 0.09)}


def test_application_record_agrees_with_the_credit_market(recorded):
    result = recorded[0.12]
    apps = result.applications
    assert list(apps.columns) == list(APPLICATION_COLUMNS)
    assert apps["step"].min() == 0 and apps["step"].max() == 47  # burn-in applications are not kept
    assert (apps["granted"] == apps["rate"].notna()).all()
    guaranteed = apps[apps["guaranteed"]]
    assert len(guaranteed) > 50
    assert guaranteed["granted"].all() and not guaranteed["direct"].any() and guaranteed["eligible"].all()
    assert (apps["eligible"] == (apps["estimated_pd"] <= 0.12)).all()
    per_month = apps[apps["granted"]].groupby("step")["amount"].sum()
    assert np.allclose(per_month.reindex(range(48), fill_value=0.0), result.timeseries["credit_granted"])
    per_month = guaranteed.groupby("step")["amount"].sum()
    assert np.allclose(per_month.reindex(range(48), fill_value=0.0), result.timeseries["credit_guaranteed"])
    assert {"guaranteed", "loan_rate"} <= set(result.firm_panel)
    assert run("configs/baseline.toml", n_smes=200, steps=2, seed=1).applications is None  # off unless asked


def test_the_discontinuity_follows_the_guarantors_ceiling(recorded):
    """The share of guaranteed applicants jumps at the guarantors' default-probability
    ceiling, wherever it is: lower the ceiling to 0.09 and the jump moves there, and none is
    left at 0.12."""
    def take_up(ceiling: float, cutoff: float) -> float:
        result = recorded[ceiling]
        return eligibility_discontinuity(result.applications, result.firm_panel, result.exits,
                                         cutoff)["guarantee_take_up"]

    assert take_up(0.12, 0.12) > 40
    assert take_up(0.09, 0.09) > 40

    def share_just_below(ceiling: float, cutoff: float) -> float:
        apps = recorded[ceiling].applications
        near = apps[~apps["direct"] & (apps["estimated_pd"] > cutoff - 0.015) & (apps["estimated_pd"] <= cutoff)]
        return float(near["guaranteed"].mean())

    assert share_just_below(0.12, 0.12) > 0.4
    assert share_just_below(0.09, 0.12) == 0.0
    assert recorded[0.09].applications.query("estimated_pd > 0.09")["guaranteed"].sum() == 0


def test_no_loan_goes_to_a_firm_its_owner_closes_that_month(recorded):
    """Owners close a firm after `loss_months_to_exit` losing months, known in production
    before the credit market; such a firm gets no loan in its last month (before the rule,
    28% of all exits had one and a third of first guarantees went to them)."""
    result = recorded[0.12]
    closed = result.exits[result.exits["reason"].astype(str) == "voluntary"][["firm_id", "step"]]
    assert len(closed) > 100
    granted = result.applications[result.applications["granted"]]
    assert granted.merge(closed, on=["firm_id", "step"]).empty
