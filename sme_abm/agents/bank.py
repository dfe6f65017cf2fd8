"""Banks: a handful of lenders with column-wise balance sheets.

Each bank's balance sheet: assets are cash (reserves and liquid funds),
loans to SMEs and government bonds; liabilities are household deposits and central-bank
re-lending; equity is the difference. Large state banks, small local banks
and non-deposit lenders differ in size, reserve ratio and whom they serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from ..kernels import bincount_sums, maximum, minimum, njit
from .columns import ColumnStore, add_row_properties

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

LARGE_BANK, SMALL_BANK, NONDEPOSIT_LENDER = 0, 1, 2
BANK_KINDS = ("large state bank", "small local bank", "non-deposit lender")

BANK_SCHEMA: dict[str, object] = {
    "kind": np.int8,
    "cash": np.float64,
    "loans": np.float64,
    "deposits": np.float64,
    "cb_borrowing": np.float64,
    "bonds": np.float64,
    "risk_weighted_assets": np.float64,
    "income": np.float64,
    "writeoffs": np.float64,
}


class BankBook(ColumnStore):
    """All banks' balance sheets, one row per bank."""

    def __init__(self, size: int = 0) -> None:
        super().__init__(BANK_SCHEMA, size)

    @property
    def equity(self) -> np.ndarray:
        return self.cash + self.loans + self.bonds - self.deposits - self.cb_borrowing

    @property
    def capital_ratio(self) -> np.ndarray:
        return self.equity / np.maximum(self.risk_weighted_assets, 1e-9)

    # -- flows with SMEs (vectorised over SMEs, aggregated per bank) -------
    def receive_interest(self, flow: str, bank_of_sme: np.ndarray, amounts: np.ndarray) -> None:
        model = self.model
        per_bank = bincount_sums(bank_of_sme, weights=amounts, minlength=self.size)
        model.ledger.pay(flow, "smes", "banks", amounts, payee_rows=bank_of_sme, payee_sums=per_bank)
        self.income += per_bank

    def collect_principal(self, model: "SMEEconomy") -> None:
        """Scheduled amortisation (deferred for shock-hit firms under lever 23)."""
        smes = model.smes
        maturity = model.config.banks.loan_maturity_months
        deferral = model.policy.p23_emergency_relief.principal_deferral
        due = smes.debt / maturity
        if smes.shock_hit.any():  # x * 1.0 == x, so the factor only matters when someone is hit
            due *= np.where(smes.shock_hit, 1.0 - deferral, 1.0)
        # debt first: the per-bank repayments it sums are the ledger's per-bank receipts
        # (the ledger moves cash only, and the debt update reads no cash)
        repaid = self._reduce_all_debt(model, due)
        model.ledger.pay("loan_principal", "smes", "banks", due, payee_rows=smes.bank, payee_sums=repaid)

    def reduce_debt(self, model: "SMEEconomy", rows: np.ndarray | slice, amount: np.ndarray) -> None:
        """Take ``amount`` off the debt of SMEs ``rows`` (an index array, or a
        slice for all firms) and release the matching share of their guarantees."""
        smes = model.smes
        if isinstance(rows, slice) and rows == slice(None):
            self._reduce_all_debt(model, amount)
            return
        debt = smes.debt[rows]
        share = np.divide(amount, debt, out=np.zeros_like(debt), where=debt > 0)
        released = smes.guaranteed[rows] * np.minimum(share, 1.0)
        smes.debt[rows] = np.maximum(debt - amount, 0.0)
        smes.guaranteed[rows] -= released
        self.loans -= bincount_sums(smes.bank[rows], weights=amount, minlength=self.size)
        model.guarantors.release(smes.guarantor[rows], released)

    def _reduce_all_debt(self, model: "SMEEconomy", amount: np.ndarray) -> np.ndarray:
        """:meth:`reduce_debt` for every SME, in one pass (:func:`_reduce_all_debt_kernel`);
        returns the amount repaid to each bank."""
        smes, guarantors = model.smes, model.guarantors
        repaid, released = np.zeros(self.size), np.zeros(guarantors.size)
        _reduce_all_debt_kernel(amount, smes.debt, smes.guaranteed, smes.bank, smes.guarantor, repaid, released)
        self.loans -= repaid
        guarantors.outstanding -= released
        return repaid

    def lend(self, model: "SMEEconomy", rows: np.ndarray, amount: np.ndarray, rate: np.ndarray) -> None:
        """Book new loans to SMEs ``rows`` (distinct) at annual ``rate`` (blended into their rate)."""
        smes = model.smes
        model.ledger.pay("new_loans", "banks", "smes", amount, payer_rows=smes.bank[rows], payee_rows=rows)
        added = np.zeros(self.size)
        _book_loans_kernel(rows, amount, rate, smes.bank, smes.debt, smes.loan_rate, added)
        self.loans += added

    def grant_overdrafts(self, model: "SMEEconomy") -> None:
        """Cover negative cash with an overdraft at a penalty rate; count overdraft months."""
        smes = model.smes
        short = np.empty(smes.size, dtype=bool)
        _count_overdraft_months_kernel(smes.cash, short, smes.overdraft_months)
        rows = np.flatnonzero(short)
        rate = model.sme_base_rate + self.markup_of(smes.bank[rows]) + 0.03
        self.lend(model, rows, -smes.cash[rows], rate)

    def markup_of(self, bank_rows: np.ndarray) -> np.ndarray:
        return self.model.config.banks.markup + 0.004 * (self.kind[bank_rows] == NONDEPOSIT_LENDER)

    # -- headroom ------------------------------------------------------------
    def reserve_ratio(self) -> np.ndarray:
        model = self.model
        ratio = np.full(self.size, model.config.central_bank.reserve_ratio)
        ratio[self.kind == SMALL_BANK] = model.policy.p09_monetary_transmission.small_bank_reserve_ratio
        ratio[self.kind == NONDEPOSIT_LENDER] = 0.0
        return ratio

    def funding_headroom(self) -> np.ndarray:
        """Cash a bank can lend without breaching its reserve requirement."""
        return np.maximum(self.cash - self.reserve_ratio() * self.deposits - 0.01 * self.deposits, 0.0)

    def capital_headroom(self) -> np.ndarray:
        """Risk-weighted assets a bank can still add at its minimum capital ratio."""
        car = self.model.config.banks.min_capital_ratio
        return np.maximum(self.equity / car - self.risk_weighted_assets, 0.0)

    def update_risk_weighted_assets(self, model: "SMEEconomy") -> None:
        smes = model.smes
        rwa = np.zeros(self.size)
        _risk_weighted_assets_kernel(smes.bank, smes.size_class, smes.debt, smes.guaranteed,
                                     float(model.policy.p11_differentiated_supervision.small_micro_risk_weight), rwa)
        self.risk_weighted_assets = rwa


