"""Stock-flow consistent bookkeeping: every yuan moves through :class:`Ledger`.

Money is a single settlement asset. Every holder has a cash account: the SMEs,
banks and guarantors as arrays (one row per agent), and the aggregate sectors
(households, large firms, government, central bank, rest of the world) as
scalars. The central bank is the issuer, so the sum of all cash accounts is
zero at all times; accounts of aggregate sectors may be negative (government
debt to the central bank, a foreign position).

Each phase moves money only through :meth:`Ledger.pay`, which debits the payer,
credits the payee and records the flow under a name. At the end of a step
:func:`check_identities` verifies, relative to total assets:

1. money is conserved: the cash accounts sum to zero;
2. each sector's cash changed by exactly its recorded net flows;
3. the SMEs' debt equals the banks' loan books; guaranteed SME debt equals the
   guarantors' outstanding guarantees; SME receivables equal the payables of
   large firms and government; banks' central-bank borrowing equals the
   central bank's claims on them; government debt equals the bonds households
   and banks hold.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from .agents.bank import NONDEPOSIT_LENDER
from .errors import AccountingError
from .kernels import bincount_sums, njit

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy

ARRAY_SECTORS = ("smes", "banks", "guarantors")
SCALAR_SECTORS = ("households", "large_firms", "government", "central_bank", "rest_of_world")
SECTORS = ARRAY_SECTORS + SCALAR_SECTORS

#: Largest accepted accounting residual, relative to total assets.
TOLERANCE = 1e-9


class Ledger:
    """Cash accounts of the aggregate sectors and the record of every flow.

    Args:
        model: The economy whose SME, bank and guarantor arrays hold the
            array sectors' cash.
    """

    def __init__(self, model: "SMEEconomy") -> None:
        self.model = model
        self.balances: dict[str, float] = {name: 0.0 for name in SCALAR_SECTORS}
        self.flows: dict[str, float] = defaultdict(float)
        #: The step's flows by (name, payer, payee): the transactions-flow matrix's entries.
        self.flow_table: dict[tuple[str, str, str], float] = defaultdict(float)
        self.net: dict[str, float] = {name: 0.0 for name in SECTORS}
        self.gross_in: dict[str, float] = {name: 0.0 for name in SECTORS}
        self.opening: dict[str, float] = {}

    # -- moving money ------------------------------------------------------
    def _cash_array(self, sector: str) -> np.ndarray:
        if sector == "smes":
            return self.model.smes.cash
        if sector == "banks":
            return self.model.banks.cash
        return self.model.guarantors.cash

    def _apply(self, sector: str, amount: float | np.ndarray, total: float, rows: np.ndarray | None,
               sign: float, sums: np.ndarray | None = None) -> None:
        if sector in SCALAR_SECTORS:
            self.balances[sector] += sign * total
            return
        cash = self._cash_array(sector)
        ufunc = np.add if sign > 0 else np.subtract
        if rows is None:
            ufunc(cash, amount, out=cash)
            return
        rows = np.asarray(rows)
        if np.ndim(amount) == 0:
            # one amount per row: a broadcast view, so no array of copies is made
            amount = np.broadcast_to(np.float64(amount), rows.shape)  # type: ignore[arg-type]
        amount = np.asarray(amount, dtype=np.float64)
        if rows.ndim != 1 or amount.shape != rows.shape or rows.dtype.kind not in "iu":
            self._apply_with_numpy(cash, amount, rows, ufunc, sector == "smes")
        elif sector == "smes":
            if not _apply_to_rows_kernel(cash, rows, amount, sign > 0):
                self._apply_with_numpy(cash, amount, rows, ufunc, True)
        else:
            ufunc(cash, bincount_sums(rows, amount, cash.size) if sums is None else sums, out=cash)

    @staticmethod
    def _apply_with_numpy(cash: np.ndarray, amount: np.ndarray, rows: np.ndarray, ufunc: np.ufunc,
                          distinct_rows: bool) -> None:
        """What the kernels do, in numpy (for rows they do not take: out of range, not 1-d
        integers); raises numpy's errors for bad rows."""
        if distinct_rows:
            cash[rows] = ufunc(cash[rows], amount)
        else:
            ufunc(cash, np.bincount(rows, weights=amount, minlength=cash.size), out=cash)

    def pay(
        self,
        flow: str,
        payer: str,
        payee: str,
        amount: float | np.ndarray,
        payer_rows: np.ndarray | int | None = None,
        payee_rows: np.ndarray | int | None = None,
        *,
        payer_sums: np.ndarray | None = None,
        payee_sums: np.ndarray | None = None,
    ) -> float:
        """Move money from one sector to another and record the flow.

        Args:
            flow: Name of the flow (``"wages"``, ``"loan_interest"``, ...).
            payer: Paying sector, one of :data:`SECTORS`.
            payee: Receiving sector.
            amount: A scalar, or an array of amounts (one per paying or
                receiving row).
            payer_rows: For an array sector, the row of each amount (for SMEs,
                None means the array is aligned with all SMEs). For banks and
                guarantors, rows may repeat.
            payee_rows: Likewise for the payee.
            payer_sums: For banks or guarantors paying from ``payer_rows``, the total
                per bank or guarantor (``bincount(payer_rows, weights=amount)``, in
                row order) when the caller has already made it for its own books;
                the ledger then does not sum the amounts by row a second time.
            payee_sums: Likewise for the payee.

        Returns:
            The total amount moved.
        """
        if isinstance(payer_rows, slice):
            payer_rows = None if payer_rows == slice(None) else payer_rows
        if isinstance(payee_rows, slice):
            payee_rows = None if payee_rows == slice(None) else payee_rows
        if isinstance(payer_rows, (int, np.integer)):
            payer_rows = np.asarray([payer_rows])
            amount = np.atleast_1d(amount)
        if isinstance(payee_rows, (int, np.integer)):
            payee_rows = np.asarray([payee_rows])
            amount = np.atleast_1d(amount)
        # np.sum's own reduction, without its Python-level dispatch for the common case
        total = float(np.add.reduce(amount) if type(amount) is np.ndarray and amount.ndim == 1
                      and amount.dtype == np.float64 else np.sum(amount))
        if np.ndim(amount) == 0:
            # a scalar paid to or from several rows is paid once per row (all SMEs when rows is None)
            rows = payer_rows if payer_rows is not None else payee_rows
            if rows is not None:
                total *= np.size(rows)
            elif "smes" in (payer, payee):
                total *= self.model.smes.size
            elif payer in ARRAY_SECTORS or payee in ARRAY_SECTORS:
                raise ValueError("a scalar payment to or from banks or guarantors needs rows")
        self._apply(payer, amount, total, payer_rows, -1.0, payer_sums)
        self._apply(payee, amount, total, payee_rows, +1.0, payee_sums)
        self.flows[flow] += total
        self.flow_table[(flow, payer, payee)] += total
        self.net[payer] -= total
        self.net[payee] += total
        self.gross_in[payee] += total
        return total

    def transfer_within(self, flow: str, sector: str, paid: np.ndarray, received: np.ndarray) -> float:
        """Move money between the rows of one array sector, each row paying ``paid`` and
        receiving ``received`` (arrays over all rows, with equal sums): trade among SMEs,
        which a single :meth:`pay` cannot record because a buyer pays many sellers.

        Returns:
            The total moved.
        """
        total = float(np.add.reduce(paid))
        received_total = float(np.add.reduce(received))
        if abs(total - received_total) > 1e-9 * max(abs(total), 1.0):
            raise ValueError(f"{flow}: {total} paid but {received_total} received")
        cash = self._cash_array(sector)
        cash -= paid
        cash += received
        self.flows[flow] += total
        self.flow_table[(flow, sector, sector)] += total
        self.gross_in[sector] += total
        return total

    # -- per-step bookkeeping ----------------------------------------------
    def cash_by_sector(self) -> dict[str, float]:
        stocks = {name: float(self._cash_array(name).sum()) for name in ARRAY_SECTORS}
        stocks.update(self.balances)
        return stocks

    def open_step(self) -> None:
        """Remember opening stocks and clear the step's flow record."""
        self.opening = self.cash_by_sector()
        self.flows = defaultdict(float)
        self.flow_table = defaultdict(float)
        self.net = {name: 0.0 for name in SECTORS}
        self.gross_in = {name: 0.0 for name in SECTORS}


