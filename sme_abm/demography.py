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
from .markets.credit import default_log_odds, sigmoid
from .agents.government import pilot_control
from .markets.goods import settle_receivables

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy

DEFAULT, VOLUNTARY, LISTING = "default", "voluntary", "listing"
EXIT_REASONS = (DEFAULT, VOLUNTARY, LISTING)
EXIT_CODES = {reason: code for code, reason in enumerate(EXIT_REASONS)}
VOLUNTARY_SALE_PRICE = 0.8  # share of book value a closing firm gets for its capital
OVERDRAFT_MONTHS_TO_DEFAULT = 3
SUDDEN_DEFAULT_SCALE = 1.0  # share of the annual default probability realised as sudden failure


def exit_firms(model: "SMEEconomy", listing_candidates: np.ndarray) -> None:
    """Resolve defaults, voluntary exits and listings; remove the leavers.

    ``listing_candidates`` are the firms that would list this month (from
    :func:`sme_abm.markets.capital.provide_direct_finance`); a defaulting firm does not.
    """
    smes, rng = model.smes, model.rng
    n = smes.size
    pd = sigmoid(default_log_odds(model))
    default, voluntary, listing, leaving = (np.empty(n, dtype=bool) for _ in range(4))
    n_default, n_voluntary, n_listing = _exit_kernel(
        smes.cash, smes.capital, smes.receivables, smes.debt, pd, smes.trained, smes.overdraft_months,
        smes.loss_months, rng.random(n), listing_candidates, int(model.config.economy.loss_months_to_exit),
        default, voluntary, listing, leaving)
    model.step_stats.update(exits_default=n_default, exits_voluntary=n_voluntary, exits_listing=n_listing)
    if n_default + n_voluntary + n_listing == 0:
        model.record_exits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
        return

    _liquidate(model, np.flatnonzero(default), capital_price=model.policy.p01_legal_system.loan_recovery_rate,
               receivable_recovery=model.policy.p01_legal_system.receivable_recovery_rate)
    _liquidate(model, np.flatnonzero(voluntary), capital_price=VOLUNTARY_SALE_PRICE,
               receivable_recovery=model.policy.p01_legal_system.receivable_recovery_rate)
    _list_firms(model, np.flatnonzero(listing))

    rows = np.flatnonzero(leaving)
    # codes into EXIT_REASONS: one byte per exit instead of a string
    reasons = np.where(default[rows], EXIT_CODES[DEFAULT],
                       np.where(listing[rows], EXIT_CODES[LISTING], EXIT_CODES[VOLUNTARY])).astype(np.int8)
    model.record_exits(rows, reasons)
    model.remove_smes(leaving)


@njit
def _exit_kernel(cash, capital, receivables, debt, pd, trained, overdraft_months, loss_months, draws,
                 listing_candidates, loss_months_to_exit, default, voluntary, listing,
                 leaving):  # pragma: no cover - compiled
    """Who defaults, closes or lists this month, and how many of each, in one pass.

    It replaces seven passes over the SMEs (the default test, four boolean masks
    and three ``sum`` of booleans, which numpy adds as integers, slowly); the numpy
    it replaced (see :mod:`sme_abm.kernels`)::

        equity = cash + capital + receivables - debt
        hazard = SUDDEN_DEFAULT_SCALE * pd / 12.0 * where(trained, 0.7, 1.0)
        default = (overdraft_months >= OVERDRAFT_MONTHS_TO_DEFAULT) | (equity < 0) | (draws < hazard)
        listing = listing_candidates & ~default
        voluntary = ~default & ~listing & (loss_months >= loss_months_to_exit)
        leaving = default | voluntary | listing
        counts = default.sum(), voluntary.sum(), listing.sum()
    """
    n_default, n_voluntary, n_listing = 0, 0, 0
    for i in range(cash.size):
        equity = cash[i] + capital[i] + receivables[i] - debt[i]
        hazard = SUDDEN_DEFAULT_SCALE * pd[i] / 12.0 * (0.7 if trained[i] else 1.0)
        d = (overdraft_months[i] >= OVERDRAFT_MONTHS_TO_DEFAULT) | (equity < 0) | (draws[i] < hazard)
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


