"""The labour market (phase 1): the monthly wage SMEs pay per worker.

Wages follow prices, productivity and the tightness of the labour market, the wage rule
of the Keynes+Schumpeter family (Dosi, Fagiolo and Roventini 2010, JEDC 34, eq. 12: wage
growth answers consumer-price inflation, average productivity growth and the change in
unemployment), here with the employment gap of a wage Phillips curve in place of the
change in unemployment::

    g_w = indexation * inflation[t-1] + productivity_passthrough * g_A[t-1]
          + tightness * (employment_rate[t-1] - (1 - natural_unemployment))

``g_A`` is the growth of SMEs' average labour productivity (real output per worker),
smoothed over about a year; the employment rate is SME employment over the labour force,
which is set where the economy starts (the end of the burn-in, or month 0) so that it
starts at the natural rate. With full pass-through unit labour costs stay put as
productivity rises, so productivity gains reach households as real wages (the labour
share is constant) instead of as lost jobs. Government spending plans (other spending,
procurement) are indexed to the wage: public pay and transfers follow private pay.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

#: Weight of the latest month in the smoothed productivity growth (about a year's memory).
SMOOTHING = 1.0 / 12.0


def set_wage(model: "SMEEconomy") -> None:
    """Phase 1: this month's wage from last month's inflation, productivity growth and
    employment rate."""
    labour = model.config.labour
    rows = model.recorder.rows
    if not rows or model.labour_force <= 0:
        return
    last = rows[-1]
    employment, real_output = last["employment"], last["real_output"]
    productivity = real_output / employment if employment > 0 else model.average_productivity
    growth = math.log(productivity / model.average_productivity) if model.average_productivity > 0 else 0.0
    model.productivity_growth = (1.0 - SMOOTHING) * model.productivity_growth + SMOOTHING * growth
    model.average_productivity = productivity
    gap = employment / model.labour_force - (1.0 - labour.natural_unemployment)
    change = (labour.indexation * last["inflation"] + labour.productivity_passthrough * model.productivity_growth
              + labour.tightness * gap)
    model.wage *= 1.0 + change


def start_labour_market(model: "SMEEconomy") -> None:
    """Where the economy starts: the labour force puts employment at the natural rate, and
    productivity is measured from here."""
    smes = model.smes
    employment = float(smes.employment.sum())
    real_output = float((smes.sales / smes.price).sum())
    model.labour_force = employment / (1.0 - model.config.labour.natural_unemployment)
    model.average_productivity = real_output / employment if employment > 0 else 0.0
    model.productivity_growth = 0.0
