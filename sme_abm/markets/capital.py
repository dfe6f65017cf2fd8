"""Direct finance (phase 6): venture capital and listing (lever 12).

Venture funds (owned by households) invest in innovative, productive SMEs;
high-quality medium firms list on the stock market, which is an exit from the
SME population but not a failure (handled in :mod:`sme_abm.demography`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..agents.sme import MEDIUM

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy


def provide_direct_finance(model: "SMEEconomy") -> np.ndarray:
    """Venture deals this month; returns the mask of firms that list."""
    smes, rng, lever = model.smes, model.rng, model.policy.p12_direct_finance
    if smes.size == 0:
        return np.zeros(0, dtype=bool)
    median, upper_quartile = np.quantile(smes.productivity, [0.5, 0.75])
    productive = smes.productivity >= upper_quartile
    venture = smes.innovative & productive & (rng.random(smes.size) < lever.vc_probability)
    rows = np.flatnonzero(venture)
    model.ledger.pay("venture_capital", "households", "smes", np.full(rows.size, lever.vc_investment), payee_rows=rows)
    smes.equity_raised[rows] += lever.vc_investment
    model.step_stats["venture_deals"] = int(rows.size)

    eligible = (smes.size_class >= MEDIUM) & (smes.profit > 0) & (smes.productivity >= median)
    return eligible & (rng.random(smes.size) < lever.listing_probability)
