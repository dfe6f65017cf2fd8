"""Outside equity is a claim on the firm (issue 13): the SME development fund (lever 6) and
venture funds (lever 12) buy shares, and the holder receives its share of dividends and of
the firm's value when it lists or closes."""

from __future__ import annotations

import numpy as np
import pytest

from sme_abm import SMEEconomy
from sme_abm.agents.sme import pay_dividends
from sme_abm.demography import exit_firms
from sme_abm.markets.capital import book_equity, sell_equity
from sme_abm.matrices import matrix_residuals


def _model(months: int = 3, **overrides) -> SMEEconomy:
    return SMEEconomy(n_smes=1_000, rng=4, simulation__mesa_agents=False,
                      economy__score_default_scale=0.0, economy__exogenous_default_rate=0.0, **overrides).run(months)


def _set_book_equity(model: SMEEconomy, row: int, value: float) -> None:
    smes = model.smes
    smes.cash[row], smes.capital[row], smes.receivables[row], smes.debt[row] = value, 0.0, 0.0, 0.0


def test_shares_are_bought_at_book_value_and_dilute_earlier_holders():
    model = _model()
    smes = model.smes
    row = int(np.flatnonzero((smes.public_equity_share == 0) & (smes.venture_equity_share == 0))[0])
    _set_book_equity(model, row, 3.0)
    bought = sell_equity(model, np.array([row]), 1.0, "public")
    assert bought[0] == pytest.approx(0.25)  # 1 for a firm worth 3 before the round
    assert smes.public_equity_share[row] == pytest.approx(0.25)
    smes.cash[row] += 1.0  # the ticket is paid in
    sell_equity(model, np.array([row]), 1.0, "venture")  # worth 4 before this round: 1/5
    assert smes.venture_equity_share[row] == pytest.approx(0.2)
    assert smes.public_equity_share[row] == pytest.approx(0.25 * 0.8)
    # a round never buys more than half a firm, however little its book value
    other = row + 1
    _set_book_equity(model, other, -2.0)
    smes.public_equity_share[other] = smes.venture_equity_share[other] = 0.0
    assert sell_equity(model, np.array([other]), 1.0, "venture")[0] == pytest.approx(0.5)


def test_the_fund_receives_its_share_of_dividends():
    model = _model()
    smes = model.smes
    smes.cash[:] = 10.0 * smes.costs + 1.0
    smes.profit[:] = 0.01
    smes.public_equity_share[:] = np.where(np.arange(smes.size) % 2 == 0, 0.4, 0.0).astype(np.float32)
    smes.venture_equity_share[:] = 0.0
    model.ledger.open_step()
    model.step_stats = {}
    pay_dividends(model)
    half = smes.size // 2 + smes.size % 2
    assert model.ledger.flows["fund_dividends"] == pytest.approx(0.4 * 0.01 * half, rel=1e-6)
    assert model.ledger.flows["sme_dividends"] == pytest.approx(0.01 * smes.size - 0.4 * 0.01 * half, rel=1e-6)
    assert model.step_stats["fund_equity_income"] == pytest.approx(0.4 * 0.01 * half, rel=1e-6)


def test_the_fund_is_paid_its_share_when_a_firm_lists_or_closes():
    model = _model()
    smes = model.smes
    solvent = np.flatnonzero(smes.cash > smes.debt + 0.01)
    lister, closer = int(solvent[0]), int(solvent[1])
    smes.public_equity_share[:] = 0.0
    smes.public_equity_share[[lister, closer]] = 0.3
    smes.loss_months[:] = 0
    smes.loss_months[closer] = model.config.economy.loss_months_to_exit
    smes.overdraft_months[:] = 0
    value_at_listing = float(book_equity(model, np.array([lister]))[0])
    assert value_at_listing > 0
    listing = np.zeros(smes.size, dtype=bool)
    listing[lister] = True
    model.ledger.open_step()
    model.step_stats = {}
    exit_firms(model, listing)
    flows = model.ledger.flow_table
    assert flows[("fund_exit_proceeds", "households", "government")] == pytest.approx(0.3 * value_at_listing)
    closing = flows[("fund_liquidation_proceeds", "smes", "government")]
    owners = flows[("owner_liquidation_proceeds", "smes", "households")]
    assert model.step_stats["exits_voluntary"] == 1
    assert closing > 0
    assert closing == pytest.approx(0.3 / 0.7 * owners)  # 30% to the fund, 70% to the founders
    assert model.step_stats["fund_equity_income"] == pytest.approx(0.3 * value_at_listing + closing)


def test_fund_equity_pays_back_and_the_balance_sheet_holds_the_stakes():
    """Over a run the development fund earns dividends and exit proceeds on its stakes (lever 6's
    equity is an asset of the government, not money given away), and the balance-sheet matrix
    gives the government its share of the SMEs' book equity, every row and column summing to zero."""
    model = SMEEconomy(n_smes=3_000, rng=2, simulation__mesa_agents=False, simulation__burn_in_months=0,
                       levers__p24_organisation__implementation_lag_months=0.0)
    income, holders = 0.0, 0
    for _ in range(36):
        model.step()
        income += model.recorder.rows[-1]["fund_equity_income"]
        residuals = matrix_residuals(model)
        assert max(residuals.values()) < 1e-9
    holders = int(np.count_nonzero(model.smes.public_equity_share > 0))
    assert model.government.equity_invested > 0
    assert holders > 0
    assert income > 0
    assert model.government.fund_equity_value() > 0
    off = SMEEconomy(n_smes=3_000, rng=2, simulation__mesa_agents=False, simulation__burn_in_months=0,
                     levers__p06_fiscal_funds__enabled=False).run(36)
    assert np.count_nonzero(off.smes.public_equity_share) == 0
    assert off.timeseries()["fund_equity_income"].sum() == 0
