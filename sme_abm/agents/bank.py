"""Banks: a handful of lenders with column-wise balance sheets.

Each bank's balance sheet: assets are reserves at the central bank, loans to
SMEs and government bonds; liabilities are deposits, central-bank re-lending
(lever 9) and standing-facility borrowing; equity is the difference. Large state
banks, small local banks and non-deposit lenders differ in size, reserve ratio
and whom they serve.

Money is bank deposits (Godley and Lavoie 2007, ch. 7-10): what SMEs, households,
large firms and guarantors hold as "cash" in the ledger are their deposits at a
bank. A bank's deposits are therefore not a number of its own but the sum of its
depositors' balances (:func:`deposits_by_bank`): one number in two balance sheets.
The ledger's account of a bank (the ``cash`` column) is its net money position,
reserves less the deposits it owes. A payment between two depositors moves
deposits and, through clearing, the same amount of reserves between their banks,
so it leaves both positions unchanged and the ledger need not touch the banks;
a payment to or from the bank itself (interest, a new loan, a bond purchase)
moves the position. Reserves are recovered as position plus deposits.

SMEs bank with their lender; the clients of a non-deposit lender keep their
deposits at a large bank. Households, large firms and the rest of the world (its
yuan receipts from imports, less what it pays for exports) spread their deposits
over the deposit-taking banks by fixed deposit shares; guarantors bank with the
large banks. Only the government keeps its account at the central bank.
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
    "cash": np.float64,  # net money position: reserves less deposits owed (see the module text)
    "loans": np.float64,
    "deposit_share": np.float64,  # share of household and large-firm deposits held here
    "deposit_home": np.int16,  # the bank where this lender's clients keep their deposits
    "cb_borrowing": np.float64,  # re-lending (lever 9)
    "standing_facility": np.float64,  # overnight borrowing from the central bank (lender of last resort)
    # a non-deposit lender's borrowing from its deposit_home bank (banks.nondeposit_funding)
    "bank_borrowing": np.float64,
    "bonds": np.float64,
    "risk_weighted_assets": np.float64,
    "income": np.float64,
    "writeoffs": np.float64,
    # defaulted loans in workout (Section 7.10 of docs/model.md): the gross exposure still
    # legally owed, which the NPL ratio counts, and its carrying value, the liquidation value
    # of the seized collateral the bank expects to sell (the rest was written off at default)
    "npl": np.float64,
    "foreclosed": np.float64,
}


class BankBook(ColumnStore):
    """All banks' balance sheets, one row per bank."""

    def __init__(self, size: int = 0) -> None:
        super().__init__(BANK_SCHEMA, size)

    @property
    def deposits(self) -> np.ndarray:
        """Deposits each bank owes: its depositors' balances (:func:`deposits_by_bank`)."""
        return deposits_by_bank(self.model)

    @property
    def reserves(self) -> np.ndarray:
        """Reserves at the central bank: the net money position plus the deposits owed."""
        return self.cash + self.deposits

    @property
    def interbank_claims(self) -> np.ndarray:
        """What non-deposit lenders owe each bank: each borrows from its ``deposit_home``."""
        return np.bincount(self.deposit_home, weights=self.bank_borrowing, minlength=self.size)

    @property
    def equity(self) -> np.ndarray:
        # reserves + loans + seized collateral + bonds + claims on other lenders - deposits
        # - central-bank borrowing - borrowing from other banks, with reserves - deposits = cash
        return (self.cash + self.loans + self.foreclosed + self.bonds + self.interbank_claims
                - self.cb_borrowing - self.standing_facility - self.bank_borrowing)

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

    def work_out_defaults(self, model: "SMEEconomy") -> None:
        """Sell a share of the seized collateral of defaulted borrowers each month.

        Insolvency proceedings take ``p01.recovery_months`` on average: each month that
        share of every bank's workout book is resolved (a geometric delay, so the book needs
        no cohorts): the large-firm sector buys the collateral at its liquidation value, the
        bank pays the proceedings' cost out of it (``banks.insolvency_cost_share``, to
        households: administrators', lawyers' and auctioneers' fees) and keeps the rest, the
        carrying value, and the matching gross exposure leaves the NPL stock (its loss was
        written off at default).
        """
        months = max(float(model.policy.p01_legal_system.recovery_months), 1.0)
        share = 1.0 / months
        proceeds = share * self.foreclosed  # net of the proceedings' cost
        gross = proceeds / (1.0 - model.config.banks.insolvency_cost_share)
        everyone = np.arange(self.size)
        model.ledger.pay("collateral_sales", "large_firms", "banks", gross, payee_rows=everyone)
        model.ledger.pay("insolvency_fees", "banks", "households", gross - proceeds, payer_rows=everyone)
        self.foreclosed -= proceeds
        self.npl -= share * self.npl

    def resolve_insolvent(self, model: "SMEEconomy") -> None:
        """Recapitalise every bank whose equity has fallen below zero back to the minimum
        capital ratio, at the government's cost (a bail-out in the absence of a funded
        deposit-insurance scheme; owners are already wiped out by then).

        China's 2015 Deposit Insurance Regulations let the fund recapitalise or merge a
        failing bank (Baoshang Bank 2019, Jinzhou Bank 2019 were resolved by public
        injections and transfers); no insolvent bank keeps lending with negative equity.
        """
        car = model.config.banks.min_capital_ratio
        injection = np.where(self.equity < 0.0, car * self.risk_weighted_assets - self.equity, 0.0)
        paid = model.ledger.pay("bank_recapitalisation", "government", "banks", injection,
                                payee_rows=np.arange(self.size))
        model.step_stats["bank_recapitalisation"] = float(paid)
        model.step_stats["banks_resolved"] = int(np.count_nonzero(injection > 0))

    def pay_borrowing_interest(self, model: "SMEEconomy") -> None:
        """Non-deposit lenders pay a month's interest on their bank borrowing to the banks
        that lent it, at the SME base rate plus ``banks.markup``: a bank loan to a firm."""
        if model.config.banks.nondeposit_funding != "borrowing":
            return
        rows = np.flatnonzero(self.bank_borrowing > 0.0)
        interest = (model.sme_base_rate + model.config.banks.markup) / 12.0 * self.bank_borrowing[rows]
        model.ledger.pay("nondeposit_lender_interest", "banks", "banks", interest,
                         payer_rows=rows, payee_rows=self.deposit_home[rows])
        self.income -= np.bincount(rows, weights=interest, minlength=self.size)
        self.income += np.bincount(self.deposit_home[rows], weights=interest, minlength=self.size)

    def fund_nondeposit_lenders(self, model: "SMEEconomy") -> None:
        """Month-end funding of non-deposit lenders: one whose cash is negative (it lent more
        than it held) draws the gap from its bank; one with cash repays what it owes first.
        The draw settles what the month's flows took, so no lender ends a month with negative
        cash; what it owes is held to the borrowing limit where the lender decides: new loans
        and start-up loans (:meth:`funding_headroom`, on its net debt), facilities its clients
        bring (:func:`~sme_abm.markets.credit.keep_unfunded_facilities`) and dividends
        (:func:`~sme_abm.sectors.settle_banks`). What it cannot decide (interest on its
        borrowing and on re-lending, re-lending repayments, losses that lower its net assets)
        can take it a little over; then it lends nothing and its repayments pay down its
        borrowing."""
        if model.config.banks.nondeposit_funding != "borrowing":
            return
        rows = np.flatnonzero(self.kind == NONDEPOSIT_LENDER)
        cash = self.cash[rows]
        draw = np.maximum(-cash, 0.0)
        repay = np.minimum(self.bank_borrowing[rows], np.maximum(cash, 0.0))
        home = self.deposit_home[rows]
        drawn = model.ledger.pay("nondeposit_lender_borrowing", "banks", "banks", draw, payer_rows=home, payee_rows=rows)
        model.ledger.pay("nondeposit_lender_repayment", "banks", "banks", repay, payer_rows=rows, payee_rows=home)
        self.bank_borrowing[rows] += draw - repay
        model.step_stats["nondeposit_lender_borrowing"] = drawn

    def markup_of(self, bank_rows: np.ndarray) -> np.ndarray:
        return self.model.config.banks.markup + 0.004 * (self.kind[bank_rows] == NONDEPOSIT_LENDER)

    # -- headroom ------------------------------------------------------------
    def reserve_ratio(self) -> np.ndarray:
        model = self.model
        ratio = np.full(self.size, model.config.central_bank.reserve_ratio)
        ratio[self.kind == SMALL_BANK] = model.policy.p09_monetary_transmission.small_bank_reserve_ratio
        ratio[self.kind == NONDEPOSIT_LENDER] = 0.0
        return ratio

    def required_reserves(self, deposits: np.ndarray | None = None) -> np.ndarray:
        deposits = self.deposits if deposits is None else deposits
        return self.reserve_ratio() * np.maximum(deposits, 0.0)

    def free_reserves(self, deposits: np.ndarray | None = None) -> np.ndarray:
        """Reserves above the requirement and a liquidity buffer of 1% of deposits: what a
        bank can spend on bonds without borrowing (``deposits``: :attr:`deposits`, if the
        caller has them)."""
        deposits = self.deposits if deposits is None else deposits
        free = self.cash + deposits - self.required_reserves(deposits) - 0.01 * np.maximum(deposits, 0.0)
        return np.maximum(free, 0.0)

    def funding_headroom(self) -> np.ndarray:
        """New lending a bank can fund: its free reserves plus what its government bonds can
        still raise at the central bank's standing facility (bonds less a haircut, less what it
        already owes there). A new loan's deposits leave the bank as its borrower spends them,
        so lending is funded by reserves; since the standing facility lends against bonds,
        liquidity is a cost (the facility rate) before it is a limit, and a bank's capital is
        what binds first (:meth:`capital_headroom`)."""
        config = self.model.config
        nondeposit = self.kind == NONDEPOSIT_LENDER
        pledgeable = np.where(nondeposit, 0.0, (1.0 - config.central_bank.collateral_haircut) * self.bonds)
        headroom = self.free_reserves() + np.maximum(pledgeable - self.standing_facility, 0.0)
        if config.banks.nondeposit_funding == "borrowing":
            # a non-deposit lender has no reserves to spare: what it may still borrow within
            # its limit on net assets is all it can lend (its cash is in that room)
            headroom = np.where(nondeposit, np.maximum(self.nondeposit_borrowing_room(), 0.0), headroom)
        return headroom

    def nondeposit_borrowing_room(self) -> np.ndarray:
        """What each lender may still borrow within ``banks.nondeposit_borrowing_limit`` times
        its net assets, less its net debt (bank borrowing less cash); negative when it is over
        the limit. Meaningful for non-deposit lenders funded by borrowing.

        Net debt, not the borrowing booked so far, because a lender's cash is settled against
        its bank only at the month's end (:meth:`fund_nondeposit_lenders`): cash it holds
        repays its borrowing first, and cash that has gone negative within the month (loans
        booked, facilities taken over) is borrowing it will draw. Counting only the booked
        borrowing ignored the second and let a lender over its limit relend its repayments.
        """
        limit = self.model.config.banks.nondeposit_borrowing_limit
        return limit * np.maximum(self.equity, 0.0) - (self.bank_borrowing - self.cash)

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