@njit
def _apply_to_rows_kernel(cash, rows, amount, add):  # pragma: no cover - compiled
    """``cash[rows] = cash[rows] + amount`` (or ``-``) for SME rows, without the gathered and
    computed temporaries. All new values are computed before any is stored, as in numpy, so
    a repeated row ends with its last value, as numpy's fancy assignment leaves it. Returns
    False, changing nothing, if a row is out of range (the caller then lets numpy raise)."""
    n = cash.size
    for j in range(rows.size):
        if rows[j] < 0 or rows[j] >= n:
            return False
    new = np.empty(rows.size)
    for j in range(rows.size):
        new[j] = cash[rows[j]] + amount[j] if add else cash[rows[j]] - amount[j]
    for j in range(rows.size):
        cash[rows[j]] = new[j]
    return True


def total_assets(model: "SMEEconomy", cash: dict[str, float] | None = None,
                 receivables: float | None = None) -> float:
    """The scale against which accounting residuals are judged.

    ``cash`` (:meth:`Ledger.cash_by_sector`) and ``receivables`` (the SMEs' total) may be
    passed when the caller has just computed them.
    """
    smes = model.smes
    cash = model.ledger.cash_by_sector() if cash is None else cash
    receivables = smes.receivables.sum() if receivables is None else receivables
    positive_cash = math.fsum(max(v, 0.0) for v in cash.values())
    return float(
        positive_cash + smes.capital.sum() + receivables + model.banks.loans.sum() + model.government.debt + 1.0
    )


