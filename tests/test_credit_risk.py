"""Issue 14: default, loss given default, the workout of defaulted loans, the guarantee
contract's loss split, guarantors' limits and risk-based fees, banks' learning of credit
risk and the resolution of insolvent banks. Each test fails if its mechanism is removed."""

from __future__ import annotations

import numpy as np
import pytest

from sme_abm import SMEEconomy, sectors
from sme_abm.accounting import check_identities
from sme_abm.agents.bank import NONDEPOSIT_LENDER
from sme_abm.demography import DEFAULT_CAUSES, exit_firms, severance_owed
from sme_abm.markets import credit
from sme_abm.markets.credit import default_log_odds, guarantee_fees, sigmoid

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
    severance = float(severance_owed(model, np.array([row]))[0])
    assert severance > 0
    free_cash = max(cash - severance, 0.0)  # the workers' severance ranks before the lender on cash
    unpaid = debt - min(free_cash, debt)
    writeoffs, npl, foreclosed = banks.writeoffs[bank], banks.npl[bank], banks.foreclosed[bank]
    stats = _exit_month(model)
    # but the collateral is the lender's; the proceedings cost a share of it, so the lender
    # seizes enough to cover the exposure net of that cost, if the capital allows
    keep = 1.0 - model.config.banks.insolvency_cost_share
    recovered = keep * min(price * capital, unpaid / keep)
    assert stats["defaults_cashflow"] == 1 == stats["exits_default"]
    loss = banks.writeoffs[bank] - writeoffs  # unguaranteed: the bank bears all of it
    assert loss == pytest.approx(unpaid - recovered, abs=1e-9 + 1e-9 * debt)
    assert banks.npl[bank] - npl == pytest.approx(unpaid, rel=1e-9)
    assert banks.foreclosed[bank] - foreclosed == pytest.approx(recovered, rel=1e-9)
    if price == 1.0 and keep * capital >= unpaid:
        assert loss == pytest.approx(0.0, abs=1e-12)
    if price == 0.2:
        assert loss > (1.0 - keep) * price * capital  # the proceedings' cost adds to the loss
    assert check_identities(model) < 1e-6


def test_seized_collateral_is_sold_over_the_recovery_period_and_npl_runs_off():
    model = _model(levers__p01_legal_system__recovery_months=10.0)
    banks = model.banks
    banks.npl[0], banks.foreclosed[0] = 10.0, 4.0  # a workout book, as after a default
    reserves = banks.cash[0]
    books = banks.foreclosed.sum()  # every bank's, bank 0's included
    model.ledger.open_step()
    model.step_stats = {}
    banks.work_out_defaults(model)
    share = 1.0 / model.policy.p01_legal_system.recovery_months  # 1/10 once lever 24 has phased it in
    assert 1 / 30 < share <= 1 / 10
    assert banks.foreclosed[0] == pytest.approx(4.0 * (1 - share)) and banks.npl[0] == pytest.approx(10.0 * (1 - share))
    # large firms pay the collateral's liquidation value; the bank keeps the carrying value and
    # pays the proceedings' cost (Doing Business: 22% of the estate) to households
    assert banks.cash[0] - reserves == pytest.approx(4.0 * share)
    cost = model.config.banks.insolvency_cost_share
    fees = model.ledger.flow_table[("insolvency_fees", "banks", "households")]
    assert cost == 0.22 and fees == pytest.approx(books * share * cost / (1.0 - cost))
    assert model.ledger.flow_table[("collateral_sales", "large_firms", "banks")] == pytest.approx(books * share + fees)
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
    # the scoring model's set-up level over-predicts the defaults the economy produces: banks
    # shift its level down until the two agree. The shipped baseline, after its burn-in (from the
    # hand-drawn set-up the default rate falls for years as the population settles, and a
    # learnt average lags it)
    model = SMEEconomy("configs/baseline.toml", n_smes=3_000, rng=6, simulation__mesa_agents=False).run(120)
    assert model.pd_shift < -0.3
    risk = model.credit_risk
    borrowers = model.smes.debt > 0
    unlearnt = float(np.mean(sigmoid(default_log_odds(model)[borrowers] - model.pd_shift)))
    assert unlearnt > 1.5 * risk["realised"]
    # learning closes most of the gap
    assert abs(np.log(risk["predicted"] / risk["realised"])) < 0.4 * np.log(2.0)
    assert model.loss_given_default() == pytest.approx(risk["loss"] / risk["exposure"])


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


