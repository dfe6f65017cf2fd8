"""A run starts from the economy's own state (burn-in), wages follow prices and
productivity, and the loan prime rate follows a Taylor rule."""

from __future__ import annotations

import numpy as np
import pytest

from sme_abm import SMEEconomy
from sme_abm.markets.labour import set_wage

BASELINE = "configs/baseline.toml"
JUMP_COLUMNS = ["household_consumption", "real_output", "employment"]


def _largest_jump(ts, months: int = 24) -> float:
    return float(ts[JUMP_COLUMNS].pct_change().iloc[1:months].abs().max().max())


@pytest.mark.parametrize("seed", [1, 2])
def test_a_burned_in_run_has_no_start_up_jump(seed):
    """Issue 13: no month-to-month jump above 5% in household consumption, output or
    employment in the first 24 months. Without the burn-in the set-up's first month
    alone moves consumption by more than 40%."""
    fresh = SMEEconomy(BASELINE, n_smes=5_000, rng=seed, simulation__burn_in_months=0,
                       simulation__mesa_agents=False).run(24).timeseries()
    burned = SMEEconomy(BASELINE, n_smes=5_000, rng=seed, simulation__mesa_agents=False).run(24).timeseries()
    assert _largest_jump(fresh) > 0.4
    assert _largest_jump(burned) < 0.05


def test_burn_in_runs_under_the_baseline_policy_and_the_record_starts_at_month_0():
    """Every lever setting and every shock applies from month 0: the burned-in state is the
    same whatever the levers, and a shock scheduled at month 0 hits month 0."""
    settings = {"simulation__burn_in_months": 24, "simulation__mesa_agents": False}
    on = SMEEconomy(BASELINE, n_smes=800, rng=3, **settings)
    off = SMEEconomy("configs/no-policy.toml", n_smes=800, rng=3, **settings)
    assert on.month_offset == 24 and on.month == -1
    for column in on.smes.columns:
        assert on.smes.column(column).tobytes() == off.smes.column(column).tobytes(), column
    assert on.ledger.balances == off.ledger.balances
    assert on.timeseries().empty
    shocked = SMEEconomy(BASELINE, n_smes=800, rng=3, **settings,
                         shocks=[{"kind": "demand", "start": 0, "duration": 2, "depth": 0.5}])
    ts = shocked.run(4).timeseries()
    assert list(ts["step"]) == [0, 1, 2, 3]
    assert shocked.smes.shock_hit.sum() == 0  # over after month 1
    plain = SMEEconomy(BASELINE, n_smes=800, rng=3, **settings).run(4).timeseries()
    assert ts["sme_output"].iloc[0] < 0.8 * plain["sme_output"].iloc[0]


def test_after_a_burn_in_only_the_change_of_policy_phases_in(tmp_path):
    """The baseline's rules, in force through the burn-in, stay in force at month 0 (before,
    every lever dropped to 1 - exp(-1/3) = 28% of its strength and phased in again: banks'
    capital ratio fell from 15.1% to 13.3% in month 0 when lever 11's risk weights went back
    up). A changed setting phases in from the burn-in's value; a lever switched off is off at
    once; without a burn-in the rules phase in from off as before. A saved state keeps the
    prior, so a study's variants phase in from it."""
    settings = {"simulation__burn_in_months": 12, "simulation__mesa_agents": False}
    key, name = "p13_financing_guarantee", "fee_cap"
    baseline = SMEEconomy(BASELINE, n_smes=500, rng=2, **settings).run(1)
    default = baseline.registry.by_key(key).parameters[name].default
    assert getattr(baseline.policy, key).fee_cap == default
    assert baseline.policy.p11_differentiated_supervision == SMEEconomy(
        BASELINE, n_smes=500, rng=2, **settings, levers__p24_organisation__implementation_lag_months=0.0
    ).run(1).policy.p11_differentiated_supervision
    changed = SMEEconomy(BASELINE, n_smes=500, rng=2, **settings,
                         **{f"levers__{key}__{name}": 2.0 * default}).run(1)
    ramp = 1.0 - np.exp(-1.0 / 3.0)
    assert getattr(changed.policy, key).fee_cap == pytest.approx(default + ramp * default, rel=1e-12)
    off = SMEEconomy(BASELINE, n_smes=500, rng=2, **settings, **{f"levers__{key}__enabled": False}).run(1)
    assert getattr(off.policy, key).fee_cap == off.registry.by_key(key).parameters[name].off
    fresh = SMEEconomy(BASELINE, n_smes=500, rng=2, simulation__burn_in_months=0,
                       simulation__mesa_agents=False).run(1)
    low = fresh.registry.by_key(key).parameters[name].off
    assert getattr(fresh.policy, key).fee_cap == pytest.approx(low + ramp * (default - low), rel=1e-12)
    changed.save_state(tmp_path / "state")
    assert SMEEconomy(state=tmp_path / "state").policy.prior == changed.policy.prior


