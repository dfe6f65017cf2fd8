"""The published evaluations of credit guarantees, run inside the model (issue 17).

Empirical studies cannot switch a guarantee scheme off; they compare firms. This module
runs their research designs on the model's firm-level records, so the model's guarantees
can be checked against what the designs found in real data rather than against a
with-and-without comparison no study observes:

* :func:`matched_guarantee_effects`: guaranteed firms against comparable unguaranteed firms
  in the same estimated risk class, before and after the guarantee (Ciani, Gallo and Rotondi
  2020, Bank of Italy Temi di discussione 1265): the change in bank credit and in the loan
  rate, overall and by risk class, and the additional credit per guaranteed yuan (Cascarino,
  Gallo, Palazzo and Sette 2022, Temi di discussione 1369).
* :func:`eligibility_discontinuity`: just-eligible against just-ineligible applicants at the
  guarantors' default-probability ceiling, by local linear regression with a mean-squared-error
  optimal bandwidth (``rdrobust``; Calonico, Cattaneo and Titiunik 2014, Econometrica 82),
  as de Blasio, De Mitri, D'Ignazio, Finaldi Russo and Stoppani (2018, Journal of Banking and
  Finance 96; Temi di discussione 1111) did at the Italian fund's eligibility score.

Both read three records of one run: the credit applications (``run(...,
record_applications=True)``), a monthly firm panel (``simulation.panel_every = 1``) and the
exits. Credit growth is the arc growth ``2 (d1 - d0) / (d1 + d0)`` of a firm's bank debt
(Davis, Haltiwanger and Schuh 1996), close to the log change the papers use and defined when
a firm had no debt before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: Months between the month before the application (the baseline) and the outcome.
HORIZON = 12
#: Months after the application within which a default counts as a later bad loan.
BAD_LOAN_HORIZON = 24
#: Risk classes of the matched comparison: quantiles of the guaranteed firms' estimated
#: default probability, so each class holds a fifth of them.
RISK_CLASSES = 5


def arc_growth(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``2 (after - before) / (after + before)``, 0 where both are 0 (bounded by -2 and 2)."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    total = after + before
    return np.divide(2.0 * (after - before), total, out=np.zeros_like(total), where=total > 0)


def application_outcomes(applications: pd.DataFrame, panel: pd.DataFrame, horizon: int = HORIZON) -> pd.DataFrame:
    """Each application with the firm's credit in the month before it (``*_before``) and
    ``horizon`` months after (``*_after``); applications of firms not in the panel at both
    dates (entrants, exits, or months outside the run) are dropped."""
    columns = ["firm_id", "step", "debt", "guaranteed", "loan_rate"]
    missing = [c for c in columns if c not in panel]
    if missing:
        raise ValueError(f"the firm panel lacks {missing}: it needs the credit columns of sme-abm 0.1 or later")
    steps = np.sort(panel["step"].unique())
    if steps.size > 1 and np.any(np.diff(steps) != 1):
        raise ValueError("the quasi-experiments need a monthly firm panel (simulation.panel_every = 1)")
    states = panel[columns]
    credit = columns[2:]
    # the state at the end of the month before, and horizon months after the application month
    before = states.assign(step=states["step"] + 1).rename(columns={c: f"{c}_before" for c in credit})
    after = states.assign(step=states["step"] - horizon).rename(columns={c: f"{c}_after" for c in credit})
    out = applications.merge(before, on=["firm_id", "step"]).merge(after, on=["firm_id", "step"])
    out["credit_growth"] = arc_growth(out["debt_before"].to_numpy(), out["debt_after"].to_numpy())
    out["credit_change"] = out["debt_after"] - out["debt_before"]
    out["rate_change"] = np.where((out["debt_before"] > 0) & (out["debt_after"] > 0),
                                  out["loan_rate_after"] - out["loan_rate_before"], np.nan)
    return out


def _cell_att(sample: pd.DataFrame, outcome: str, cells: list[str]) -> float:
    """Average effect on the treated: treated minus control means of ``outcome`` within each
    cell, weighted by the cell's treated firms; cells without controls drop out."""
    data = sample.dropna(subset=[outcome])
    means = data.groupby([*cells, "treated"], observed=True)[outcome].agg(["mean", "size"]).unstack("treated")
    if ("mean", True) not in means or ("mean", False) not in means:
        return math.nan  # no treated firms, or no controls, in any cell
    means = means.dropna()
    if means.empty:
        return math.nan
    weights = means[("size", True)]
    if weights.sum() == 0:
        return math.nan
    return float(np.average(means[("mean", True)] - means[("mean", False)], weights=weights))


