"""Issue 14: default, loss given default, the workout of defaulted loans, the guarantee
contract's loss split, guarantors' limits and risk-based fees, banks' learning of credit
risk and the resolution of insolvent banks. Each test fails if its mechanism is removed."""

from __future__ import annotations

import numpy as np
import pytest

from sme_abm import SMEEconomy
from sme_abm.accounting import check_identities
from sme_abm.agents.bank import NONDEPOSIT_LENDER
from sme_abm.demography import DEFAULT_CAUSES, exit_firms
from sme_abm.markets.credit import guarantee_fees

# no stand-in or exogenous defaults, and levers at full strength from month 0 (no lever-24 phase-in)
QUIET = {"economy__score_default_scale": 0.0, "economy__exogenous_default_rate": 0.0,
         "levers__p24_organisation__implementation_lag_months": 0.0}


def _model(n: int = 1_000, seed: int = 4, months: int = 6, **overrides) -> SMEEconomy:
    return SMEEconomy(n_smes=n, rng=seed, simulation__mesa_agents=False, **{**QUIET, **overrides}).run(months)


def _exit_month(model: SMEEconomy) -> dict:
    """Run the exit phase alone, inside an open ledger month; return its statistics."""
    model.ledger.open_step()
    model.step_stats = {}
    exit_firms(model, np.zeros(model.smes.size, dtype=bool))
    return model.step_stats


def _indebted_firm(model: SMEEconomy) -> int:
    smes = model.smes
    return int(np.flatnonzero((smes.debt > 0.05) & (smes.guaranteed == 0))[0])


def _only_defaulter(model: SMEEconomy, row: int) -> None:
    """Make firm ``row`` 90 days past due, and no other firm default."""
    smes = model.smes
    smes.overdraft_months[:] = 0
    smes.overdraft_months[row] = 3


def _cash_at_default(model: SMEEconomy, row: int) -> float:
    """The firm's cash once its receivables are collected (at lever 1's recovery rate)."""
    smes = model.smes
    return max(smes.cash[row] + model.policy.p01_legal_system.receivable_recovery_rate * smes.receivables[row], 0.0)


def test_defaults_are_counted_by_cause_and_economic_causes_need_no_hazard():
    model = SMEEconomy(n_smes=2_000, rng=5, simulation__mesa_agents=False).run(36)
    ts = model.timeseries()
    causes = ts[[f"defaults_{cause}" for cause in DEFAULT_CAUSES]].sum(axis=1)
    assert (causes == ts["exits_default"]).all() and ts["exits_default"].sum() > 0

    quiet = _model(months=0)
    smes = quiet.smes
    overdrawn, insolvent = _indebted_firm(quiet), int(np.flatnonzero(smes.debt > 0.05)[1])
    smes.overdraft_months[:] = 0
    smes.overdraft_months[overdrawn] = 1  # in overdraft, and its debt exceeds what its collateral carries
    smes.capital[overdrawn] = 0.5 * smes.debt[overdrawn] / quiet.config.banks.loan_to_value
    smes.receivables[overdrawn] = 0.0
    smes.capital[insolvent], smes.receivables[insolvent] = 0.0, 0.0  # assets below debt: negative equity
    smes.cash[insolvent] = 0.5 * smes.debt[insolvent]
    stats = _exit_month(quiet)
    assert stats["exits_default"] == 2
    assert stats["defaults_cashflow"] == 1 and stats["defaults_equity"] == 1
    assert stats["defaults_score"] == 0 and stats["defaults_exogenous"] == 0


