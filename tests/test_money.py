"""Money as bank deposits, the central bank as lender of last resort, and the
balance-sheet and transactions-flow matrices built from the books every step."""

from __future__ import annotations

import numpy as np
import pytest

from sme_abm import SMEEconomy
from sme_abm.agents.bank import NONDEPOSIT_LENDER, deposits_by_bank
from sme_abm.matrices import (
    FINANCIAL_ROWS, MATRIX_SECTORS, balance_sheet_matrix, matrix_residuals, transactions_flow_matrix,
)

BASELINE = "configs/baseline.toml"


def test_bank_deposits_are_the_depositors_balances():
    """One number in two balance sheets: what banks owe as deposits is what SMEs,
    households, large firms, guarantors and the rest of the world hold, bank by bank."""
    model = SMEEconomy(BASELINE, n_smes=2_000, rng=3).run(24)
    banks, smes, balances = model.banks, model.smes, model.ledger.balances
    held = (smes.cash.sum() + balances["households"] + balances["large_firms"] + balances["rest_of_world"]
            + model.guarantors.cash.sum())
    assert banks.deposits.sum() == pytest.approx(held, rel=1e-12)
    # an SME's deposits sit at its lender, or at a large bank if its lender takes no deposits
    row = int(np.flatnonzero(banks.kind[smes.bank] != NONDEPOSIT_LENDER)[0])
    before = banks.deposits.copy()
    smes.cash[row] += 1.0
    after = deposits_by_bank(model)
    assert after[smes.bank[row]] - before[smes.bank[row]] == pytest.approx(1.0)
    assert np.delete(after - before, smes.bank[row]) == pytest.approx(0.0, abs=1e-12)
    assert (banks.deposits[banks.kind == NONDEPOSIT_LENDER] == 0).all()


def test_a_payment_between_depositors_moves_reserves_not_bank_equity():
    """Households paying an SME: deposits and reserves move between their banks by clearing,
    bank equity does not change, and reserves of the system are unchanged."""
    model = SMEEconomy(BASELINE, n_smes=500, rng=1)
    banks = model.banks
    equity, reserves = banks.equity.copy(), banks.reserves.copy()
    model.ledger.pay("test_purchase", "households", "smes", np.full(model.smes.size, 0.01))
    assert np.allclose(banks.equity, equity, rtol=0, atol=1e-9)
    assert banks.reserves.sum() == pytest.approx(reserves.sum(), rel=1e-12)
    assert not np.allclose(banks.reserves, reserves)  # but reserves moved between banks


def test_banks_hold_the_government_bonds_that_deposits_fund_at_month_0():
    # month 0 is built under the baseline policy at full strength; without lever 24's phase-in
    # the requirement in force is that policy's (with it, small banks' lower ratio phases in)
    model = SMEEconomy(BASELINE, n_smes=2_000, rng=1, levers__p24_organisation__implementation_lag_months=0.0)
    banks, government = model.banks, model.government
    taking = banks.kind != NONDEPOSIT_LENDER
    required = banks.required_reserves()
    reserves = banks.reserves
    assert np.all(reserves[taking] >= required[taking] - 1e-9)  # required plus excess reserves
    assert government.debt == pytest.approx(banks.bonds.sum() + government.household_bonds)
    assert government.debt > banks.loans.sum()  # deposits fund bonds as well as SME loans
    equity = banks.equity
    assert np.all(equity[taking] > 0)
    # loans between banks (non-deposit lenders' borrowing) are an asset of one and a debt of another
    assert np.allclose(equity, reserves + banks.loans + banks.foreclosed + banks.bonds + banks.interbank_claims
                       - banks.deposits - banks.cb_borrowing - banks.standing_facility - banks.bank_borrowing)
    assert banks.interbank_claims.sum() == pytest.approx(banks.bank_borrowing.sum())