def test_a_burned_in_state_continues_bit_for_bit(tmp_path):
    settings = {"simulation__burn_in_months": 12, "simulation__mesa_agents": False}
    straight = SMEEconomy(BASELINE, n_smes=600, rng=4, **settings).run(20).timeseries()
    first = SMEEconomy(BASELINE, n_smes=600, rng=4, **settings).run(8)
    first.save_state(tmp_path / "state")
    resumed = SMEEconomy(state=tmp_path / "state").run(12)
    joined = resumed.timeseries()
    assert joined["step"].tolist() == list(range(20))
    assert joined.drop(columns="accounting_residual").equals(straight.drop(columns="accounting_residual"))


def test_wages_follow_productivity_so_unit_labour_costs_stay():
    """Productivity gains reach workers as real wages (pass-through 1); with no pass-through
    the wage does not move."""
    grown = {}
    for passthrough in (1.0, 0.0):
        model = SMEEconomy(BASELINE, n_smes=2_000, rng=5, simulation__burn_in_months=0,
                           simulation__mesa_agents=False, labour__productivity_passthrough=passthrough,
                           labour__indexation=0.0)
        model.run(2)
        wage = model.wage
        model.smes.productivity *= 1.2  # a planted, lasting productivity gain
        model.run(36)
        grown[passthrough] = model.wage / wage
    assert grown[0.0] == pytest.approx(1.0)
    assert 1.1 < grown[1.0] < 1.3


def test_wages_answer_inflation_and_labour_market_tightness():
    model = SMEEconomy(BASELINE, n_smes=1_000, rng=6, simulation__burn_in_months=0, simulation__mesa_agents=False,
                       labour__productivity_passthrough=0.0, labour__tightness=0.05)
    model.run(1)
    row = model.recorder.rows[-1]
    row["inflation"] = 0.01
    model.labour_force = row["employment"] / (1.0 - model.config.labour.natural_unemployment)  # at the natural rate
    wage = model.wage
    set_wage(model)
    assert model.wage == pytest.approx(wage * 1.01)
    row["inflation"] = 0.0
    model.labour_force = row["employment"] / 0.90  # 10% unemployment, 4.8 points above natural
    wage = model.wage
    set_wage(model)
    assert model.wage == pytest.approx(wage * (1.0 + 0.05 * (0.90 - 0.948)), rel=1e-9)


def test_taylor_rule_raises_the_lpr_with_inflation():
    model = SMEEconomy(BASELINE, n_smes=1_000, rng=7, simulation__burn_in_months=0, simulation__mesa_agents=False)
    model.run(13)
    cb = model.central_bank
    neutral = model.config.central_bank.loan_prime_rate
    for row in model.recorder.rows[-12:]:
        row["inflation"] = 0.004  # about 4.9% a year
    before = cb.loan_prime_rate
    cb.set_rates()
    inflation = 1.004 ** 12 - 1.0
    gap = model.recorder.rows[-1]["capacity_utilisation"] - cb.utilisation_trend
    target = neutral + 1.5 * inflation + 0.5 * gap
    assert cb.loan_prime_rate == pytest.approx(0.9 * before + 0.1 * target, rel=1e-9)
    assert cb.loan_prime_rate > before
    # and the base rate of SME loans follows it by lever 9's pass-through
    p09 = model.policy.p09_monetary_transmission
    benchmark = model.config.central_bank.benchmark_rate
    assert model.sme_base_rate == pytest.approx(benchmark + p09.lpr_pass_through * (cb.loan_prime_rate - benchmark))


STATIONARY = ["smes_active", "employment", "bank_capital_ratio", "real_output_per_productivity"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_baseline_stays_near_its_own_state_for_20_years(seed):
    """Issue 13's stationarity check at its size (10,000 SMEs, 240 months after the burn-in,
    3 seeds): no month-to-month jump above 5% in consumption, output or employment in the
    first 24 months, and the 12-month moving averages of the SME count, employment, the bank
    capital ratio and real output per unit of mean productivity within 5% of their means
    (measured on the baseline of 2026-12-07: at most 3.2%, 2.3%, 2.1% and 2.5%; 3.3%, 1.4%,
    1.5% and 0.9% before; the count on 20 seeds in docs/calibration.md).

    Two of the issue's series are not held to 5% (docs/calibration.md, "Stationarity"):
    real output grows with innovation-driven productivity (about 0.6% a year; wages follow
    it, so employment stays), so it is stationary per unit of productivity, not in level; and
    the exit rate has no drift but its 12-month average moves 9-16% from its mean (11-12% now), where
    binomial draws at its own hazard alone move it 9% (the median of 500 draws)."""
    ts = SMEEconomy(BASELINE, n_smes=10_000, rng=seed, simulation__mesa_agents=False).run(240).timeseries()
    assert _largest_jump(ts) < 0.05
    ts["real_output_per_productivity"] = ts["real_output"] / ts["productivity_mean"]
    moving = ts[STATIONARY].rolling(12).mean().iloc[11:]
    deviation = (moving / ts[STATIONARY].mean() - 1.0).abs().max()
    assert (deviation < 0.05).all(), deviation
    growth = ts["real_output"].iloc[-12:].mean() / ts["real_output"].iloc[:12].mean()
    assert 1.05 < growth < 1.6
