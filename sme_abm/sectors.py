"""Aggregate sectors and month-end settlement (phase 8).

Households, large firms and the rest of the world are aggregates, not agents.
At the month's end banks pay deposit interest and dividends, guarantors pay
dividends or are recapitalised, the central bank settles re-lending, large
firms pay out their income, households pay income tax, and the government
makes its other spending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .agents.bank import NONDEPOSIT_LENDER, guarantor_banks
from .kernels import maximum, njit

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy


def settle_banks(model: "SMEEconomy") -> None:
    """Deposit interest to every depositor; dividends that keep capital near its target ratio.

    Households and large firms earn the time-deposit rate on their deposits, SMEs and
    guarantors the demand-deposit rate on theirs; each bank pays its own depositors."""
    banks, ledger, cfg, smes = model.banks, model.ledger, model.config, model.smes
    rows = np.arange(banks.size)
    balances = ledger.balances
    banks.pay_borrowing_interest(model)
    time_rate = cfg.central_bank.deposit_rate / 12.0
    demand_rate = cfg.central_bank.demand_deposit_rate / 12.0
    aggregate = time_rate * banks.deposit_share
    to_households = aggregate * max(balances["households"], 0.0)
    to_large_firms = aggregate * max(balances["large_firms"], 0.0)
    paid = ledger.pay("deposit_interest_households", "banks", "households", to_households, payer_rows=rows)
    paid_by_bank = to_households + to_large_firms
    ledger.pay("deposit_interest_large_firms", "banks", "large_firms", to_large_firms, payer_rows=rows)
    sme_interest, home = np.empty(smes.size), np.empty(smes.size, dtype=banks.deposit_home.dtype)
    sme_by_bank = np.zeros(banks.size)
    _sme_deposit_interest_kernel(smes.cash, smes.bank, banks.deposit_home, float(demand_rate), sme_interest, home,
                                 sme_by_bank)
    ledger.pay("deposit_interest_smes", "banks", "smes", sme_interest, payer_rows=home, payer_sums=sme_by_bank)
    paid_by_bank = paid_by_bank + sme_by_bank
    to_guarantors = demand_rate * np.maximum(model.guarantors.cash, 0.0)
    payer = guarantor_banks(model)
    ledger.pay("deposit_interest_guarantors", "banks", "guarantors", to_guarantors, payer_rows=payer,
               payee_rows=np.arange(model.guarantors.size))
    paid_by_bank = paid_by_bank + np.bincount(payer, weights=to_guarantors, minlength=banks.size)
    profit = banks.income - paid_by_bank - banks.writeoffs
    # banks manage their capital ratio towards a target: below it they retain all profit; above
    # it they pay out the month's profit and a share of the excess, never more than the excess.
    # Non-deposit lenders lend their equity (China's microcredit companies: loans of 910.8 bn
    # yuan against paid-in capital of 862.9 bn at end 2019, PBoC), so they keep it and pay
    # out only the month's profit, and none that they would have to borrow beyond their limit
    banks.update_risk_weighted_assets(model)  # the month-end book, after amortisation and defaults
    surplus = banks.equity - cfg.banks.initial_capital_ratio * banks.risk_weighted_assets
    dividends = np.clip(np.maximum(profit, 0.0) + cfg.banks.excess_capital_payout * surplus, 0.0,
                        np.maximum(surplus, 0.0))
    nondeposit = banks.kind == NONDEPOSIT_LENDER
    dividends[nondeposit] = np.clip(profit[nondeposit], 0.0, np.maximum(surplus[nondeposit], 0.0))
    if cfg.banks.nondeposit_funding == "borrowing":
        # and never with borrowed money beyond the borrowing limit: a dividend d lowers both the
        # lender's cash and its net assets by d, so its room under the limit falls by (1 + limit) d
        room = banks.nondeposit_borrowing_room()[nondeposit]
        payable = np.maximum(room, 0.0) / (1.0 + cfg.banks.nondeposit_borrowing_limit)
        dividends[nondeposit] = np.minimum(dividends[nondeposit], payable)
    ledger.pay("bank_dividends", "banks", "households", dividends, payer_rows=rows)
    model.step_stats["bank_profit"] = float(profit.sum())
    model.step_stats["deposit_interest"] = paid + float(to_large_firms.sum() + sme_by_bank.sum())
    banks.income[:] = 0.0
    banks.writeoffs[:] = 0.0


def settle_guarantors(model: "SMEEconomy") -> None:
    """Guarantors pay dividends to the government out of profit, or are
    recapitalised (a fiscal cost of lever 13) when their capital falls below half."""
    guarantors, ledger, cfg = model.guarantors, model.ledger, model.config.guarantors
    rows = np.arange(guarantors.size)
    profit = guarantors.fee_income - guarantors.losses
    above_base = np.maximum(guarantors.cash - guarantors.base_capital, 0.0)
    dividends = np.minimum(cfg.dividend_payout * np.maximum(profit, 0.0), above_base)
    ledger.pay("guarantor_dividends", "guarantors", "government", dividends, payer_rows=rows)
    # government-backed guarantors (and the re-guarantee fund) are recapitalised to their
    # base capital when losses leave them below half of it; a guarantor whose guarantees
    # reach its leverage limit is not topped up, it stops guaranteeing (GuarantorBook.capacity)
    shortfall = np.where(guarantors.cash < 0.5 * guarantors.base_capital, guarantors.base_capital - guarantors.cash, 0.0)
    paid = ledger.pay("guarantor_recapitalisation", "government", "guarantors", shortfall, payee_rows=rows)
    if model.config.lever("p13_financing_guarantee").enabled:
        model.government.record_tax_expenditure("p13_financing_guarantee", paid)
    guarantors.fee_income[:] = 0.0
    guarantors.losses[:] = 0.0


def settle_large_firms(model: "SMEEconomy") -> None:
    """Large firms pay out what they hold beyond the float that covers their payables."""
    ledger, lf = model.ledger, model.config.large_firms
    income = max(ledger.balances["large_firms"] - model.payables["large_firms"], 0.0)
    model.large_firm_revenue = income
    if model.config.markets.sources_from_smes:
        sme_revenue = float(model.smes.sales.sum())
        model.sme_revenue_share = sme_revenue / max(sme_revenue + income, 1e-12)
    wages = lf.wage_share * income
    taxes = lf.tax_rate * income
    ledger.pay("large_firm_wages", "large_firms", "households", wages)
    ledger.pay("large_firm_taxes", "large_firms", "government", taxes)
    ledger.pay("large_firm_dividends", "large_firms", "households", income - wages - taxes)


def settle_households(model: "SMEEconomy") -> None:
    """Income tax on the month's income (and, under the budget-neutral closure, the levy
    that pays for the levers); the rest is next month's disposable income."""
    ledger = model.ledger
    income = ledger.gross_in["households"]
    tax = model.config.households.income_tax_rate * income
    ledger.pay("income_tax", "households", "government", tax)
    levy = ledger.pay("budget_neutral_levy", "households", "government", model.government.budget_neutral_levy())
    model.household_income = income - tax - levy
    model.step_stats["household_income"] = income


@njit
def _sme_deposit_interest_kernel(cash, bank, deposit_home, rate, interest, home,
                                 by_bank):  # pragma: no cover - compiled
    """SMEs' deposit interest, the bank that pays it and each bank's total in one pass
    instead of four; the numpy it replaced::

        interest = rate * maximum(cash, 0.0)
        home = deposit_home[bank]
        by_bank = bincount(home, weights=interest)   (summed in row order, as bincount does)
    """
    for i in range(cash.size):
        interest[i] = rate * maximum(cash[i], 0.0)
        home[i] = deposit_home[bank[i]]
    for i in range(cash.size):  # the sums apart, so the first loop vectorises
        by_bank[home[i]] += interest[i]