def test_nondeposit_lenders_that_can_borrow_keep_lending_and_those_that_cannot_stop():
    """With a funding instrument, non-deposit lenders fund their clients' loans beyond their
    equity by borrowing from a bank, and what they owe stays within their limit at every
    month's end; without one (netted) they stop once their set-up book has run off."""
    netted = SMEEconomy(n_smes=3_000, rng=7, simulation__mesa_agents=False, **QUIET,
                        banks__nondeposit_funding="netted").run(72)
    borrowing = SMEEconomy(n_smes=3_000, rng=7, simulation__mesa_agents=False, **QUIET,
                           banks__nondeposit_funding="borrowing")
    banks = borrowing.banks
    nondeposit = banks.kind == NONDEPOSIT_LENDER
    owed_to_equity = []
    for _ in range(72):
        borrowing.step()
        owed_to_equity.append(np.max(banks.bank_borrowing[nondeposit] / banks.equity[nondeposit]))
    granted = {name: model.timeseries()["credit_granted_nondeposit"].iloc[24:].sum()
               for name, model in {"netted": netted, "borrowing": borrowing}.items()}
    assert granted["borrowing"] > 3.0 * granted["netted"] > 0
    assert borrowing.timeseries()["nondeposit_bank_borrowing"].max() > 0
    assert (banks.cash[nondeposit] >= 0).all()
    # The limit binds what a lender decides (new loans, facilities its clients bring,
    # dividends); a month's interest, re-lending repayments and loan losses can take it past,
    # and then it lends nothing until its repayments bring it back. 5% covers those: the
    # largest ratio over these 72 months is 0.85-0.89 at seeds 7-9 (1.31, 2.96 and 2.69
    # before the facilities and dividends were held to the limit).
    assert max(owed_to_equity) <= 1.05 * borrowing.config.banks.nondeposit_borrowing_limit


def test_a_nondeposit_lenders_borrowing_costs_interest_and_its_limit_caps_new_lending():
    model = SMEEconomy(n_smes=1_000, rng=3, simulation__mesa_agents=False, banks__nondeposit_funding="borrowing",
                       **QUIET).run(2)
    banks = model.banks
    row = int(np.flatnonzero(banks.kind == NONDEPOSIT_LENDER)[0])
    home = int(banks.deposit_home[row])
    limit = model.config.banks.nondeposit_borrowing_limit
    model.ledger.open_step()
    model.step_stats = {}
    client = np.flatnonzero(model.smes.bank == row)[:1]
    rate = np.array([0.05])
    # a lender that lent more than its cash draws the gap from its home bank at the month's end
    banks.bank_borrowing[row] = 0.0
    gap = 0.5 * limit * banks.equity[row]
    banks.lend(model, client, np.array([banks.cash[row] + gap]), rate)
    equity_before = banks.equity.copy()
    banks.fund_nondeposit_lenders(model)
    assert banks.bank_borrowing[row] == pytest.approx(gap)
    assert banks.cash[row] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(banks.equity, equity_before, rtol=0, atol=1e-9)  # a loan between banks
    # its funding headroom is what the limit leaves; lending all of it leaves none
    headroom = banks.funding_headroom()[row]
    assert headroom == pytest.approx(limit * banks.equity[row] - banks.bank_borrowing[row])
    assert headroom > 0
    banks.lend(model, client, np.array([headroom]), rate)
    banks.fund_nondeposit_lenders(model)
    assert banks.bank_borrowing[row] == pytest.approx(limit * banks.equity[row])
    assert banks.funding_headroom()[row] == pytest.approx(0.0, abs=1e-9)
    # a month's interest at the base rate plus the markup moves from the lender to its bank
    owed = banks.bank_borrowing[row]
    rate = (model.sme_base_rate + model.config.banks.markup) / 12.0
    cash, home_cash = banks.cash[row], banks.cash[home]
    banks.pay_borrowing_interest(model)
    assert cash - banks.cash[row] == pytest.approx(rate * owed)
    assert banks.cash[home] - home_cash == pytest.approx(rate * owed)