def check_identities(model: "SMEEconomy", raise_on_failure: bool = True) -> float:
    """Check every accounting identity; return the largest relative residual.

    Raises:
        AccountingError: If ``raise_on_failure`` and a residual exceeds
            :data:`TOLERANCE`.
    """
    ledger = model.ledger
    closing = ledger.cash_by_sector()
    receivables = model.smes.receivables.sum()
    scale = total_assets(model, closing, receivables)
    residuals: dict[str, float] = {"money": abs(math.fsum(closing.values()))}
    for sector in SECTORS:
        change = closing[sector] - ledger.opening.get(sector, closing[sector])
        residuals[f"flows:{sector}"] = abs(change - ledger.net[sector])
    smes, banks, guarantors = model.smes, model.banks, model.guarantors
    residuals["loans"] = abs(smes.debt.sum() - banks.loans.sum())
    residuals["guarantees"] = abs(smes.guaranteed.sum() - guarantors.outstanding.sum())
    residuals["receivables"] = abs(receivables - math.fsum(model.payables.values()))
    residuals["central_bank_lending"] = abs(banks.cb_borrowing.sum() + banks.standing_facility.sum()
                                            - model.central_bank.claims_on_banks)
    if model.config.banks.nondeposit_funding == "borrowing":
        # a non-deposit lender has no central-bank account: it ends the month with its bank
        # borrowing covering what it lent, never with negative cash
        residuals["nondeposit_cash"] = -float(banks.cash[banks.kind == NONDEPOSIT_LENDER].min(initial=0.0))
    government = model.government
    residuals["bonds"] = abs(government.debt - government.household_bonds - banks.bonds.sum())
    worst_key = max(residuals, key=residuals.__getitem__)
    worst = residuals[worst_key] / scale
    if raise_on_failure and not worst <= TOLERANCE:
        raise AccountingError(
            f"step {model.month}: identity '{worst_key}' off by {residuals[worst_key]:.6g} "
            f"({worst:.3g} of total assets)"
        )
    return worst