@njit
def _count_overdraft_months_kernel(cash, short, overdraft_months):  # pragma: no cover - compiled
    """Who is short of cash, and the months in a row each firm has been, in one pass
    instead of four (a comparison, an addition, a ``where`` and a conversion, each over
    all SMEs). The numpy it replaced (the overdraft that follows reads only ``short``)::

        short = cash < 0
        overdraft_months = where(short, overdraft_months + 1, 0).astype(int16)
    """
    for i in range(cash.size):
        s = cash[i] < 0
        short[i] = s
        overdraft_months[i] = overdraft_months[i] + 1 if s else 0


@njit
def _reduce_all_debt_kernel(amount, debt, guaranteed, bank, guarantor, repaid, released):  # pragma: no cover
    """Every SME repays ``amount``; the numpy of :meth:`BankBook.reduce_debt` it replaced::

        share = divide(amount, debt, out=zeros, where=debt > 0)
        release = guaranteed * minimum(share, 1.0)
        debt = maximum(debt - amount, 0.0); guaranteed -= release
        repaid = bincount(bank, weights=amount)
        released = bincount(guarantor[covered], weights=release[covered])   (covered: guarantor >= 0)

    Only firms with guaranteed debt release anything (elsewhere the release is
    ``0 * share``, and adding zeros changes neither the guarantees nor the sums);
    the per-bank and per-guarantor sums are made in row order, as ``bincount`` does.
    """
    for i in range(amount.size):
        a = amount[i]
        d = debt[i]
        g = guaranteed[i]
        if g != 0:
            share = a / d if d > 0 else 0.0
            release = g * minimum(share, 1.0)
            guaranteed[i] = g - release
            if guarantor[i] >= 0:
                released[guarantor[i]] += release
        debt[i] = maximum(d - a, 0.0)
        repaid[bank[i]] += a