def test_a_nondeposit_lender_at_its_limit_lends_nothing_takes_no_facility_and_pays_no_dividend(monkeypatch):
    """Held at its borrowing limit, a non-deposit lender's headroom counts the cash it has
    already lent this month, a client moving in keeps its facility at its old lender, and the
    month's profit stays in the lender instead of being paid out of borrowed money."""
    model = SMEEconomy(n_smes=1_000, rng=3, simulation__mesa_agents=False, banks__nondeposit_funding="borrowing",
                       **QUIET).run(2)
    banks, smes = model.banks, model.smes
    row = int(np.flatnonzero(banks.kind == NONDEPOSIT_LENDER)[0])
    model.ledger.open_step()
    model.step_stats = {}
    client = np.flatnonzero(smes.bank == row)[:1]
    # lend all the limit allows within the month: its cash goes negative, to be borrowed at the month's end
    banks.lend(model, client, np.array([banks.nondeposit_borrowing_room()[row]]), np.array([0.05]))
    assert banks.cash[row] < 0
    assert banks.funding_headroom()[row] == pytest.approx(0.0, abs=1e-9)
    # every firm moves to it: those without debt move, those with a facility stay
    model.config = model.config.model_copy(
        update={"banks": model.config.banks.model_copy(update={"bank_switch_rate": 1.0})})
    monkeypatch.setattr(credit, "choose_other_lenders", lambda weights, current, draws: np.full_like(current, row))
    elsewhere = smes.bank != row
    indebted, debt_free = elsewhere & (smes.debt > 0), elsewhere & (smes.debt == 0)
    assert indebted.any() and debt_free.any()
    loans = banks.loans[row]
    credit.close_episodes(model, np.empty(0, dtype=np.int64), np.empty(0, dtype=bool), np.ones(banks.size))
    assert (smes.bank[debt_free] == row).all()
    assert (smes.bank[indebted] != row).all()
    assert banks.loans[row] == pytest.approx(loans)
    # a profitable month: it pays the interest on its borrowing and no dividend
    banks.income[row] += 0.5
    interest = (model.sme_base_rate + model.config.banks.markup) / 12.0 * banks.bank_borrowing[row]
    cash = banks.cash[row]
    sectors.settle_banks(model)
    assert banks.cash[row] == pytest.approx(cash - interest)
    banks.fund_nondeposit_lenders(model)
    assert banks.bank_borrowing[row] <= model.config.banks.nondeposit_borrowing_limit * banks.equity[row] + 1e-9


def _only_closer(model: SMEEconomy, row: int) -> None:
    """Make firm ``row`` the only one to close this month (nine loss months), none default."""
    smes = model.smes
    smes.overdraft_months[:] = 0
    smes.loss_months[:] = 0
    smes.loss_months[row] = model.config.economy.loss_months_to_exit


@pytest.mark.parametrize("covered", [True, False])
def test_a_closure_whose_liquidation_value_does_not_cover_the_debt_is_a_default(covered):
    """Limited liability: owners hand a firm worth less than its debt in liquidation to the
    lender (a default, cause ``closure``); a firm worth more closes and repays in full."""
    model = _model()
    smes, banks = model.smes, model.banks
    row = _indebted_firm(model)
    _only_closer(model, row)
    severance = float(severance_owed(model, np.array([row]))[0])
    cash = _cash_at_default(model, row)
    estate = _cash_at_default(model, row) + model.policy.p01_legal_system.loan_recovery_rate * smes.capital[row]
    assert 0 < severance < estate
    # the debt below what the owners would get after paying the workers, or above the whole estate
    smes.debt[row] = 0.8 * (estate - severance) if covered else 1.5 * estate
    writeoffs = banks.writeoffs.sum()
    stats = _exit_month(model)
    if covered:
        assert stats["exits_voluntary"] == 1 and stats["exits_default"] == 0 and stats["defaults_closure"] == 0
        assert banks.writeoffs.sum() == writeoffs
    else:
        assert stats["exits_default"] == 1 == stats["defaults_closure"] and stats["exits_voluntary"] == 0
        assert banks.writeoffs.sum() > writeoffs
    # in a default the workers rank first on cash but not on the lender's collateral
    paid = severance if covered else min(severance, cash)
    assert stats["severance"] == pytest.approx(paid, rel=1e-9)