def deposits_by_bank(model: "SMEEconomy") -> np.ndarray:
    """Each bank's deposit liabilities: the balances of the SMEs, households, large firms
    and guarantors that bank with it (an overdrawn balance counts as a negative deposit,
    i.e. an overdraft the bank extends)."""
    banks, smes, balances = model.banks, model.smes, model.ledger.balances
    per_bank = np.zeros(banks.size)
    _sme_deposits_kernel(smes.bank, banks.deposit_home, smes.cash, per_bank)
    aggregate = balances["households"] + balances["large_firms"] + balances["rest_of_world"]
    per_bank += aggregate * banks.deposit_share
    per_bank += bincount_sums(guarantor_banks(model), weights=model.guarantors.cash, minlength=banks.size)
    return per_bank


@njit
def _sme_deposits_kernel(bank, deposit_home, cash, per_bank):  # pragma: no cover - compiled
    """``bincount(deposit_home[bank], weights=cash)`` in one pass, without the gathered array
    (summed in row order, as bincount does)."""
    for i in range(cash.size):
        per_bank[deposit_home[bank[i]]] += cash[i]


def guarantor_banks(model: "SMEEconomy") -> np.ndarray:
    """The large bank each guarantor keeps its deposits at (spread over the large banks)."""
    large = np.flatnonzero(model.banks.kind == LARGE_BANK)
    if large.size == 0:
        large = np.arange(model.banks.size)
    return large[np.arange(model.guarantors.size) % large.size]


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
    def deposits(self) -> float:
        return float(self._store.deposits[self.row])

    @property
    def reserves(self) -> float:
        return float(self._store.reserves[self.row])

    @property
    def capital_ratio(self) -> float:
        return float(self._store.capital_ratio[self.row])


add_row_properties(Bank, BANK_SCHEMA)