@pytest.mark.parametrize("price", [1.0, 0.2])
def test_loss_given_default_is_the_exposure_the_seized_capital_does_not_cover(price):
    model = _model(levers__p01_legal_system__loan_recovery_rate=price)
    smes, banks = model.smes, model.banks
    row = _indebted_firm(model)
    bank = smes.bank[row]
    _only_defaulter(model, row)
    debt, cash, capital = smes.debt[row], _cash_at_default(model, row), smes.capital[row]
    assert model.policy.p01_legal_system.loan_recovery_rate == price
    unpaid = debt - min(cash, debt)
    writeoffs, npl, foreclosed = banks.writeoffs[bank], banks.npl[bank], banks.foreclosed[bank]
    stats = _exit_month(model)
    seized = min(price * capital, unpaid)
    assert stats["defaults_cashflow"] == 1 == stats["exits_default"]
    loss = banks.writeoffs[bank] - writeoffs  # unguaranteed: the bank bears all of it
    assert loss == pytest.approx(unpaid - seized, abs=1e-9 + 1e-9 * debt)
    assert banks.npl[bank] - npl == pytest.approx(unpaid, rel=1e-9)
    assert banks.foreclosed[bank] - foreclosed == pytest.approx(seized, rel=1e-9)
    if price == 1.0 and capital >= unpaid:
        assert loss == pytest.approx(0.0, abs=1e-12)
    assert check_identities(model) < 1e-6


def test_seized_collateral_is_sold_over_the_recovery_period_and_npl_runs_off():
    model = _model(levers__p01_legal_system__recovery_months=10.0)
    banks = model.banks
    banks.npl[0], banks.foreclosed[0] = 10.0, 4.0  # a workout book, as after a default
    reserves = banks.cash[0]
    model.ledger.open_step()
    model.step_stats = {}
    banks.work_out_defaults(model)
    share = 1.0 / model.policy.p01_legal_system.recovery_months  # 1/10 once lever 24 has phased it in
    assert 1 / 30 < share <= 1 / 10
    assert banks.foreclosed[0] == pytest.approx(4.0 * (1 - share)) and banks.npl[0] == pytest.approx(10.0 * (1 - share))
    assert banks.cash[0] - reserves == pytest.approx(4.0 * share)  # large firms pay for the collateral
    slower = _model(levers__p01_legal_system__enabled=False)
    assert slower.policy.p01_legal_system.recovery_months == pytest.approx(30.0)


def _guaranteed_default(**overrides):
    model = _model(n=2_000, months=12, **overrides)
    smes = model.smes
    rows = np.flatnonzero(smes.guaranteed > 0.01)
    assert rows.size, "no guaranteed firm"
    row = int(rows[0])
    _only_defaulter(model, row)
    smes.capital[row] = 0.0  # nothing to seize: the loss is the exposure cash leaves unpaid
    smes.cash[row] = 0.0
    smes.receivables[row] = 0.0
    debt, cash = smes.debt[row], 0.0
    guaranteed_loss = (debt - cash) * min(smes.guaranteed[row] / debt, 1.0)
    stats = _exit_month(model)
    assert stats["exits_default"] == 1
    return stats, guaranteed_loss


@pytest.mark.parametrize("split", [(0.4, 0.3, 0.2, 0.1), (0.2, 0.2, 0.5, 0.1)])
def test_guaranteed_losses_follow_the_contract_split_exactly(split):
    guarantor, reguarantee, bank, government = split
    p13 = "levers__p13_financing_guarantee__"
    stats, guaranteed_loss = _guaranteed_default(**{f"{p13}guarantor_share": guarantor,
                                                    f"{p13}reguarantee_share": reguarantee,
                                                    f"{p13}bank_share": bank, f"{p13}government_share": government})
    assert guaranteed_loss > 0
    for party, share in (("guarantor", guarantor), ("reguarantee_fund", reguarantee), ("government", government)):
        assert stats[f"guarantee_loss_{party}"] == pytest.approx(share * guaranteed_loss, rel=1e-9)
    assert stats["guarantee_loss_bank"] >= bank * guaranteed_loss * (1 - 1e-9)


def test_guarantor_at_its_leverage_limit_stops_guaranteeing():
    model = _model(n=2_000, months=12, simulation__check_accounting=False)  # capital removed by hand below
    guarantors = model.guarantors
    assert model.timeseries()["credit_guaranteed"].sum() > 0
    guarantors.cash[: guarantors.n_direct] = 1e-6  # capital gone: every direct guarantor far above its limit
    outstanding = guarantors.outstanding.copy()
    model.step()
    assert model.step_stats["credit_guaranteed"] == 0.0
    assert (guarantors.outstanding <= outstanding + 1e-12).all()


