"""The SME administration (lever 24): support cases wait in one first-come, first-served
queue and are paid when processed, at most the capacity a month; cases of firms that left
are cancelled and cases that waited a budget year lapse."""

from __future__ import annotations

import numpy as np
import pytest

from sme_abm import SMEEconomy
from sme_abm.agents.administration import open_cases, pending, process_support_cases
from sme_abm.accounting import check_identities


def _month(model: SMEEconomy) -> None:
    """Open a ledger month on the model, as a step does before its phases."""
    model.ledger.open_step()
    model.step_stats = {}
    model.government.fiscal_cost.clear()


def _model(capacity_per_10k: float) -> SMEEconomy:
    model = SMEEconomy(n_smes=1_000, rng=5, simulation__mesa_agents=False).run(2)
    model.government.cases = {name: column[:0] for name, column in model.government.cases.items()}
    model.policy.p24_organisation.processing_capacity = capacity_per_10k
    return model


def test_cases_are_paid_first_come_first_served_up_to_the_capacity():
    model = _model(capacity_per_10k=20.0)  # 2 cases a month at about 1,000 SMEs
    capacity = int(round(model.policy.p24_organisation.processing_capacity * model.smes.size / 10_000))
    assert capacity == 2
    rows = np.arange(5)
    cash = model.smes.cash[rows].copy()
    _month(model)
    open_cases(model, "special_fund_grants", np.array([1.0, 2.0, 3.0, 4.0, 5.0]), rows)
    process_support_cases(model)
    paid = model.smes.cash[rows] - cash
    assert paid.tolist() == pytest.approx([1.0, 2.0, 0.0, 0.0, 0.0])
    assert model.government.fiscal_cost["p06_fiscal_funds"] == pytest.approx(3.0)
    assert model.step_stats["cases_waiting"] == 3 and pending(model, "special_fund_grants")[rows].tolist() == [
        False, False, True, True, True]
    check_identities(model)
    model.month += 1
    _month(model)
    process_support_cases(model)
    paid = model.smes.cash[rows] - cash
    assert paid.tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0, 0.0])
    assert model.step_stats["case_wait_months"] == 1.0


def test_cases_lapse_after_a_budget_year_and_are_cancelled_when_the_firm_leaves():
    model = _model(capacity_per_10k=0.0)  # nothing is processed
    _month(model)
    open_cases(model, "shock_relief", 0.5, np.arange(3))
    leaving = np.zeros(model.smes.size, dtype=bool)
    leaving[1] = True
    model.remove_smes(leaving)  # the firm in row 1 exits (rows are compacted)
    lapse = model.config.government.case_lapse_months
    model.month += lapse - 1
    _month(model)
    process_support_cases(model)
    assert model.step_stats["cases_cancelled"] == 1 and model.step_stats["cases_lapsed"] == 0
    assert model.step_stats["cases_waiting"] == 2
    model.month += 1
    model.policy.p24_organisation.processing_capacity = 1e5
    _month(model)
    process_support_cases(model)
    assert model.step_stats["cases_lapsed"] == 2 and model.step_stats["cases_processed"] == 0
    assert model.government.fiscal_cost["p23_emergency_relief"] == 0.0


def test_training_is_given_when_its_case_is_processed():
    model = _model(capacity_per_10k=0.0)
    smes = model.smes
    row = int(np.flatnonzero(~smes.trained)[0])
    productivity = smes.productivity[row]
    _month(model)
    open_cases(model, "training", 0.01, np.array([row]))
    process_support_cases(model)
    assert not smes.trained[row] and smes.productivity[row] == productivity  # still waiting
    model.policy.p24_organisation.processing_capacity = 1e5
    model.month += 1
    _month(model)
    process_support_cases(model)
    gain = model.policy.p19_management_training.training_productivity_gain
    assert smes.trained[row] and smes.productivity[row] == pytest.approx(productivity * (1 + gain))
    assert model.ledger.flow_table[("training", "government", "households")] == pytest.approx(0.01)


def test_relief_is_approved_once_then_paid_monthly_while_the_shock_lasts():
    """Lever 23's relief is one case per firm and shock: a surge of hit firms queues, and a
    firm whose case was processed is paid every month of the shock without a new case."""
    config = {"shocks": [{"kind": "demand", "start": 3, "duration": 6, "depth": 0.5, "share": 0.5}],
              "levers": {"p24_organisation": {"implementation_lag_months": 0.0, "processing_capacity": 300.0}}}
    model = SMEEconomy(config, n_smes=2_000, rng=2, simulation__mesa_agents=False).run(9)
    ts = model.timeseries()
    hit_months = ts.iloc[3:9]
    # far more hit firms than the capacity (300 per 10,000 SMEs: about 60 a month here): a
    # queue, and each month approved firms are paid without opening new cases
    assert hit_months["cases_waiting"].max() > 200
    capacity = np.round(300.0 * hit_months["firms"] / 10_000.0)  # the month's SMEs, after entry and exit
    assert (hit_months["cases_processed"] <= capacity).all()
    assert (hit_months["fiscal_cost_p23"].diff().iloc[1:] > 0).any()
    assert model.smes.relief_approved[model.smes.shock_hit].any()
    assert not model.smes.relief_approved[~model.smes.shock_hit].any()
