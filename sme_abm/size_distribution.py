"""The firm-size distribution's upper tail and its high-growth firms: the statistics the run
summary, the validation report and the firm-dynamics report share. Apart from
:mod:`sme_abm.validation` so that the recorder can use them without importing the runner above it."""

from __future__ import annotations

import numpy as np
import pandas as pd

ZIPF_TAIL_QUANTILE = 0.9  # the upper 10% of firms by employment form the fitted tail


def zipf_exponent(sizes: np.ndarray, tail_quantile: float = ZIPF_TAIL_QUANTILE) -> float:
    """Maximum-likelihood exponent alpha of P(size > s) ~ s^-alpha on the upper tail.

    Uses the ``powerlaw`` package's continuous power-law fit with ``xmin`` fixed
    at the ``tail_quantile`` of the positive sizes (the package's exponent is the
    density's, ``1 + alpha``). The package searches density exponents up to 3 by
    default, which reports every thinner tail as alpha = 2; the range here is wide
    enough that the fit is the closed-form MLE (Clauset, Shalizi and Newman 2009,
    SIAM Review 51, eq. 3.1) for any tail a firm population can have.
    """
    import powerlaw

    sizes = np.asarray(sizes, dtype=float)
    sizes = sizes[sizes > 0]
    if sizes.size < 20:
        return float("nan")
    xmin = float(np.quantile(sizes, tail_quantile))
    fit = powerlaw.Fit(sizes, xmin=xmin, verbose=False, parameter_ranges={"alpha": [1.0, 21.0]})
    return float(fit.power_law.alpha - 1.0)


#: The OECD-Eurostat high-growth enterprise: 10 or more employees at the start, and annualised
#: employment growth above 20% over three years (Eurostat-OECD Manual on Business Demography
#: Statistics, 2007).
HIGH_GROWTH_MIN_EMPLOYMENT, HIGH_GROWTH_RATE, HIGH_GROWTH_MONTHS = 10.0, 0.2, 36


def high_growth_share(panel: pd.DataFrame) -> float:
    """Share of firms with ``HIGH_GROWTH_MIN_EMPLOYMENT`` or more employees in a snapshot that
    grow by more than ``HIGH_GROWTH_RATE`` a year (annualised) to the snapshot three years
    later, among those alive at both, pooled over all such pairs of a firm panel (columns
    firm_id, step, employment). NaN if no two snapshots are three years apart."""
    steps = np.sort(panel["step"].unique())
    by_step = {step: frame for step, frame in panel.groupby("step")}
    grown = counted = 0
    for before in steps:
        after = before + HIGH_GROWTH_MONTHS
        if after not in by_step:
            continue
        a, b = by_step[before], by_step[after]
        _, ia, ib = np.intersect1d(a["firm_id"].to_numpy(), b["firm_id"].to_numpy(), assume_unique=True,
                                   return_indices=True)
        start = a["employment"].to_numpy(dtype=float)[ia]
        end = b["employment"].to_numpy(dtype=float)[ib]
        at_risk = start >= HIGH_GROWTH_MIN_EMPLOYMENT
        counted += int(at_risk.sum())
        grown += int((end[at_risk] > start[at_risk] * (1.0 + HIGH_GROWTH_RATE) ** (HIGH_GROWTH_MONTHS / 12)).sum())
    return grown / counted if counted else float("nan")


#: Years over which the persistence of firm growth is read (growth_variance_ratio).
VARIANCE_RATIO_YEARS = 5


def growth_variance_ratio(panel: pd.DataFrame, years: int = VARIANCE_RATIO_YEARS) -> float:
    """How much of a year's growth persists: the variance of the change of log employment over
    ``years`` years divided by ``years`` times the variance of its change over one year, each
    pooled over every pair of snapshots that far apart in a firm panel (columns firm_id, step,
    employment; snapshots a whole number of years apart) among the firms alive, with
    employment above 0, at both.

    1 under Gibrat's law with growth uncorrelated over time (a random walk in log size); below 1
    when growth reverses (a stationary AR(1) with annual persistence rho gives
    ``(1 - rho**years) / (years * (1 - rho))``), above 1 when it persists. The variance-ratio
    statistic of Lo and MacKinlay (1988, Review of Financial Studies 1). On firms, annual growth
    is weakly correlated from year to year, negatively among small firms and positively among
    larger ones (Coad 2007, Review of Industrial Organization 31). The Reed/Gabaix exponent implied by a year's growth and exits presumes
    a ratio near 1. NaN if no two snapshots are ``years`` years apart."""
    frame = panel.loc[panel["employment"] > 0, ["firm_id", "step", "employment"]]
    log_size = np.log(frame.pivot(index="firm_id", columns="step", values="employment").astype(float))

    def pooled_variance(months: int) -> float:
        changes = [log_size[step + months] - log_size[step] for step in log_size.columns
                   if step + months in log_size.columns]
        values = pd.concat(changes).dropna().to_numpy() if changes else np.zeros(0)
        return float(values.var()) if values.size > 1 else float("nan")

    annual = pooled_variance(12)
    longer = pooled_variance(12 * years)
    return longer / (years * annual) if annual > 0 else float("nan")


__all__ = ["HIGH_GROWTH_MIN_EMPLOYMENT", "HIGH_GROWTH_MONTHS", "HIGH_GROWTH_RATE", "VARIANCE_RATIO_YEARS",
           "ZIPF_TAIL_QUANTILE", "growth_variance_ratio", "high_growth_share", "zipf_exponent"]