def test_guarantee_fees_are_risk_based_and_their_average_within_the_cap():
    model = _model(months=1)
    pd_ = np.array([0.01, 0.05, 0.12])
    amount = np.array([1.0, 1.0, 2.0])
    fees = guarantee_fees(model, pd_, amount, lgd=0.6)
    assert np.all(np.diff(fees) > 0)  # riskier firms pay more
    cap = model.policy.p13_financing_guarantee.fee_cap
    assert np.average(fees, weights=amount) <= cap + 1e-12
    low = guarantee_fees(model, np.array([0.001, 0.002]), np.ones(2), lgd=0.1)
    assert np.average(low) < cap  # the cap binds only when risk prices exceed it: the average is an outcome


def test_banks_learn_the_default_rate_and_loss_given_default_they_realise():
    # the stand-in hazard at half the scoring model's rate: banks see fewer defaults than it
    # predicts and shift its level down until the two agree
    model = SMEEconomy(n_smes=3_000, rng=6, simulation__mesa_agents=False, economy__score_default_scale=0.5).run(120)
    assert model.pd_shift < -0.3
    risk = model.credit_risk
    # unlearnt, the model would predict about twice the realised rate; learning closes most of the gap
    assert abs(np.log(risk["predicted"] / risk["realised"])) < 0.4 * np.log(2.0)
    assert model.loss_given_default() == pytest.approx(risk["loss"] / risk["exposure"])
    neutral = SMEEconomy(n_smes=3_000, rng=6, simulation__mesa_agents=False).run(120)
    assert abs(neutral.pd_shift) < abs(model.pd_shift)


def test_insolvent_bank_is_recapitalised_at_the_governments_cost():
    model = _model(months=3)
    banks = model.banks
    row = int(np.flatnonzero(banks.kind != NONDEPOSIT_LENDER)[-1])
    model.ledger.open_step()
    model.step_stats = {}
    loss = banks.equity[row] + 5.0
    model.ledger.pay("test_loss", "banks", "households", np.array([loss]), payer_rows=np.array([row]))
    assert banks.equity[row] < 0
    government = model.ledger.balances["government"]
    banks.resolve_insolvent(model)
    car = model.config.banks.min_capital_ratio
    assert banks.equity[row] == pytest.approx(car * banks.risk_weighted_assets[row], rel=1e-9)
    assert model.step_stats["banks_resolved"] == 1
    assert government - model.ledger.balances["government"] == pytest.approx(model.step_stats["bank_recapitalisation"])
    assert (banks.equity >= 0).all()
    assert check_identities(model) < 1e-6


def test_a_capital_short_banking_system_supplies_less_credit():
    loose = _model(n=3_000, months=24)
    # a minimum above the ratio banks hold: lending stops until retained profit restores capital
    short = _model(n=3_000, months=24, banks__min_capital_ratio=0.18)
    first = slice(0, 6)
    assert (short.timeseries()["credit_granted"].iloc[first].sum()
            < 0.7 * loose.timeseries()["credit_granted"].iloc[first].sum())


def test_nondeposit_lenders_keep_their_equity_and_lend_it():
    model = SMEEconomy(n_smes=3_000, rng=7, simulation__mesa_agents=False)
    banks = model.banks
    nondeposit = banks.kind == NONDEPOSIT_LENDER
    start = banks.equity[nondeposit].copy()
    model.run(48)
    ts = model.timeseries()
    # they pay out profit, not their capital (which a bank's excess-capital payout would take)
    assert (banks.equity[nondeposit] >= 0.8 * start).all()
    assert ts["credit_granted_nondeposit"].iloc[-12:].sum() > 0
    assert ts["nondeposit_loan_share"].iloc[-1] > 0.01
