"""The government bond market: how the government finances its deficit (end of phase 8).

The government has a budget constraint. Once the month's spending, support,
procurement and taxes have been paid, it pays interest on its bonds and then
brings its cash account back to zero: a deficit is financed by issuing bonds, a
surplus retires them. Bonds are one-period, floating-rate claims of face value
one (interest at ``government.bond_rate`` on the stock every month), so the debt
stock is just the sum of the holdings and no price is needed.

Who buys a new issue (Godley and Lavoie 2007, ch. 4-5: households hold their wealth
as money and bills, banks hold bills against deposits; and in China commercial banks
hold about two thirds of government bonds, ChinaBond custody statistics): banks take
``government.bank_bond_share`` of it, spread over banks in proportion to their
deposits and capped at each bank's free reserves (reserves above the requirement and a
1% buffer; the government's spending during the month has brought them in as deposits); households take the rest, capped at their
cash. What neither can absorb is left on the government's account at the central
bank (an overdraft, reported as ``government_overdraft``); in the baseline it is zero.
Redemptions go back to the holders in proportion to their holdings.

The stock identity checked every step: government debt = household holdings +
banks' holdings (:func:`sme_abm.accounting.check_identities`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy


def pay_bond_interest(model: "SMEEconomy") -> float:
    """The month's interest on the bonds each holder holds; bank interest is bank income."""
    government, banks, ledger = model.government, model.banks, model.ledger
    monthly = model.config.government.bond_rate / 12.0
    rows = np.arange(banks.size)
    to_banks = monthly * banks.bonds
    paid = ledger.pay("bond_interest_banks", "government", "banks", to_banks, payee_rows=rows, payee_sums=to_banks)
    banks.income += to_banks
    paid += ledger.pay("bond_interest_households", "government", "households", monthly * government.household_bonds)
    return paid


def finance_government(model: "SMEEconomy") -> None:
    """Issue bonds for the month's deficit or retire them with its surplus, so the
    government's cash returns to zero (as far as buyers can absorb the issue)."""
    government, ledger = model.government, model.ledger
    balance = ledger.balances["government"]
    if balance < 0:
        _issue(model, -balance)
    elif balance > 0 and government.debt > 0:
        _redeem(model, min(balance, government.debt))
    model.step_stats["government_overdraft"] = max(-ledger.balances["government"], 0.0)


def _issue(model: "SMEEconomy", amount: float) -> None:
    government, banks, ledger = model.government, model.banks, model.ledger
    share = model.config.government.bank_bond_share
    deposits = banks.deposits  # one pass over the SMEs' balances for both
    free = banks.free_reserves(deposits)
    weights = deposits / deposits.sum() if deposits.sum() > 0 else np.zeros(banks.size)
    by_banks = np.minimum(share * amount * weights, free)
    by_households = min(amount - float(by_banks.sum()), max(ledger.balances["households"], 0.0))
    # what households cannot take, banks take if they have room, and the reverse
    rest = amount - float(by_banks.sum()) - by_households
    if rest > 0:
        extra = np.minimum(rest * weights, free - by_banks)
        by_banks = by_banks + extra
    rows = np.arange(banks.size)
    ledger.pay("bond_purchases_banks", "banks", "government", by_banks, payer_rows=rows, payer_sums=by_banks)
    banks.bonds += by_banks
    ledger.pay("bond_purchases_households", "households", "government", by_households)
    government.household_bonds += by_households
    government.debt += float(by_banks.sum()) + by_households
    model.step_stats["bonds_issued"] = float(by_banks.sum()) + by_households


def _redeem(model: "SMEEconomy", amount: float) -> None:
    government, banks, ledger = model.government, model.banks, model.ledger
    share = amount / government.debt
    to_banks = share * banks.bonds
    rows = np.arange(banks.size)
    ledger.pay("bond_redemptions_banks", "government", "banks", to_banks, payee_rows=rows, payee_sums=to_banks)
    banks.bonds -= to_banks
    to_households = share * government.household_bonds
    ledger.pay("bond_redemptions_households", "government", "households", to_households)
    government.household_bonds -= to_households
    government.debt -= float(to_banks.sum()) + to_households
    model.step_stats["bonds_issued"] = -(float(to_banks.sum()) + to_households)
