"""Direct finance (phase 6): venture capital and listing (lever 12).

Venture funds (owned by households) invest in innovative, productive SMEs;
high-quality medium firms list on the stock market, which is an exit from the
SME population but not a failure (handled in :mod:`sme_abm.demography`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..agents.sme import MEDIUM
from ..kernels import njit, order_statistics, uniform

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy


def quantiles(values: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """``np.quantile(values, q)`` (linear method) for a 1-d float array, with the same bits.

    ``np.quantile`` partitions its copy at all the ranks it needs (and at the
    first and last) in one ``np.partition`` call, which at 1e5 values takes
    about ten times as long as one single-rank partition. Here the needed
    order statistics come from :func:`~sme_abm.kernels.order_statistics`
    (which partitions only a bracket around them: a quarter of the time of
    two single-rank partitions at 1e5 values), and the interpolation repeats
    numpy's (virtual index, gamma and ``_lerp`` of the linear method). Arrays
    with NaN are left to ``np.quantile``. (Should both 0.0 and -0.0 sit at a
    needed rank, either may be returned, as numpy's partition treats them as
    equal; productivity is positive.)
    """
    values = np.asarray(values, dtype=float)
    n = values.size
    if values.ndim != 1 or n == 0 or np.isnan(values).any():
        return np.quantile(values, q)
    qs = np.asarray(q, dtype=float)
    virtual = (n - 1) * qs  # numpy's virtual index for the linear method
    previous = np.floor(virtual)
    following = previous + 1
    above, below = virtual >= n - 1, virtual < 0
    previous[above] = following[above] = -1  # numpy's convention; -1 is rank n - 1
    previous[below] = following[below] = 0
    previous_i, following_i = previous.astype(np.intp), following.astype(np.intp)
    ranks = sorted({int(i) % n for i in np.concatenate([previous_i, following_i])})
    found = dict(zip(ranks, order_statistics(values, ranks)))
    low = np.array([found[int(i) % n] for i in previous_i])
    high = np.array([found[int(i) % n] for i in following_i])
    gamma = virtual - previous_i
    diff = high - low
    result = np.add(low, diff * gamma)
    np.subtract(high, diff * (1 - gamma), out=result, where=gamma >= 0.5)
    return result


def book_equity(model: "SMEEconomy", rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Book value of SMEs ``rows``: cash, capital and receivables less debt."""
    smes = model.smes
    if isinstance(rows, slice) and rows == slice(None):
        out = np.empty(smes.size)
        _book_equity_kernel(smes.cash, smes.capital, smes.receivables, smes.debt, out)
        return out
    return smes.cash[rows] + smes.capital[rows] + smes.receivables[rows] - smes.debt[rows]


@njit
def _book_equity_kernel(cash, capital, receivables, debt, out):  # pragma: no cover - compiled
    """:func:`book_equity` of every SME in one pass; the numpy it replaced:
    ``cash + capital + receivables - debt`` (added left to right)."""
    for i in range(cash.size):
        out[i] = cash[i] + capital[i] + receivables[i] - debt[i]


def sell_equity(model: "SMEEconomy", rows: np.ndarray, ticket: float, holder: str) -> np.ndarray:
    """New shares of SMEs ``rows`` (distinct) bought for ``ticket`` each by ``holder``
    (``"public"``: the SME development fund, lever 6; ``"venture"``: venture funds, lever 12),
    priced at book value, at least the ticket (one round never buys more than half a firm).

    The buyer gets ``ticket / (pre + ticket)`` of the firm, where ``pre`` is that price
    before the round, and every existing owner keeps ``pre / (pre + ticket)`` of what it
    held. Call before the ticket is paid in. Returns the shares bought.
    """
    smes = model.smes
    pre = np.maximum(book_equity(model, rows), ticket)
    bought = ticket / (pre + ticket)
    kept = 1.0 - bought
    smes.public_equity_share[rows] *= kept
    smes.venture_equity_share[rows] *= kept
    column = smes.public_equity_share if holder == "public" else smes.venture_equity_share
    column[rows] += bought
    return bought


def pay_outside_owners(model: "SMEEconomy", rows: np.ndarray, value: np.ndarray, flow: str,
                       payer: str = "smes") -> np.ndarray:
    """The SME development fund's share of ``value`` (what the owners of exiting firms
    ``rows`` receive: a liquidation's remainder, or the value of their stake at listing),
    to the government through ledger flow ``flow``, paid by ``payer``: the SMEs on
    liquidation, households when they buy the stake at listing. Venture funds are owned by households,
    so their share stays with households; it is counted in ``venture_exit_value``.
    Returns the fund's part."""
    smes = model.smes
    value = np.maximum(value, 0.0)
    to_fund = value * smes.public_equity_share[rows]
    model.ledger.pay(flow, payer, "government", to_fund, payer_rows=rows if payer == "smes" else None)
    stats = model.step_stats
    stats["fund_equity_income"] = stats.get("fund_equity_income", 0.0) + float(to_fund.sum())
    stats["venture_exit_value"] = stats.get("venture_exit_value", 0.0) + float(
        np.dot(value, smes.venture_equity_share[rows]))
    return to_fund


def provide_direct_finance(model: "SMEEconomy") -> np.ndarray:
    """Venture deals this month; returns the mask of firms that list."""
    smes, rng, lever = model.smes, model.rng, model.policy.p12_direct_finance
    if smes.size == 0:
        return np.zeros(0, dtype=bool)
    median, upper_quartile = quantiles(smes.productivity, (0.5, 0.75))
    draws = uniform(rng, 2 * smes.size)  # rng.random(n) twice: the same numbers
    venture_draws, listing_draws = draws[:smes.size], draws[smes.size:]
    venture, listing = np.empty(smes.size, dtype=bool), np.empty(smes.size, dtype=bool)
    _direct_finance_kernel(smes.productivity, smes.innovative, smes.size_class, smes.profit, venture_draws,
                           listing_draws, float(median), float(upper_quartile), float(lever.vc_probability),
                           float(lever.listing_probability), venture, listing)
    rows = np.flatnonzero(venture)
    sell_equity(model, rows, lever.vc_investment, "venture")
    model.ledger.pay("venture_capital", "households", "smes", np.full(rows.size, lever.vc_investment), payee_rows=rows)
    smes.equity_raised[rows] += lever.vc_investment
    model.step_stats["venture_deals"] = int(rows.size)
    return listing


@njit
def _direct_finance_kernel(productivity, innovative, size_class, profit, venture_draws, listing_draws, median,
                           upper_quartile, vc_probability, listing_probability, venture,
                           listing):  # pragma: no cover - compiled
    """Who gets venture capital and who lists, in one pass; the numpy it replaced (the
    same draws, made in the same order)::

        venture = innovative & (productivity >= upper_quartile) & (venture_draws < vc_probability)
        eligible = (size_class >= MEDIUM) & (profit > 0) & (productivity >= median)
        listing = eligible & (listing_draws < listing_probability)
    """
    for i in range(productivity.size):
        a = productivity[i]
        venture[i] = innovative[i] & (a >= upper_quartile) & (venture_draws[i] < vc_probability)
        eligible = (size_class[i] >= MEDIUM) & (profit[i] > 0) & (a >= median)
        listing[i] = eligible & (listing_draws[i] < listing_probability)