def _liquidate(model: "SMEEconomy", rows: np.ndarray, capital_price: float, receivable_recovery: float) -> None:
    """Sell a closing firm's assets, repay its lenders, share the loss, pay owners the rest."""
    if rows.size == 0:
        return
    smes, ledger, banks = model.smes, model.ledger, model.banks
    receivables = smes.receivables[rows]
    settle_receivables(model, rows, receivables * receivable_recovery, receivables * (1 - receivable_recovery))
    proceeds = capital_price * smes.capital[rows]
    ledger.pay("capital_sales", "large_firms", "smes", proceeds, payee_rows=rows)
    smes.capital[rows] = 0.0

    debt = smes.debt[rows].copy()
    repaid = np.minimum(np.maximum(smes.cash[rows], 0.0), debt)
    ledger.pay("loan_recovery", "smes", "banks", repaid, payer_rows=rows, payee_rows=smes.bank[rows])
    loss = debt - repaid
    _share_losses(model, rows, debt, loss)
    banks.reduce_debt(model, rows, debt)
    ledger.pay("owner_liquidation_proceeds", "smes", "households", np.maximum(smes.cash[rows], 0.0), payer_rows=rows)


def _share_losses(model: "SMEEconomy", rows: np.ndarray, debt: np.ndarray, loss: np.ndarray) -> None:
    """Split the loss on guaranteed debt by lever 13's risk-sharing shares."""
    smes, ledger, guarantors, banks = model.smes, model.ledger, model.guarantors, model.banks
    g = model.policy.p13_financing_guarantee
    guaranteed_share = np.divide(smes.guaranteed[rows], debt, out=np.zeros_like(debt), where=debt > 0)
    guaranteed_loss = loss * np.minimum(guaranteed_share, 1.0)
    covered = guaranteed_loss > 0
    bank_share = min(max(g.bank_share, 0.05), 1.0)
    others = g.guarantor_share + g.reguarantee_share + g.government_share
    scale = (1.0 - bank_share) / others if others > 0 else 0.0
    to_bank = guaranteed_loss * (1.0 - bank_share)
    guarantor_rows = smes.guarantor[rows][covered]
    bank_rows = smes.bank[rows][covered]
    ledger.pay("guarantee_claims", "guarantors", "banks", to_bank[covered], payer_rows=guarantor_rows, payee_rows=bank_rows)
    fund = np.array([guarantors.size - 1])
    reguarantee = guaranteed_loss[covered] * g.reguarantee_share * scale
    ledger.pay("reguarantee_claims", "guarantors", "guarantors", reguarantee,
               payer_rows=np.repeat(fund, reguarantee.size), payee_rows=guarantor_rows)
    government_part = guaranteed_loss[covered] * g.government_share * scale
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
    """A listing firm raises equity, repays its loans and joins the large-firm sector."""
    if rows.size == 0:
        return
    smes, ledger, banks = model.smes, model.ledger, model.banks
    receivables = smes.receivables[rows]
    settle_receivables(model, rows, receivables, np.zeros_like(receivables))
    debt = smes.debt[rows].copy()
    ipo = np.maximum(debt - smes.cash[rows], 0.0) + 0.5 * smes.capital[rows]
    ledger.pay("ipo_proceeds", "households", "smes", ipo, payee_rows=rows)
    ledger.pay("loan_repayment_at_listing", "smes", "banks", debt, payer_rows=rows, payee_rows=smes.bank[rows])
    banks.reduce_debt(model, rows, debt)
    ledger.pay("listed_firm_joins_large_firms", "smes", "large_firms", smes.cash[rows], payer_rows=rows)


def enter_firms(model: "SMEEconomy") -> None:
    """New firms: would-be entrants (lever 14) not deterred by barriers (lever 2)."""
    p, rng, econ = model.policy, model.rng, model.config.economy
    expected = econ.entry_rate * model.initial_smes * (1.0 + p.p14_entrepreneurship.entry_rate_boost)
    would_be = rng.poisson(expected)
    count = int(rng.binomial(would_be, 1.0 - p.p02_fair_competition.entry_barrier))
    model.step_stats["entries"] = count
    if count == 0:
        return
    values = model.draw_firms(count, revenue_scale=econ.entrant_revenue, entrant=True)
    rows = model.add_smes(values, count)
    smes = model.smes
    startup = smes.capital[rows] + 2.0 * model.initial_monthly_costs(rows)
    # lever 25's pilot: entrants in the programme's control group get no start-up grant this period
    held = pilot_control(model, "p14_entrepreneurship")[rows]
    grant = np.where(held, 0.0, p.p14_entrepreneurship.startup_grant)
    model.ledger.pay("owner_equity", "households", "smes", np.maximum(startup - grant, 0.0), payee_rows=rows)
    served = np.flatnonzero(~held)
    model.government.spend("p14_entrepreneurship", "startup_grants", grant[served], rows[served])
    model.ledger.pay("entrant_capital", "smes", "large_firms", smes.capital[rows], payer_rows=rows)
    smes.costs[rows] = model.initial_monthly_costs(rows)