def matched_guarantee_effects(applications: pd.DataFrame, panel: pd.DataFrame,
                              horizon: int = HORIZON, risk_classes: int = RISK_CLASSES) -> dict[str, Any]:
    """Guaranteed firms against comparable unguaranteed firms, before and after (Ciani, Gallo
    and Rotondi 2020).

    Treated: applications granted with a firm's first guarantee (no guaranteed debt in the
    month before). Controls: applications of firms with no guaranteed debt that got no
    guarantee then or in the ``horizon`` months after (granted directly or refused). Both
    had bank debt in the month before (the credit register's firms) and survive the
    horizon. Firms are compared within cells of the same risk class (quantiles of the
    treated firms' estimated default probability), size class and year of application.

    Returns:
        ``credit`` (effect on credit growth, in % points of arc growth), ``rate`` (on the
        change in the firm's average loan rate, in bp), ``additionality`` (additional credit
        per guaranteed yuan: the effect on the change in debt over the mean guaranteed loan),
        ``credit_by_class`` and ``rate_by_class`` (lists, lowest risk first), and the
        numbers of treated and control applications.
    """
    data = application_outcomes(applications, panel, horizon)
    data = data[(data["debt_before"] > 0) & (data["guaranteed_before"] == 0)]
    treated = data["guaranteed"].to_numpy()
    control = ~treated & ~data["guaranteed_after"].gt(0).to_numpy()
    data = data[treated | control].assign(treated=treated[treated | control])
    empty = {"credit": math.nan, "rate": math.nan, "additionality": math.nan,
             "credit_by_class": [math.nan] * risk_classes, "rate_by_class": [math.nan] * risk_classes,
             "treated": int(data["treated"].sum()), "controls": int((~data["treated"]).sum())}
    if data["treated"].sum() < risk_classes or data["treated"].all():
        return empty
    edges = np.quantile(data.loc[data["treated"], "estimated_pd"], np.linspace(0, 1, risk_classes + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    data = data.assign(risk_class=np.clip(np.searchsorted(edges, data["estimated_pd"], side="right") - 1,
                                          0, risk_classes - 1),
                       year=data["step"] // 12)
    cells = ["risk_class", "size_class", "year"]
    guaranteed_loan = float(data.loc[data["treated"], "amount"].mean())
    by_class = [data[data["risk_class"] == k] for k in range(risk_classes)]
    return {
        "credit": 100.0 * _cell_att(data, "credit_growth", cells),
        "rate": 1e4 * _cell_att(data, "rate_change", cells),
        "additionality": _cell_att(data, "credit_change", cells) / guaranteed_loan,
        "credit_by_class": [100.0 * _cell_att(part, "credit_growth", cells) for part in by_class],
        "rate_by_class": [1e4 * _cell_att(part, "rate_change", cells) for part in by_class],
        "treated": int(data["treated"].sum()),
        "controls": int((~data["treated"]).sum()),
    }


def _rdd(outcome: np.ndarray, running: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """The jump of ``outcome`` at ``running = 0`` (right minus left) by local linear
    regression with a triangular kernel and a common MSE-optimal bandwidth, standard errors
    clustered by firm; returns the conventional estimate and its robust standard error."""
    from rdrobust import rdrobust

    keep = np.isfinite(outcome)
    if keep.any() and np.ptp(outcome[keep]) == 0:
        return 0.0, 0.0  # a constant outcome does not jump (rdrobust cannot fit it)
    if keep.sum() < 50 or (running[keep] >= 0).sum() < 20 or (running[keep] < 0).sum() < 20:
        return math.nan, math.nan
    try:
        fit = rdrobust(outcome[keep], running[keep], c=0.0, cluster=clusters[keep])
    except (ZeroDivisionError, np.linalg.LinAlgError):
        # as many observations inside the chosen bandwidth as the local fit has parameters
        # (rdrobust 2.1.1's small-sample factor divides by their difference): not identified
        return math.nan, math.nan
    except Exception as error:  # rdrobust raises a bare Exception when no bandwidth can be chosen
        if "variability" in str(error):
            return math.nan, math.nan  # too few distinct values near the cut-off: not identified here
        raise
    return float(fit.coef.iloc[0, 0]), float(fit.se.iloc[2, 0])


def eligibility_discontinuity(applications: pd.DataFrame, panel: pd.DataFrame, exits: pd.DataFrame,
                              cutoff: float, horizon: int = HORIZON,
                              bad_loan_horizon: int = BAD_LOAN_HORIZON) -> dict[str, Any]:
    """Just-eligible against just-ineligible applicants (de Blasio et al. 2018).

    The applicants a bank would not take alone (``direct`` false) can borrow only with a
    guarantee, and the guarantors cover only firms whose estimated annual default probability
    is at most ``cutoff`` (``guarantors.max_default_probability``). The running variable is
    ``cutoff - estimated_pd``, so eligible firms are on the right and each estimate is the
    effect of eligibility (an intention-to-treat: guarantors ration, and not every eligible
    firm has the collateral for the bank's share).

    Returns:
        ``credit`` (jump in credit growth over ``horizon`` months, % points), ``rate`` (in
        the firm's average loan rate after ``horizon`` months, among firms with debt, bp),
        ``bad_loans`` (in the probability of default within ``bad_loan_horizon`` months,
        % points), with their robust standard errors (``*_se``), the take-up jump
        (``guarantee_take_up``, % points) and the number of applications used.
    """
    outcomes = application_outcomes(applications[~applications["direct"]], panel, horizon)
    running = cutoff - outcomes["estimated_pd"].to_numpy()
    firms = outcomes["firm_id"].to_numpy()
    rate_after = np.where(outcomes["debt_after"] > 0, outcomes["loan_rate_after"], np.nan)
    credit, credit_se = _rdd(100.0 * outcomes["credit_growth"].to_numpy(), running, firms)
    rate, rate_se = _rdd(1e4 * rate_after, running, firms)
    take_up, _ = _rdd(100.0 * outcomes["guaranteed"].to_numpy(dtype=float), running, firms)

    # later bad loans: every non-direct application early enough to see bad_loan_horizon months
    late = int(panel["step"].max()) - bad_loan_horizon
    early = applications[~applications["direct"] & (applications["step"] <= late)]
    defaults = exits[exits["reason"].astype(str) == "default"][["firm_id", "step"]]
    merged = early[["firm_id", "step", "estimated_pd"]].merge(defaults, on="firm_id", how="left",
                                                             suffixes=("", "_default"))
    within = (merged["step_default"] > merged["step"]) & (merged["step_default"] <= merged["step"] + bad_loan_horizon)
    bad = within.groupby([merged["firm_id"], merged["step"]]).any()
    early = early.assign(bad=early.set_index(["firm_id", "step"]).index.map(bad).to_numpy(dtype=float))
    bad_loans, bad_se = _rdd(100.0 * early["bad"].to_numpy(), cutoff - early["estimated_pd"].to_numpy(),
                             early["firm_id"].to_numpy())
    return {"credit": credit, "credit_se": credit_se, "rate": rate, "rate_se": rate_se,
            "bad_loans": bad_loans, "bad_loans_se": bad_se, "guarantee_take_up": take_up,
            "applications": int(len(outcomes))}