def test_severance_is_a_month_of_wage_per_year_of_service_and_goes_to_households():
    model = _model()
    smes = model.smes
    rows = np.arange(20)
    smes.age[rows] = np.arange(20) * 6  # 0 to 9.5 years: tenure capped at mean_job_tenure_years
    tenure = np.minimum(smes.age[rows] / 12.0, model.config.economy.mean_job_tenure_years)
    expected = model.wage * smes.employment[rows] * tenure
    assert np.allclose(severance_owed(model, rows), expected)
    per_worker = severance_owed(model, rows) / smes.employment[rows]
    assert per_worker[0] == 0.0  # an entrant's workers have no service yet
    assert np.allclose(per_worker[8:], model.wage * model.config.economy.mean_job_tenure_years)  # 4 years and older
    none = _model(economy__severance_months_per_year=0.0)
    assert np.all(severance_owed(none, rows) == 0.0)
    # paid on closure, and the books still balance
    smes.age[:] = np.maximum(smes.age, 36)
    everyone = np.arange(smes.size)
    value = (smes.cash + model.policy.p01_legal_system.receivable_recovery_rate * smes.receivables
             + model.policy.p01_legal_system.loan_recovery_rate * smes.capital - severance_owed(model, everyone))
    row = int(np.flatnonzero(value > 2.0 * smes.debt)[0])  # a firm its liquidation pays for in full
    _only_closer(model, row)
    owed = float(severance_owed(model, np.array([row]))[0])
    stats = _exit_month(model)
    assert owed > 0 and stats["severance"] == pytest.approx(owed, rel=1e-9)
    assert check_identities(model) < 1e-6


