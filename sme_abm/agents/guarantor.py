"""Financing guarantors and the national re-guarantee fund.

A guarantor guarantees SME loans for a fee, within a leverage limit on its
net assets (cash), and pays its share of losses on defaulted guaranteed loans.
The last row is the national re-guarantee fund, which guarantees nothing
directly but reimburses guarantors for its share of losses (lever 13's
"4321" split).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import mesa
import numpy as np

from ..kernels import bincount_sums

from .columns import ColumnStore, add_row_properties

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

GUARANTOR_SCHEMA: dict[str, object] = {
    "cash": np.float64,
    "outstanding": np.float64,
    "small_micro_focus": np.bool_,
    "is_reguarantee_fund": np.bool_,
    "fee_income": np.float64,
    "losses": np.float64,
    "base_capital": np.float64,
}


class GuaranteeSplit(NamedTuple):
    bank_share: float
    reguarantee_share: float
    government_share: float
    guarantor_share: float


def guarantee_split(model: "SMEEconomy") -> GuaranteeSplit:
    """Lever 13's loss shares in force: the bank, the re-guarantee fund and the local
    government take theirs and the guarantor bears the rest,
    ``1 - bank_share - reguarantee_share - government_share`` (the "4" of "4321" at the
    defaults). The guarantor's share is not a parameter, so the four always sum to one; a
    config whose three shares exceed one is refused when it is read
    (:func:`sme_abm.config.check_guarantee_shares`), and at any intensity between a lever's
    off and configured values the three stay within one (both ends do).
    """
    g = model.policy.p13_financing_guarantee
    bank, reguarantee, government = g.bank_share, g.reguarantee_share, g.government_share
    return GuaranteeSplit(bank, reguarantee, government, max(1.0 - bank - reguarantee - government, 0.0))


class GuarantorBook(ColumnStore):
    """All guarantors' balance sheets; the last row is the re-guarantee fund."""

    def __init__(self, size: int = 0) -> None:
        super().__init__(GUARANTOR_SCHEMA, size)

    @property
    def n_direct(self) -> int:
        """Guarantors that guarantee loans (all rows but the re-guarantee fund)."""
        return self.size - 1

    @property
    def net_assets(self) -> np.ndarray:
        return self.cash

    def assignment_pools(self) -> tuple[np.ndarray, np.ndarray]:
        """The guarantors small/micro firms are assigned among, and those other firms are
        (each pool is all direct guarantors when it would be empty)."""
        direct = np.arange(self.n_direct)
        focused = direct[self.small_micro_focus[: self.n_direct]]
        general = direct[~self.small_micro_focus[: self.n_direct]]
        return (focused if focused.size else direct), (general if general.size else direct)

    def assign(self, firm_ids: np.ndarray, small_micro: np.ndarray) -> np.ndarray:
        """Each firm's guarantor: small/micro firms among the guarantors focused on them,
        others among the rest (a stable choice by firm id)."""
        focused, general = self.assignment_pools()
        return np.where(small_micro, focused[firm_ids % focused.size], general[firm_ids % general.size]).astype(np.int16)

    def leverage_limit(self) -> np.ndarray:
        lever = self.model.policy.p13_financing_guarantee
        return np.where(self.small_micro_focus, lever.leverage_limit_small_micro, lever.leverage_limit)

    def leverage(self) -> np.ndarray:
        return self.outstanding / np.maximum(self.cash, 1e-9)

    def capacity(self) -> np.ndarray:
        """New guarantees each guarantor can still write within its leverage limit."""
        room = self.leverage_limit() * np.maximum(self.cash, 0.0) - self.outstanding
        room[self.is_reguarantee_fund] = 0.0
        return np.maximum(room, 0.0)

    def receive_fees(self, guarantor_of_sme: np.ndarray, fees: np.ndarray) -> None:
        # integer indices: much faster than boolean-mask indexing, same elements in the same order
        payers = np.flatnonzero(guarantor_of_sme >= 0)
        rows = guarantor_of_sme[payers]
        amounts = fees[payers]
        per_guarantor = bincount_sums(rows, weights=amounts, minlength=self.size)
        self.model.ledger.pay("guarantee_fees", "smes", "guarantors", amounts,
                              payer_rows=payers, payee_rows=rows, payee_sums=per_guarantor)
        self.fee_income += per_guarantor

    def release(self, guarantor_rows: np.ndarray, amounts: np.ndarray) -> None:
        covered = np.flatnonzero(guarantor_rows >= 0)
        self.outstanding -= bincount_sums(guarantor_rows[covered], weights=amounts[covered], minlength=self.size)


class Guarantor(mesa.Agent):
    """One guarantor (or the re-guarantee fund); its state is its row in :class:`GuarantorBook`."""

    def __init__(self, model: "SMEEconomy", row: int) -> None:
        super().__init__(model)
        self.row = row
        self._store = model.guarantors

    @property
    def leverage(self) -> float:
        return float(self._store.leverage()[self.row])

    @property
    def leverage_limit(self) -> float:
        return float(self._store.leverage_limit()[self.row])


add_row_properties(Guarantor, GUARANTOR_SCHEMA)