def test_the_lender_of_last_resort_keeps_reserves_at_the_requirement():
    """Households move their deposits away from one bank (a deposit run): clearing drains
    its reserves, its equity is untouched, and it borrows the gap overnight from the
    standing facility at the facility rate; without the facility its reserves stay short."""
    model = SMEEconomy(BASELINE, n_smes=2_000, rng=1)
    banks = model.banks
    bank = int(np.argmax(banks.deposit_share))
    equity = banks.equity.copy()
    share = banks.deposit_share.copy()
    share[bank] = 0.0
    banks.deposit_share = share / share.sum()
    assert np.allclose(banks.equity, equity)  # a run moves liquidity, not capital
    deposits = banks.deposits
    shortfall = banks.required_reserves(deposits)[bank] - (banks.cash[bank] + deposits[bank])
    assert shortfall > 100.0
    owed = banks.standing_facility.copy()  # what banks owed the facility before the run
    model.central_bank.provide_liquidity()
    assert banks.standing_facility[bank] - owed[bank] == pytest.approx(shortfall)
    assert banks.reserves[bank] == pytest.approx(banks.required_reserves()[bank])
    assert model.central_bank.claims_on_banks == pytest.approx(
        banks.cb_borrowing.sum() + banks.standing_facility.sum(), rel=1e-12)
    owed = banks.standing_facility.sum()
    model.step()
    assert model.ledger.flows["standing_facility_interest"] == pytest.approx(
        model.config.central_bank.standing_facility_rate / 12.0 * owed, rel=1e-9)
    deposits = banks.deposits
    assert banks.cash[bank] + deposits[bank] >= banks.required_reserves(deposits)[bank] - 1e-9


@pytest.mark.parametrize("config, overrides", [(BASELINE, {}), ("configs/shock.toml", {}), ("configs/no-policy.toml", {}),
                                               (BASELINE, {"markets__sme_input_sourcing": "proportional_all"})])
def test_balance_sheet_and_flow_matrices_sum_to_zero_every_step(config, overrides):
    """Every financial row of the balance-sheet matrix and every row and column of the
    transactions-flow matrix sums to zero, within 1e-9 of total assets, every month."""
    model = SMEEconomy(config, n_smes=1_500, rng=5, **overrides)
    worst: dict[str, float] = {}
    for _ in range(36):
        model.step()
        for key, value in matrix_residuals(model).items():
            worst[key] = max(worst.get(key, 0.0), value)
    assert max(worst.values()) < 1e-9, worst
    balance = balance_sheet_matrix(model)
    sectors = list(MATRIX_SECTORS)
    # the matrix is not empty: deposits, loans and bonds are real positions with both sides
    for row in ("deposits", "reserves", "SME loans", "government bonds", "trade credit"):
        assert balance.loc[row, sectors].abs().max() > 1.0, row
    assert set(FINANCIAL_ROWS) <= set(balance.index)
    # national wealth is the capital stock
    assert balance.loc["net worth", "Sigma"] == pytest.approx(-balance.loc["tangible capital", "Sigma"])
    flows = transactions_flow_matrix(model)
    assert {"current: wages", "financial: new_loans", "capital: investment"} <= set(flows.index)


def test_the_flow_matrix_catches_money_that_moves_outside_the_ledger():
    model = SMEEconomy(BASELINE, n_smes=500, rng=2)
    model.step()
    model.smes.cash[0] += 3.0  # money appears without a flow
    assert matrix_residuals(model)["flow_columns"] > 1e-9


def test_dividends_come_out_of_profit_never_out_of_a_loan():
    """SME owners take at most the month's profit: a firm with cash above its buffer from a
    new loan and no profit pays nothing; with profit, at most that profit."""
    from sme_abm.agents.sme import pay_dividends

    model = SMEEconomy(BASELINE, n_smes=1_000, rng=4)
    model.step()
    smes = model.smes
    smes.cash[:] = 10.0 * smes.costs + 1.0  # far above the buffer, as after a large loan
    smes.profit[:] = np.where(np.arange(smes.size) % 2 == 0, 0.0, 0.01)
    before = smes.cash.copy()
    model.ledger.open_step()
    pay_dividends(model)
    paid = before - smes.cash
    assert (paid[::2] == 0).all()
    assert np.allclose(paid[1::2], 0.01)
    # owners are the households and, for its stakes, the SME development fund (lever 6)
    paid_out = model.ledger.flows["sme_dividends"] + model.ledger.flows.get("fund_dividends", 0.0)
    assert paid_out == pytest.approx(0.01 * (smes.size // 2))


def test_trade_balances_so_no_foreign_claim_piles_up():
    """The rest of the world spends on exports (SMEs' for their share, large firms' for the
    rest) the yuan it earned from imports the month before."""
    model = SMEEconomy(BASELINE, n_smes=2_000, rng=1, simulation__mesa_agents=False)
    held = []
    for _ in range(120):
        opening = model.ledger.balances["rest_of_world"]
        model.step()
        flows = model.ledger.flows
        assert flows["exports"] + flows["exports_large_firms"] == pytest.approx(max(opening, 0.0), rel=1e-12)
        assert model.ledger.balances["rest_of_world"] == pytest.approx(flows["imports"], rel=1e-12)
        held.append(model.ledger.balances["rest_of_world"])
    assert max(held) < 2.0 * np.median(held)  # no drift: it holds one month's import receipts
