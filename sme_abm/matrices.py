"""The balance-sheet matrix and the transactions-flow matrix of the economy.

Stock-flow consistent models are checked by two tables (Godley and Lavoie 2007,
*Monetary Economics*, ch. 2): the balance-sheet matrix, instruments in rows and
sectors in columns, and the transactions-flow matrix, the month's flows in rows and
sectors in columns. Both are built here from the model's books and the ledger's
record of the month (:attr:`sme_abm.accounting.Ledger.flow_table`).

Balance sheet (sign: + an asset of the sector, - a liability):

* every financial row sums to zero across sectors (each asset is someone's
  liability): deposits (of households, SMEs, large firms, guarantors and the rest of
  the world), reserves, the government's account at the central bank, SME loans, central-bank lending to banks, government
  bonds, trade credit (SME receivables against the payables of large firms and
  government), and equity at book value (households own the SMEs, large firms and
  banks; the government owns the guarantors);
* tangible capital (the SMEs' capital stock, and the collateral banks have seized from
  defaulted firms and not yet sold) is the one real asset; the net-worth row
  balances each column, so every column sums to zero, and the Sigma column of the
  table holds the capital stock and minus it (national wealth is the capital stock).

Transactions flow: each flow is paid by one sector and received by another, so each
row sums to zero; the last row is each sector's change in its money (deposits, or
its account at the central bank; a bank's net position), so each column sums to zero
when every payment went through the ledger.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from .accounting import SECTORS, total_assets

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy

#: Columns of both matrices (the ledger's sectors, in the order of the tables in docs/model.md).
MATRIX_SECTORS = ("households", "smes", "large_firms", "banks", "guarantors", "government", "central_bank",
                  "rest_of_world")
assert set(MATRIX_SECTORS) == set(SECTORS)

#: Rows of the balance sheet that are financial instruments (each sums to zero).
FINANCIAL_ROWS = ("deposits", "reserves", "government account", "SME loans",
                  "central-bank lending", "government bonds", "trade credit", "equity (book value)")

#: Flows that are not income or expenditure: the capital account (real assets, capital transfers)
#: and financial transactions (changes in claims). Every other flow is a current flow.
CAPITAL_FLOWS = frozenset({"investment", "entrant_capital", "entrant_capital_returned", "capital_sales", "guarantor_recapitalisation",
                           "startup_grants", "collateral_sales", "bank_recapitalisation"})
FINANCIAL_FLOWS = frozenset({
    "new_loans", "loan_principal", "facility_moved_in", "facility_moved_out", "loan_recovery", "loan_repayment_at_listing", "relending",
    "relending_repayment", "nondeposit_lender_borrowing", "nondeposit_lender_repayment", "standing_facility_draws", "standing_facility_repayments", "bond_purchases_banks",
    "bond_purchases_households", "bond_redemptions_banks", "bond_redemptions_households", "owner_equity",
    "owner_equity_returned",
    "ipo_proceeds", "venture_capital", "fund_equity", "receivables_paid_large_firms", "receivables_paid_government",
    "listed_firm_joins_large_firms", "owner_liquidation_proceeds", "fund_liquidation_proceeds", "fund_exit_proceeds",
})


def flow_kind(flow: str) -> str:
    """``"capital"``, ``"financial"`` or ``"current"``."""
    if flow in CAPITAL_FLOWS:
        return "capital"
    return "financial" if flow in FINANCIAL_FLOWS else "current"


def balance_sheet_matrix(model: "SMEEconomy") -> pd.DataFrame:
    """The balance-sheet matrix now: instruments in rows, :data:`MATRIX_SECTORS` in
    columns, plus a ``Sigma`` column (the row sums: zero for financial rows)."""
    smes, banks, guarantors, government = model.smes, model.banks, model.guarantors, model.government
    balances = model.ledger.balances
    deposits = banks.deposits
    reserves = banks.cash + deposits
    sme_cash = math.fsum(smes.cash)
    rows: dict[str, dict[str, float]] = {
        "deposits": {"households": balances["households"], "smes": sme_cash,
                     "large_firms": balances["large_firms"], "guarantors": math.fsum(guarantors.cash),
                     "rest_of_world": balances["rest_of_world"], "banks": -math.fsum(deposits)},
        "reserves": {"banks": math.fsum(reserves), "central_bank": -math.fsum(reserves)},
        "government account": {"government": balances["government"], "central_bank": -balances["government"]},
        "SME loans": {"smes": -math.fsum(smes.debt), "banks": math.fsum(banks.loans)},
        "central-bank lending": {"banks": -math.fsum(banks.cb_borrowing) - math.fsum(banks.standing_facility),
                                 "central_bank": model.central_bank.claims_on_banks},
        "government bonds": {"households": government.household_bonds, "banks": math.fsum(banks.bonds),
                             "government": -government.debt},
        "trade credit": {"smes": math.fsum(smes.receivables), "large_firms": -model.payables["large_firms"],
                         "government": -model.payables["government"]},
    }
    capital = {"smes": math.fsum(smes.capital), "banks": math.fsum(banks.foreclosed)}
    frame = pd.DataFrame(0.0, index=list(rows) + ["equity (book value)", "tangible capital", "net worth"],
                         columns=list(MATRIX_SECTORS))
    for name, entries in rows.items():
        for sector, value in entries.items():
            frame.loc[name, sector] = value
    for sector, value in capital.items():
        frame.loc["tangible capital", sector] = value
    # equity at book value: the owners hold each firm-like sector's net worth
    book = {sector: float(frame[sector].sum()) for sector in ("smes", "large_firms", "banks", "guarantors")}
    for sector, value in book.items():
        frame.loc["equity (book value)", sector] = -value
    fund = government.fund_equity_value()  # the SME development fund's stakes (lever 6)
    frame.loc["equity (book value)", "households"] = book["smes"] - fund + book["large_firms"] + book["banks"]
    frame.loc["equity (book value)", "government"] = book["guarantors"] + fund
    frame.loc["net worth"] = -frame.sum(axis=0)
    frame["Sigma"] = frame.sum(axis=1)
    return frame


def transactions_flow_matrix(model: "SMEEconomy") -> pd.DataFrame:
    """This month's transactions-flow matrix: one row per recorded flow (``kind: name``),
    :data:`MATRIX_SECTORS` in columns (paid negative, received positive), and a last row
    ``change in money`` (minus each sector's change in money over the month), plus a
    ``Sigma`` column (the row sums)."""
    ledger = model.ledger
    frame = pd.DataFrame(0.0, index=[], columns=list(MATRIX_SECTORS))
    for (flow, payer, payee), amount in sorted(ledger.flow_table.items()):
        label = f"{flow_kind(flow)}: {flow}"
        if label not in frame.index:
            frame.loc[label] = 0.0
        frame.loc[label, payer] -= amount
        frame.loc[label, payee] += amount
    closing = ledger.cash_by_sector()
    frame.loc["change in money"] = [-(closing[s] - ledger.opening.get(s, closing[s])) for s in MATRIX_SECTORS]
    frame["Sigma"] = frame.sum(axis=1)
    return frame


def matrix_residuals(model: "SMEEconomy") -> dict[str, float]:
    """Largest absolute row and column sums of both matrices, relative to total assets
    (financial rows of the balance sheet; every row and column of the flow matrix)."""
    scale = total_assets(model)
    balance = balance_sheet_matrix(model)
    flows = transactions_flow_matrix(model)
    sectors = list(MATRIX_SECTORS)
    return {
        "balance_sheet_rows": float(balance.loc[list(FINANCIAL_ROWS), sectors].sum(axis=1).abs().max()) / scale,
        "balance_sheet_columns": float(balance[sectors].sum(axis=0).abs().max()) / scale,
        "balance_sheet_wealth": abs(float(balance.loc["net worth", "Sigma"] + balance.loc["tangible capital", "Sigma"]))
        / scale,
        "flow_rows": float(flows[sectors].sum(axis=1).abs().max()) / scale,
        "flow_columns": float(flows[sectors].sum(axis=0).abs().max()) / scale,
    }