@njit
def _book_loans_kernel(rows, amount, rate, bank, debt, loan_rate, added):  # pragma: no cover - compiled
    """New loans to the distinct SMEs ``rows``; ``added`` gets each bank's new lending.
    The numpy it replaced (see :mod:`sme_abm.kernels`)::

        old = debt[rows]; new_total = old + amount
        loan_rate[rows] = divide(loan_rate[rows] * old + rate * amount, new_total, out=rate.copy(),
                                 where=new_total > 0)
        debt[rows] = new_total
        added = bincount(bank[rows], weights=amount)   (summed in row order, as bincount does)
    """
    for j in range(rows.size):
        i = rows[j]
        a = amount[j]
        old = debt[i]
        total = old + a
        blended = (loan_rate[i] * old + rate[j] * a) / total
        loan_rate[i] = blended if total > 0 else rate[j]
        debt[i] = total
        added[bank[i]] += a


@njit
def _risk_weighted_assets_kernel(bank, size_class, debt, guaranteed, small_micro_weight, out):  # pragma: no cover
    """``out = np.bincount(bank, weights=debt * risk_weights(size_class, debt, guaranteed))``.

    Two passes: the weighted amounts first, in a loop LLVM vectorises (it has a
    division per firm), then their sums per bank. ``np.bincount`` adds the weights
    to their bins in row order, as the second loop does, so the sums are the same
    bits (see :mod:`sme_abm.kernels`); one fused loop was twice as slow, its
    divisions waiting on the scattered additions.
    """
    weighted = np.empty(bank.size)
    for i in range(bank.size):
        d = debt[i]
        base = small_micro_weight if size_class[i] <= 1 else 1.0
        covered = guaranteed[i] / d if d > 0 else 0.0
        weighted[i] = d * (base * (1.0 - 0.5 * minimum(covered, 1.0)))
    for i in range(bank.size):
        out[bank[i]] += weighted[i]


def risk_weights(model: "SMEEconomy", size_class: np.ndarray, amount: np.ndarray, guaranteed: np.ndarray) -> np.ndarray:
    """Risk weight per yuan: lower for small/micro (lever 11) and for guaranteed parts."""
    base = np.where(size_class <= 1, model.policy.p11_differentiated_supervision.small_micro_risk_weight, 1.0)
    covered = np.divide(guaranteed, amount, out=np.zeros_like(amount), where=amount > 0)
    return base * (1.0 - 0.5 * np.minimum(covered, 1.0))


class Bank(mesa.Agent):
    """One bank; its balance sheet is its row in :class:`BankBook`."""

    def __init__(self, model: "SMEEconomy", row: int) -> None:
        super().__init__(model)
        self.row = row
        self._store = model.banks

    @property
    def kind_name(self) -> str:
        return BANK_KINDS[self.kind]

    @property
    def equity(self) -> float:
        return float(self._store.equity[self.row])

    @property
    def capital_ratio(self) -> float:
        return float(self._store.capital_ratio[self.row])


add_row_properties(Bank, BANK_SCHEMA)
