"""The firm-size distribution's upper tail: the statistic the run summary, the validation
report and the firm-dynamics report share. Apart from :mod:`sme_abm.validation` so that the
recorder can use it without importing the runner above it."""

from __future__ import annotations

import numpy as np

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


__all__ = ["ZIPF_TAIL_QUANTILE", "zipf_exponent"]
