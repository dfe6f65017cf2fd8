"""Default, exit and entry of SMEs (phase 7).

Exits are resolved for all leaving firms at once: receivables are collected
(in part), capital is sold, debt is repaid from the proceeds, and what is left
unpaid is a loss shared by the lending bank and, for guaranteed debt, the
guarantor, the re-guarantee fund and the local government by the risk-sharing
split of lever 13. Then the arrays are compacted and the Mesa agents of the
leavers are removed; entrants are appended with new agents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .kernels import bincount_sums, njit
from .markets.capital import book_equity, pay_outside_owners
from .markets.credit import (collateral_value, default_log_odds, default_probability_limit, licensed_capital_headroom,
                             loan_rate, pledgeable_value, ration, sigmoid)
from .agents.administration import open_cases
from .agents.government import pilot_control
from .agents.guarantor import guarantee_split
from .agents.sme import unit_variable_cost
from .markets.goods import settle_receivables

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy

DEFAULT, VOLUNTARY, LISTING = "default", "voluntary", "listing"
EXIT_REASONS = (DEFAULT, VOLUNTARY, LISTING)
EXIT_CODES = {reason: code for code, reason in enumerate(EXIT_REASONS)}
#: Causes of default (counted per month in the time series as ``defaults_<cause>``).
DEFAULT_CAUSES = ("cashflow", "equity", "closure", "score", "exogenous")
OVERDRAFT_MONTHS_TO_DEFAULT = 3  # 90 days past due: the Basel and CBIRC definition of default


def exit_firms(model: "SMEEconomy", listing_candidates: np.ndarray) -> None:
    """Resolve defaults, voluntary exits and listings; remove the leavers.

    ``listing_candidates`` are the firms that would list this month (from
    :func:`sme_abm.markets.capital.provide_direct_finance`); a defaulting firm does not.
    Before the leavers go, the banks update their estimates of default rates and loss
    given default from what they observe (:func:`learn_credit_risk`).
    """
    smes, rng = model.smes, model.rng
    n = smes.size
    default, voluntary, listing, leaving = (np.empty(n, dtype=bool) for _ in range(4))
    causes = np.zeros(len(DEFAULT_CAUSES), dtype=np.int64)
    econ = model.config.economy
    # the stand-in hazard reads the scoring model without the level banks have learnt
    log_odds = default_log_odds(model)
    hazard = sigmoid(log_odds - model.pd_shift)
    hazard *= econ.score_default_scale / 12.0
    n_default, n_voluntary, n_listing = _exit_kernel(
        smes.cash, smes.capital, smes.receivables, smes.debt, pledgeable_value(model), smes.overdraft_months,
        smes.loss_months, smes.trained, rng.random(n), listing_candidates, int(econ.loss_months_to_exit),
        float(econ.exogenous_default_rate / 12.0), hazard, default, voluntary, listing, leaving, causes)
    model.step_stats.update(exits_default=n_default, exits_voluntary=n_voluntary, exits_listing=n_listing)
    for cause, count in zip(DEFAULT_CAUSES, causes):
        model.step_stats[f"defaults_{cause}"] = int(count)
    n_short = _hand_over_insolvent_closures(model, default, voluntary)
    n_default, n_voluntary = n_default + n_short, n_voluntary - n_short
    model.step_stats.update(exits_default=n_default, exits_voluntary=n_voluntary, defaults_closure=n_short)
    defaulted = np.flatnonzero(default)
    learn_credit_risk(model, defaulted, log_odds)
    if n_default + n_voluntary + n_listing == 0:
        model.record_exits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
        return

    _liquidate(model, defaulted, capital_price=model.policy.p01_legal_system.loan_recovery_rate,
               receivable_recovery=model.policy.p01_legal_system.receivable_recovery_rate, foreclose=True)
    _liquidate(model, np.flatnonzero(voluntary), capital_price=model.policy.p01_legal_system.loan_recovery_rate,
               receivable_recovery=model.policy.p01_legal_system.receivable_recovery_rate, foreclose=False)
    _list_firms(model, np.flatnonzero(listing))

    rows = np.flatnonzero(leaving)
    # codes into EXIT_REASONS: one byte per exit instead of a string
    reasons = np.where(default[rows], EXIT_CODES[DEFAULT],
                       np.where(listing[rows], EXIT_CODES[LISTING], EXIT_CODES[VOLUNTARY])).astype(np.int8)
    model.record_exits(rows, reasons)
    model.remove_smes(leaving)


@njit
def _exit_kernel(cash, capital, receivables, debt, capacity, overdraft_months, loss_months, trained, draws,
                 listing_candidates, loss_months_to_exit, exogenous_hazard, score_hazard, default, voluntary,
                 listing, leaving, causes):  # pragma: no cover - compiled
    """Who defaults, closes or lists this month, in one pass; counts each, and each
    cause of default (``causes``, in :data:`DEFAULT_CAUSES` order, the first that applies).

    A firm defaults (Section 7.10 of docs/model.md):

    * for cash-flow insolvency: it is in overdraft and its debt exceeds what its collateral
      can carry, so no credit is left to meet its payments, or it has been in overdraft
      for ``OVERDRAFT_MONTHS_TO_DEFAULT`` months running (90 days past due);
    * for balance-sheet insolvency: its book equity ``cash + capital + receivables - debt``
      is negative;
    * by the stand-in hazard ``score_hazard`` (the scoring model's monthly default
      probability times ``economy.score_default_scale``; 0.7 times that for trained
      firms): defaults the model's balance sheets do not yet explain;
    * rarely, for reasons outside its accounts (``exogenous_hazard`` a month).

    Then ``listing = listing_candidates & ~default``;
    ``voluntary = ~default & ~listing & (loss_months >= loss_months_to_exit)``.
    """
    n_default, n_voluntary, n_listing = 0, 0, 0
    for i in range(cash.size):
        equity = cash[i] + capital[i] + receivables[i] - debt[i]
        overdrawn = overdraft_months[i] > 0
        cashflow = (overdrawn & (debt[i] > capacity[i])) | (overdraft_months[i] >= OVERDRAFT_MONTHS_TO_DEFAULT)
        negative = equity < 0
        u = draws[i]
        scored = u < score_hazard[i] * (0.7 if trained[i] else 1.0)
        exogenous = (not scored) & (u >= 1.0 - exogenous_hazard)
        d = cashflow | negative | scored | exogenous
        if cashflow:
            causes[0] += 1
        elif negative:
            causes[1] += 1
        elif scored:
            causes[3] += 1
        elif exogenous:
            causes[4] += 1
        lists = listing_candidates[i] & (not d)
        closes = (not d) & (not lists) & (loss_months[i] >= loss_months_to_exit)
        default[i] = d
        listing[i] = lists
        voluntary[i] = closes
        leaving[i] = d | closes | lists
        n_default += 1 if d else 0
        n_listing += 1 if lists else 0
        n_voluntary += 1 if closes else 0
    return n_default, n_voluntary, n_listing


def severance_owed(model: "SMEEconomy", rows: np.ndarray) -> np.ndarray:
    """Severance a closing firm owes its workers: ``severance_months_per_year`` months of
    wage per year of service, the service being ``mean_job_tenure_years`` or the firm's
    age if it is younger (Labor Contract Law, arts. 46-47)."""
    econ, smes = model.config.economy, model.smes
    tenure = np.minimum(smes.age[rows] / 12.0, econ.mean_job_tenure_years)
    return model.wage * smes.employment[rows] * econ.severance_months_per_year * tenure


def _hand_over_insolvent_closures(model: "SMEEconomy", default: np.ndarray, voluntary: np.ndarray) -> int:
    """Owners with limited liability who decide to close a firm whose liquidation value
    does not cover its debt hand it to the lender: the closure is a default.

    Liquidation value: cash, receivables at ``p01.receivable_recovery_rate`` and capital
    at lever 1's liquidation price (``p01.loan_recovery_rate`` of book), less the severance owed to the workers
    (:func:`severance_owed`). Returns how many closures became defaults.
    """
    closing = np.flatnonzero(voluntary)
    if closing.size == 0:
        return 0
    smes = model.smes
    value = (np.maximum(smes.cash[closing], 0.0)
             + model.policy.p01_legal_system.receivable_recovery_rate * smes.receivables[closing]
             + model.policy.p01_legal_system.loan_recovery_rate * smes.capital[closing]
             - severance_owed(model, closing))
    short = closing[value < smes.debt[closing]]
    default[short] = True
    voluntary[short] = False
    return int(short.size)


def learn_credit_risk(model: "SMEEconomy", defaulted: np.ndarray, log_odds: np.ndarray) -> None:
    """Banks re-calibrate their scoring model (``log_odds``, :func:`default_log_odds` this
    month) to the default rate they observe.

    Basel's internal-ratings rules require a bank's PD estimates to match long-run
    realised default rates (BCBS 2006, paras 447-451), and its LGD estimates the losses it
    realises (para 468). Banks here keep exponentially weighted averages (memory
    ``banks.risk_learning_months``) of the annual default rate their scoring model predicts
    for their borrowers and of the rate realised, and move a common log-odds shift
    (``model.pd_shift``) by the gap, so the model's level follows experience while its
    ranking (leverage, margin, liquidity, productivity) is unchanged. The loss given default
    they price is the exposure-weighted average of realised losses (updated in
    :func:`_liquidate`).
    """
    smes = model.smes
    borrowers = smes.debt > 0
    n_borrowers = int(np.count_nonzero(borrowers))
    if n_borrowers == 0:
        return
    weight = 1.0 / model.config.banks.risk_learning_months
    predicted = float(np.mean(sigmoid(log_odds[borrowers])))
    realised = 12.0 * np.count_nonzero(borrowers[defaulted]) / n_borrowers
    risk = model.credit_risk
    if np.isnan(risk["predicted"]):  # the first month: experience starts where the model stands
        risk["predicted"] = risk["realised"] = predicted
    risk["predicted"] += weight * (predicted - risk["predicted"])
    risk["realised"] += weight * (realised - risk["realised"])
    gap = _logit(risk["realised"]) - _logit(risk["predicted"])
    model.pd_shift += weight * gap
    model.step_stats["predicted_default_rate"] = predicted
    model.step_stats["realised_default_rate"] = realised


def _logit(rate: float) -> float:
    rate = min(max(rate, 1e-4), 0.5)
    return float(np.log(rate / (1.0 - rate)))


def _liquidate(model: "SMEEconomy", rows: np.ndarray, capital_price: float, receivable_recovery: float,
               foreclose: bool) -> None:
    """Close firms ``rows``: collect receivables, repay lenders, share the loss, pay owners the rest.

    A defaulted firm's (``foreclose``) lender seizes its capital, worth ``capital_price``
    of book in a fire sale, up to the exposure its cash does not repay grossed up for the
    proceedings' cost (``banks.insolvency_cost_share`` of the collateral); the claim, net of that cost, enters
    the lender's workout book (sold over ``p01.recovery_months``, :meth:`BankBook.work_out_defaults`)
    and the exposure not covered is written off now and shared by the guarantee contract.
    Capital beyond the lender's claim is sold at once, for the owners. A closing firm
    (not ``foreclose``) sells all its capital at once and repays in full if it can.
    """
    if rows.size == 0:
        return
    smes, ledger, banks = model.smes, model.ledger, model.banks
    receivables = smes.receivables[rows]
    settle_receivables(model, rows, receivables * receivable_recovery, receivables * (1 - receivable_recovery))
    debt = smes.debt[rows].copy()
    value = capital_price * smes.capital[rows]
    # workers' severance ranks first on the free assets (Enterprise Bankruptcy Law, art. 113),
    # but the secured lender keeps its collateral (art. 109): a defaulted firm pays it from
    # cash only; a closing firm also sells capital for it
    owed = severance_owed(model, rows)
    from_cash = np.minimum(owed, np.maximum(smes.cash[rows], 0.0))
    from_capital = np.zeros_like(owed) if foreclose else np.minimum(owed - from_cash, value)
    ledger.pay("capital_sales", "large_firms", "smes", from_capital, payee_rows=rows)
    ledger.pay("severance", "smes", "households", from_cash + from_capital, payer_rows=rows)
    model.step_stats["severance"] = model.step_stats.get("severance", 0.0) + float((from_cash + from_capital).sum())
    value = value - from_capital
    # the firm's cash repays first; the lender seizes capital for what cash leaves unpaid
    unpaid = debt - np.minimum(np.maximum(smes.cash[rows], 0.0), debt)
    # the proceedings cost a share of what the lender seizes, so it seizes enough to cover
    # the exposure net of them, when the capital allows
    keep = 1.0 - model.config.banks.insolvency_cost_share
    seized = np.minimum(value, unpaid / keep) if foreclose else np.zeros_like(value)
    recovered = keep * seized  # what the collateral brings the lender, net of the proceedings' cost
    ledger.pay("capital_sales", "large_firms", "smes", value - seized, payee_rows=rows)
    smes.capital[rows] = 0.0
    repaid = np.minimum(np.maximum(smes.cash[rows], 0.0), debt - recovered)
    ledger.pay("loan_recovery", "smes", "banks", repaid, payer_rows=rows, payee_rows=smes.bank[rows])
    loss = debt - repaid - recovered
    if foreclose:
        bank_rows = smes.bank[rows]
        banks.npl += bincount_sums(bank_rows, weights=debt - repaid, minlength=banks.size)
        banks.foreclosed += bincount_sums(bank_rows, weights=recovered, minlength=banks.size)
        _update_loss_given_default(model, float(debt.sum()), float(loss.sum()))
    _share_losses(model, rows, debt, loss)
    banks.reduce_debt(model, rows, debt)
    remainder = np.maximum(smes.cash[rows], 0.0)
    to_fund = pay_outside_owners(model, rows, remainder, "fund_liquidation_proceeds")
    ledger.pay("owner_liquidation_proceeds", "smes", "households", remainder - to_fund, payer_rows=rows)


def _update_loss_given_default(model: "SMEEconomy", exposure: float, loss: float) -> None:
    """Fold this month's defaults into the banks' exposure-weighted average loss given default."""
    weight = 1.0 / model.config.banks.risk_learning_months
    risk = model.credit_risk
    risk["exposure"] += weight * (exposure - risk["exposure"])
    risk["loss"] += weight * (loss - risk["loss"])
    model.step_stats["defaulted_exposure"] = exposure


def _share_losses(model: "SMEEconomy", rows: np.ndarray, debt: np.ndarray, loss: np.ndarray) -> None:
    """Split the loss on guaranteed debt by lever 13's risk-sharing contract ("4321").

    Of the loss on the guaranteed part, the bank bears ``bank_share``; the guarantor
    compensates the bank for the rest, and is itself reimbursed ``reguarantee_share``
    by the re-guarantee fund and ``government_share`` by the local government, so it
    bears the rest (:func:`guarantee_split`).
    """
    smes, ledger, guarantors, banks = model.smes, model.ledger, model.guarantors, model.banks
    g = guarantee_split(model)
    guaranteed_share = np.divide(smes.guaranteed[rows], debt, out=np.zeros_like(debt), where=debt > 0)
    guaranteed_loss = loss * np.minimum(guaranteed_share, 1.0)
    covered = guaranteed_loss > 0
    to_bank = guaranteed_loss * (1.0 - g.bank_share)
    guarantor_rows = smes.guarantor[rows][covered]
    bank_rows = smes.bank[rows][covered]
    ledger.pay("guarantee_claims", "guarantors", "banks", to_bank[covered], payer_rows=guarantor_rows, payee_rows=bank_rows)
    fund = np.array([guarantors.size - 1])
    reguarantee = guaranteed_loss[covered] * g.reguarantee_share
    ledger.pay("reguarantee_claims", "guarantors", "guarantors", reguarantee,
               payer_rows=np.repeat(fund, reguarantee.size), payee_rows=guarantor_rows)
    government_part = guaranteed_loss[covered] * g.government_share
    ledger.pay("government_guarantee_claims", "government", "guarantors", government_part, payee_rows=guarantor_rows)
    model.government.record_tax_expenditure("p13_financing_guarantee", float(government_part.sum()))
    guarantor_loss = to_bank[covered] - reguarantee - government_part
    guarantors.losses += bincount_sums(guarantor_rows, weights=guarantor_loss, minlength=guarantors.size)
    guarantors.losses[-1] += float(reguarantee.sum())
    bank_loss = loss - to_bank
    banks.writeoffs += bincount_sums(smes.bank[rows], weights=bank_loss, minlength=banks.size)
    for party, amount in (("bank", bank_loss.sum()), ("guarantor", guarantor_loss.sum()),
                          ("reguarantee_fund", reguarantee.sum()), ("government", government_part.sum())):
        model.step_stats[f"guarantee_loss_{party}"] = model.step_stats.get(f"guarantee_loss_{party}", 0.0) + float(amount)
    model.step_stats["loan_losses"] = model.step_stats.get("loan_losses", 0.0) + float(loss.sum())


def _list_firms(model: "SMEEconomy", rows: np.ndarray) -> None:
    """A listing firm raises equity, repays its loans and joins the large-firm sector; the
    SME development fund sells its stake (:func:`~sme_abm.markets.capital.pay_outside_owners`)."""
    if rows.size == 0:
        return
    smes, ledger, banks = model.smes, model.ledger, model.banks
    # the development fund sells its stake to households at the firm's book value before
    # the offering (new shares at book value leave the value of its stake unchanged)
    pay_outside_owners(model, rows, book_equity(model, rows), "fund_exit_proceeds", payer="households")
    receivables = smes.receivables[rows]
    settle_receivables(model, rows, receivables, np.zeros_like(receivables))
    debt = smes.debt[rows].copy()
    ipo = np.maximum(debt - smes.cash[rows], 0.0) + 0.5 * smes.capital[rows]
    ledger.pay("ipo_proceeds", "households", "smes", ipo, payee_rows=rows)
    ledger.pay("loan_repayment_at_listing", "smes", "banks", debt, payer_rows=rows, payee_rows=smes.bank[rows])
    banks.reduce_debt(model, rows, debt)
    ledger.pay("listed_firm_joins_large_firms", "smes", "large_firms", smes.cash[rows], payer_rows=rows)


def _book_startup_loans(model: "SMEEconomy", rows: np.ndarray, loan: np.ndarray,
                        owner_wealth: np.ndarray, owner_part: np.ndarray) -> np.ndarray:
    """Entrants ask their bank for ``economy.entrant_debt_share`` of their start-up cost.
    New firms rely heavily on outside debt, mostly bank loans (Robb and Robinson 2014, RFS
    27), so they carry the most leverage when they are youngest; but a bank screens a
    start-up loan as it screens any other (:func:`screen_startup_loans`). The owners advance
    what it refuses if their wealth allows (``owner_wealth``, beyond the ``owner_part`` they
    have advanced already); returns which entrants cannot be funded (Evans and Jovanovic
    1989, JPE 97): those whose owners could not advance even their own part are not screened.
    A firm refused at entry has never borrowed, so its first loan later gets lever 10's
    collateral relief."""
    smes = model.smes
    unfunded = owner_wealth < owner_part
    if not np.any(loan > 0):
        return unfunded
    noise = model.policy.p04_credit_information.signal_noise
    estimated_pd = sigmoid(default_log_odds(model, rows) + noise * model.rng.standard_normal(rows.size))
    # only the entrants whose owners can pay their part apply, so the others take none of the
    # lenders' headroom
    applying = np.flatnonzero(~unfunded & (loan > 0))
    granted = np.zeros(rows.size, dtype=bool)
    granted[applying] = screen_startup_loans(model, rows[applying], loan[applying], estimated_pd[applying])
    refused = ~granted & ~unfunded & (loan > 0)
    model.step_stats["startup_loans_refused"] = int(np.count_nonzero(refused))
    unfunded |= refused & (owner_wealth < owner_part + loan)
    advanced = refused & ~unfunded
    model.ledger.pay("owner_equity", "households", "smes", np.where(advanced, loan, 0.0), payee_rows=rows)
    lent = rows[granted]
    model.banks.lend(model, lent, loan[granted], loan_rate(model, smes.bank[lent], estimated_pd[granted]))
    smes.has_borrowed[lent] = True
    return unfunded


def _call_off_startups(model: "SMEEconomy", rows: np.ndarray) -> None:
    """Entrants ``rows`` that cannot be funded do not start: before they trade, the capital
    they bought goes back to its suppliers and the owners take back what they advanced."""
    smes, ledger = model.smes, model.ledger
    ledger.pay("entrant_capital_returned", "large_firms", "smes", smes.capital[rows], payee_rows=rows)
    smes.capital[rows] = 0.0
    ledger.pay("owner_equity_returned", "smes", "households", smes.cash[rows], payer_rows=rows)
    leaving = np.zeros(smes.size, dtype=bool)
    leaving[rows] = True
    model.remove_smes(leaving, with_agents=False)  # they never became agents


def screen_startup_loans(model: "SMEEconomy", rows: np.ndarray, loan: np.ndarray,
                         estimated_pd: np.ndarray) -> np.ndarray:
    """Which entrants ``rows`` their bank lends ``loan``: the bank's direct-lending test of
    the credit market (:func:`~sme_abm.markets.credit._screen_kernel`), an estimated default
    probability within its limit and a loan within the firm's collateral, which for a firm
    that has never borrowed is relieved by lever 10 (``first_loan_collateral_relief``), and
    its rationing (:func:`~sme_abm.markets.credit.ration`) within the lender's capital and
    funding headroom.
    A firm without a record pledges what it has just bought; lenders ask it for collateral
    because they cannot read its risk (the NBS survey of 2,434 private firms, 2003: "there's
    no credit records since these private enterprises are small or just started up")."""
    smes, p, cfg, banks = model.smes, model.policy, model.config.banks, model.banks
    small_micro = smes.size_class[rows] <= 1
    limit = default_probability_limit(cfg.max_default_probability, p.p11_differentiated_supervision.npl_tolerance_bonus,
                                      small_micro.astype(np.float64), smes.little_giant[rows].astype(np.float64))
    admitted = (estimated_pd <= limit) & (loan <= collateral_value(model, rows))
    # and, as in the credit market, within the lender's capital (a non-deposit lender's as
    # lever 10 licenses it) and the funds it can raise, the safest entrants first
    candidates = np.flatnonzero(admitted)
    lender, risk, amount = smes.bank[rows[candidates]], estimated_pd[candidates], loan[candidates]
    weight = np.where(small_micro[candidates], p.p11_differentiated_supervision.small_micro_risk_weight, 1.0)
    fits = (ration(lender, risk, amount * weight, licensed_capital_headroom(model))
            & ration(lender, risk, amount, banks.funding_headroom()))
    admitted[candidates] = fits
    return admitted


def expected_entrant_profit(model: "SMEEconomy", values: dict[str, np.ndarray]) -> np.ndarray:
    """The monthly profit would-be entrants ``values`` (drawn by ``draw_firms``) expect once
    their customers are won: their sales times ``exp`` of their customer gap, at the gross
    margin (price less unit variable cost, compliance time included) their productivity gives
    at their sector's price, less the overhead, the SG&A those sales carry (``sga_share``, 7.4a)
    and their capital's depreciation. Without ex-ante heterogeneity every gap is
    ``customer_gap_at_entry``, taken in double precision as it always was."""
    econ = model.config.economy
    unit_cost = unit_variable_cost(model, values["sector"], values["productivity"])
    gap = values["customer_gap"].astype(np.float64) if econ.customer_gap_dispersion > 0 else econ.customer_gap_at_entry
    sales = values["sales"] * np.exp(gap)
    margin = sales * (1.0 - unit_cost / values["price"])
    return margin - model.overhead_cost() - econ.sga_share * sales - econ.depreciation_rate / 12.0 * values["capital"]


def enter_firms(model: "SMEEconomy") -> None:
    """New firms: would-be entrants (lever 14) not deterred by barriers (lever 2)."""
    p, rng, econ = model.policy, model.rng, model.config.economy
    expected = econ.entry_rate * model.initial_smes * (1.0 + p.p14_entrepreneurship.entry_rate_boost)
    would_be = rng.poisson(expected)
    count = int(rng.binomial(would_be, 1.0 - p.p02_fair_competition.entry_barrier))
    values = model.draw_firms(count, revenue_scale=econ.entrant_revenue, entrant=True) if count else {}
    if count and econ.entry_decision:
        enters = expected_entrant_profit(model, values) >= econ.owner_outside_wages * model.wage
        values = {name: column[enters] for name, column in values.items()}
        model.step_stats["entries_declined"] = count - int(enters.sum())
        count = int(enters.sum())
    model.step_stats["entries"] = count
    if count == 0:
        return
    # an entrant becomes a Mesa agent once it starts: those its owners cannot fund never do
    rows = model.add_smes(values, count, with_agents=False)
    smes = model.smes
    startup = smes.capital[rows] + 2.0 * model.initial_monthly_costs(rows)
    # lever 25's pilot: entrants in the programme's control group get no start-up grant this period
    held = pilot_control(model, "p14_entrepreneurship")[rows]
    grant = np.where(held, 0.0, p.p14_entrepreneurship.startup_grant)
    # a start-up loan finances part of the start-up cost; the owners advance the rest, and the
    # grant is paid when the administration processes its case (lever 24): until then the
    # owners advance what it does not cover, and at least the capital the entrant buys now
    loan = econ.entrant_debt_share * startup
    owner_part = np.maximum(startup - grant, smes.capital[rows]) - loan
    if econ.entry_wealth_constraint:
        owner_wealth = startup * econ.entrant_owner_wealth * np.exp(
            econ.entrant_owner_wealth_dispersion * rng.standard_normal(count))
    else:
        owner_wealth = np.full(count, np.inf)
    # owners who cannot advance their part advance nothing, and the start-up is called off below
    model.ledger.pay("owner_equity", "households", "smes", np.where(owner_wealth >= owner_part, owner_part, 0.0),
                     payee_rows=rows)
    model.ledger.pay("entrant_capital", "smes", "large_firms", smes.capital[rows], payer_rows=rows)
    smes.costs[rows] = model.initial_monthly_costs(rows)
    unfunded = _book_startup_loans(model, rows, loan, owner_wealth, owner_part)
    served = ~held & ~unfunded
    # the grant is a case for the administration (lever 24): paid when processed
    open_cases(model, "startup_grants", grant[served], rows[served])
    model.step_stats["entries_unfunded"] = int(np.count_nonzero(unfunded))
    model.step_stats["entries"] = count - int(np.count_nonzero(unfunded))
    if np.any(unfunded):
        started = smes.firm_id[rows[~unfunded]]
        _call_off_startups(model, rows[unfunded])
        rows = smes.row_of_id[started]  # the call-off moves rows
    model.attach_sme_agents(rows)
