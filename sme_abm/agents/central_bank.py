"""The central bank: sets the loan prime rate, re-lends to banks for SME
loans (lever 9), lends overnight to banks short of reserves (the lender of last
resort) and remits its profit to the government."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from ..kernels import bincount_sums
from .bank import NONDEPOSIT_LENDER

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy


class CentralBank(mesa.Agent):
    """The monetary authority; issuer of the settlement asset.

    Attributes:
        loan_prime_rate: One-year LPR in force (annual).
        claims_on_banks: Re-lending and standing-facility lending outstanding.
    """

    def __init__(self, model: "SMEEconomy") -> None:
        super().__init__(model)
        self.loan_prime_rate = model.config.central_bank.loan_prime_rate
        self.claims_on_banks = 0.0
        self.utilisation_trend = 0.0  # trend of SMEs' capacity utilisation (for the output gap)
        self.inflation = model.config.central_bank.inflation_target  # last 12 months' SME inflation, annual (as the rule reads it)

    def set_rates(self) -> None:
        """Phase 1: the LPR by a Taylor rule (Taylor 1993) with interest-rate smoothing,

            LPR_t = rho LPR_{t-1} + (1 - rho) (LPR* + phi_pi (pi - pi*) + phi_y gap),

        where pi is SME price inflation over the last 12 months, gap the output gap measured
        as SMEs' capacity utilisation less its own trend (an exponentially weighted mean with
        a five-year memory; utilisation has no trend when productivity grows, output has)
        and LPR* the configured ``loan_prime_rate``; then the base rate it passes through to
        SME loans (lever 9)."""
        model = self.model
        cb = model.config.central_bank
        rows = model.recorder.rows
        if not rows:
            self.loan_prime_rate = cb.loan_prime_rate
            self.inflation = cb.inflation_target
        else:
            recent = rows[-12:]
            inflation = math.prod(1.0 + row["inflation"] for row in recent) ** (12.0 / len(recent)) - 1.0
            self.inflation = inflation  # firms' expected inflation too (agents/sme.desired_investment)
            utilisation = rows[-1]["capacity_utilisation"]
            self.utilisation_trend = (utilisation if self.utilisation_trend <= 0
                                      else self.utilisation_trend + (utilisation - self.utilisation_trend) / 60.0)
            gap = utilisation - self.utilisation_trend
            target = cb.loan_prime_rate + cb.taylor_inflation * (inflation - cb.inflation_target) + cb.taylor_output * gap
            self.loan_prime_rate = max(cb.rate_smoothing * self.loan_prime_rate + (1.0 - cb.rate_smoothing) * target, 0.0)
        pass_through = model.policy.p09_monetary_transmission.lpr_pass_through
        model.sme_base_rate = cb.benchmark_rate + pass_through * (self.loan_prime_rate - cb.benchmark_rate)

    def relend(self, bank_rows: np.ndarray, amounts: np.ndarray) -> float:
        """Refinance part of banks' new SME loans; returns the total refinanced."""
        model = self.model
        total = model.ledger.pay("relending", "central_bank", "banks", amounts, payee_rows=bank_rows)
        model.banks.cb_borrowing += bincount_sums(bank_rows, weights=amounts, minlength=model.banks.size)
        self.claims_on_banks += total
        return total

    def settle_relending(self) -> None:
        """Banks pay interest on re-lending and on standing-facility borrowing and amortise
        re-lending; the central bank's interest income goes to the government."""
        model = self.model
        banks = model.banks
        rate = model.policy.p09_monetary_transmission.relending_rate
        rows = np.arange(banks.size)
        interest = rate / 12.0 * banks.cb_borrowing
        overnight = model.config.central_bank.standing_facility_rate / 12.0 * banks.standing_facility
        repayment = banks.cb_borrowing / model.config.banks.loan_maturity_months
        model.ledger.pay("relending_interest", "banks", "central_bank", interest, payer_rows=rows)
        model.ledger.pay("standing_facility_interest", "banks", "central_bank", overnight, payer_rows=rows)
        banks.income -= overnight
        repaid = model.ledger.pay("relending_repayment", "banks", "central_bank", repayment, payer_rows=rows)
        banks.cb_borrowing -= repayment
        self.claims_on_banks -= repaid
        model.ledger.pay("central_bank_profit", "central_bank", "government", float(interest.sum() + overnight.sum()))
        subsidy = max(model.config.banks.funding_cost - rate, 0.0) / 12.0 * banks.cb_borrowing.sum()
        model.government.record_tax_expenditure("p09_monetary_transmission", subsidy)

    def provide_liquidity(self) -> None:
        """Month-end lender of last resort: a deposit-taking bank whose reserves fall short
        of its requirement borrows the gap overnight from the standing facility; a bank
        with reserves above its requirement and a 1% buffer repays what it owes there first.
        So no deposit-taking bank ends a month below its reserve requirement."""
        model = self.model
        banks = model.banks
        deposits = banks.deposits
        reserves = banks.cash + deposits
        required = banks.required_reserves(deposits)
        eligible = banks.kind != NONDEPOSIT_LENDER
        short = np.where(eligible, np.maximum(required - reserves, 0.0), 0.0)
        repay = np.where(eligible, np.minimum(banks.standing_facility, banks.free_reserves(deposits)), 0.0)
        rows = np.arange(banks.size)
        drawn = model.ledger.pay("standing_facility_draws", "central_bank", "banks", short, payee_rows=rows)
        repaid = model.ledger.pay("standing_facility_repayments", "banks", "central_bank", repay, payer_rows=rows)
        banks.standing_facility += short - repay
        self.claims_on_banks += drawn - repaid
        model.step_stats["standing_facility_draws"] = drawn