def _loss_months_over_a_month(model: SMEEconomy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run one month; for the firms that stayed: loss months before and after, and profit."""
    smes = model.smes
    row_of = {fid: row for row, fid in enumerate(smes.firm_id.tolist())}
    before = smes.loss_months.astype(np.int64)
    model.step()
    stayed = np.flatnonzero(np.isin(smes.firm_id, list(row_of)))
    prior = before[[row_of[fid] for fid in smes.firm_id[stayed].tolist()]]
    return prior, smes.loss_months[stayed].astype(np.int64), smes.profit[stayed]


def test_a_month_counts_towards_closure_when_profit_falls_short_of_the_owners_wage():
    """The owner's outside option (Lucas 1978): a month with profit below
    ``owner_outside_wages`` wages counts towards closure even if the firm made a profit;
    with the outside option at 0 only accounting losses count. Without a customer gap, so the
    month judged is the month's profit (the gap's term is tested in test_firm_dynamics), and
    with owners who count the month's accounting costs (the option that sets the costs they are
    shedding aside has its own test there)."""
    model = _model(months=3, economy__customer_gap_at_entry=0.0, economy__owner_sees_costs_adjust=False)
    prior, after, profit = _loss_months_over_a_month(model)
    short = profit < model.config.economy.owner_outside_wages * model.wage
    assert np.array_equal(after[short], prior[short] + 1) and np.all(after[~short] == 0)
    assert (short & (profit > 0)).sum() > 10  # firms an accounting test would not count
    accounting = _model(months=3, economy__owner_outside_wages=0.0, economy__customer_gap_at_entry=0.0,
                        economy__owner_sees_costs_adjust=False)
    prior, after, profit = _loss_months_over_a_month(accounting)
    assert np.array_equal(after[profit < 0], prior[profit < 0] + 1) and np.all(after[profit >= 0] == 0)


def test_entrants_borrow_part_of_their_start_up_cost_at_a_risk_price():
    # owners who can always advance what the bank refuses: every refused entrant starts
    model = _model(months=2, economy__entry_wealth_constraint=False)
    smes = model.smes
    first_new = smes.firm_id.max() + 1
    model.step()
    new = smes.firm_id >= first_new
    assert new.sum() > 0
    share = model.config.economy.entrant_debt_share
    start_up = smes.capital[new] + 2.0 * model.initial_monthly_costs(np.flatnonzero(new))
    # debt at the month's end: the start-up loan, less nothing repaid yet (it is booked after
    # production), for those the bank's screen admits; the owners fund the refused alone, and
    # those have never borrowed (demography.screen_startup_loans)
    refused = model.step_stats["startup_loans_refused"]
    granted = smes.has_borrowed[new]
    assert np.count_nonzero(~granted) == refused
    assert np.allclose(smes.debt[new][granted], share * start_up[granted], rtol=0.02)
    assert np.all(smes.debt[new][~granted] == 0.0)
    assert np.all(smes.loan_rate[new][granted] > model.sme_base_rate)
    none = _model(months=2, economy__entrant_debt_share=0.0)
    first_new = none.smes.firm_id.max() + 1
    none.step()
    assert np.all(none.smes.debt[none.smes.firm_id >= first_new] == 0.0)


def test_defaults_come_from_balance_sheets_and_young_leverage_drives_them():
    """Issue 14: defaults by cause on the baseline (the scoring stand-in retired); most are
    cash-flow failures or closures below the debt, the exogenous hazard is a small part, and
    without start-up debt the economic defaults nearly vanish."""
    ts = SMEEconomy(n_smes=4_000, rng=2, simulation__mesa_agents=False).run(96).timeseries().iloc[36:]
    causes = ts[[f"defaults_{cause}" for cause in DEFAULT_CAUSES]].sum()
    assert causes["defaults_score"] == 0
    economic = causes["defaults_cashflow"] + causes["defaults_equity"] + causes["defaults_closure"]
    assert economic > 0.7 * causes.sum()
    unlevered = SMEEconomy(n_smes=4_000, rng=2, simulation__mesa_agents=False,
                           economy__entrant_debt_share=0.0).run(96).timeseries().iloc[36:]
    economic_unlevered = unlevered[["defaults_cashflow", "defaults_equity", "defaults_closure"]].sum().sum()
    assert economic_unlevered < 0.3 * economic


def _entry_months(months: int = 24, **overrides) -> "pd.DataFrame":
    """Entries from the set-up (no burn-in), without start-up grants, so an owner who can
    advance the whole start-up cost is exactly one whose wealth is at least that cost."""
    return SMEEconomy(n_smes=3_000, rng=5, simulation__mesa_agents=False, simulation__burn_in_months=0,
                      levers__p14_entrepreneurship__startup_grant=0.0,
                      **{**QUIET, **overrides}).run(months).timeseries()


def test_an_entrant_whose_owners_cannot_fund_it_does_not_start(monkeypatch):
    """Liquidity-constrained entry (Evans and Jovanovic 1989): with every owner's wealth worth
    0.75 of the start-up cost, an entrant the bank lends half of it starts (the owners' part is
    at most half) and one it refuses does not (the owners would need all of it): every refused
    start-up loan is a start-up called off, and none is called off otherwise. With owners worth
    almost nothing no one starts; the money of called-off start-ups goes back (the identities
    are checked every month)."""
    ts = _entry_months(economy__entrant_owner_wealth=0.75, economy__entrant_owner_wealth_dispersion=0.0)
    assert ts["startup_loans_refused"].sum() > 20
    assert ts["entries_unfunded"].tolist() == ts["startup_loans_refused"].tolist()
    assert ts["entries"].sum() > 50
    # owners who cannot pay even their part do not apply, so they take none of the lenders'
    # headroom (demography.screen_startup_loans sees no one)
    from sme_abm import demography
    screened = []
    real_screen = demography.screen_startup_loans
    monkeypatch.setattr(demography, "screen_startup_loans",
                        lambda model, rows, *args: screened.append(rows.size) or real_screen(model, rows, *args))
    poor = _entry_months(economy__entrant_owner_wealth=0.01, economy__entrant_owner_wealth_dispersion=0.0)
    assert poor["entries"].sum() == 0 and poor["entries_unfunded"].sum() > 100
    assert sum(screened) == 0 and len(screened) > 0
    free = _entry_months(economy__entry_wealth_constraint=False)
    assert free["entries_unfunded"].sum() == 0 and free["startup_loans_refused"].sum() > 20


def test_first_loan_collateral_relief_lets_liquidity_constrained_entrants_start():
    """Lever 10 acts at entry through the owners' wealth: without the relief the bank refuses
    every start-up loan on collateral, so an entrant starts only if its owners can advance the
    whole start-up cost (a lognormal ratio with median 2 and dispersion 1.56: about a third
    cannot); with it most entrants borrow half, and mainly owners worth less than their half
    are short. Without the wealth constraint the relief changes who finances entry,
    not how many enter."""
    unfunded, entries = {}, {}
    for relief in (0.5, 0.0):
        ts = _entry_months(levers__p10_multilevel_finance__first_loan_collateral_relief=relief)
        unfunded[relief] = ts["entries_unfunded"].sum() / (ts["entries"].sum() + ts["entries_unfunded"].sum())
        entries[relief] = ts["entries"].sum()
    # P(ratio < 1) = 0.33; P(ratio < 1/2) = 0.19 plus the refused (about 30% from the set-up)
    # whose owners hold between a half and the whole (0.14 of them): 0.23. Measured at seeds
    # 5-7: 0.21-0.24 and 0.30-0.35, entries 9-15% more with the relief
    assert 0.15 < unfunded[0.5] < 0.30 and 0.27 < unfunded[0.0] < 0.40
    assert unfunded[0.0] > unfunded[0.5] + 0.05 and entries[0.5] > entries[0.0]
    free = {relief: _entry_months(1, economy__entry_wealth_constraint=False,
                                  levers__p10_multilevel_finance__first_loan_collateral_relief=relief)
            for relief in (0.5, 0.0)}
    assert free[0.5]["entries"].sum() == free[0.0]["entries"].sum() > 0
