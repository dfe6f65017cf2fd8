"""The firm population's dynamics, from a run's firm panel and exit table (issue 15's report).

What a referee in firm dynamics asks of a model's firms, per run:

* the size distribution: a log-log rank plot of employment and the maximum-likelihood
  exponent of its upper tail (Axtell 2001: Zipf, alpha about 1);
* mean size by age among the firms alive (Haltiwanger, Jarmin and Miranda 2013: survivors grow);
* the distribution of annual growth rates, log employment one snapshot to the next
  (Stanley et al. 1996: tent-shaped, fat-tailed);
* exit rates by age and by size class (exits a year over the firms at risk);
* the share of employment in firms younger than 5 years;
* the yearly size-class transition matrix, exit included;
* the tail's accounting: the drift, volatility and exit rate a year of the firms in the
  upper 10%, and the tail exponent they imply, the root of
  (sd^2/2) z^2 + drift z - exit = 0 (Reed 2001, Economics Letters 74; Gabaix 2009, Annual
  Review of Economics 1: a Gibrat process of log size with drift, variance and a death rate
  has a Pareto upper tail with that exponent). It says which of the three sets the tail:
  Zipf (z = 1) needs sd^2/2 + drift = exit, a tail whose firms rarely die.

Everything is computed from the yearly snapshots of ``firm_panel`` (``simulation.panel_every``
= 12) and the exits, so a results folder written by ``sme-abm run`` is enough
(``sme-abm dynamics RUN_DIR``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .agents.sme import SIZE_CLASSES
from .size_distribution import (VARIANCE_RATIO_YEARS, ZIPF_TAIL_QUANTILE, growth_variance_ratio, high_growth_share,
                                zipf_exponent)

#: Age classes in years (lower bounds; the last is open).
AGE_CLASSES = (0, 1, 2, 3, 5, 10)
AGE_LABELS = ("0", "1", "2", "3-4", "5-9", "10+")
YOUNG_MONTHS = 60


@dataclass(frozen=True)
class TailAccounting:
    """Year-on-year dynamics of the firms in the upper tail (employment at or above the
    ``ZIPF_TAIL_QUANTILE`` of their snapshot), pooled over the run's snapshots."""

    firm_years: int
    drift: float  # mean annual log employment growth of those that survive the year
    volatility: float  # its sd
    exit_rate: float  # share that exit within the year

    @property
    def implied_exponent(self) -> float:
        """Positive root z of (volatility^2/2) z^2 + drift z - exit_rate = 0."""
        var = self.volatility ** 2
        if not var > 0:
            return math.nan
        return (-self.drift + math.sqrt(self.drift ** 2 + 2.0 * var * self.exit_rate)) / var


@dataclass
class FirmDynamics:
    """The report's tables and headline figures."""

    snapshot: int  # month of the last snapshot
    firms: int
    tail_exponent: float
    young_employment_share: float
    size_by_age: pd.DataFrame
    growth: pd.Series  # annual log employment growth of firms in consecutive snapshots
    exit_rates: pd.DataFrame  # by age class and by size class
    transitions: pd.DataFrame  # size class -> size class or exit, rows sum to 1
    tail: TailAccounting
    sizes: np.ndarray = field(repr=False)
    high_growth_share: float = math.nan  # OECD-Eurostat high-growth enterprises (size_distribution)
    growth_variance_ratio: float = math.nan  # persistence of growth over VARIANCE_RATIO_YEARS (size_distribution)

    def headline(self) -> dict[str, float]:
        g = self.growth
        return {
            "tail_exponent": self.tail_exponent,
            "young_employment_share": self.young_employment_share,
            "growth_sd": float(g.std()) if g.size > 1 else math.nan,
            "growth_kurtosis": float(g.kurt()) if g.size > 3 else math.nan,
            "size_ratio_10y_to_young": _ratio(self.size_by_age),
            "tail_drift": self.tail.drift,
            "tail_volatility": self.tail.volatility,
            "tail_exit_rate": self.tail.exit_rate,
            "implied_tail_exponent": self.tail.implied_exponent,
            "high_growth_share": self.high_growth_share,
            "growth_variance_ratio": self.growth_variance_ratio,
        }


def _age_class(age_months: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(AGE_CLASSES), np.asarray(age_months) // 12, side="right") - 1


def _ratio(size_by_age: pd.DataFrame) -> float:
    """Mean employment of firms aged 10+ over that of firms under 2 years."""
    table = size_by_age.set_index("age")
    young = table.loc[["0", "1"]]
    young_mean = float((young["mean_employment"] * young["firms"]).sum() / max(young["firms"].sum(), 1))
    old = float(table.loc["10+", "mean_employment"]) if table.loc["10+", "firms"] > 0 else math.nan
    return old / young_mean if young_mean > 0 else math.nan


def firm_dynamics(panel: pd.DataFrame, exits: pd.DataFrame) -> FirmDynamics:
    """Compute the report from a firm panel (yearly snapshots) and an exit table.

    Raises:
        ValueError: If the panel has no snapshot.
    """
    if panel.empty:
        raise ValueError("the firm panel is empty: run at least simulation.panel_every months")
    steps = np.sort(panel["step"].unique())
    last = panel[panel["step"] == steps[-1]]
    employment = last["employment"].to_numpy(dtype=float)
    age_class = _age_class(last["age"].to_numpy())
    size_by_age = pd.DataFrame({
        "age": AGE_LABELS,
        "firms": [int(np.count_nonzero(age_class == k)) for k in range(len(AGE_LABELS))],
        "mean_employment": [float(employment[age_class == k].mean()) if np.any(age_class == k) else math.nan
                            for k in range(len(AGE_LABELS))],
    })
    total = employment.sum()
    young = float(employment[last["age"].to_numpy() < YOUNG_MONTHS].sum() / total) if total > 0 else math.nan

    growth_parts, transition_counts = [], np.zeros((len(SIZE_CLASSES), len(SIZE_CLASSES) + 1))
    tail_growth, tail_firms, tail_exits = [], 0, 0
    exit_ids = exits["firm_id"].to_numpy()
    for before, after in zip(steps[:-1], steps[1:]):
        a = panel[panel["step"] == before].set_index("firm_id")
        b = panel[panel["step"] == after].set_index("firm_id")
        both = a.index.intersection(b.index)
        e0, e1 = a.loc[both, "employment"].to_numpy(float), b.loc[both, "employment"].to_numpy(float)
        ok = (e0 > 0) & (e1 > 0)
        growth_parts.append(np.log(e1[ok] / e0[ok]))
        np.add.at(transition_counts, (a.loc[both, "size_class"].to_numpy(int), b.loc[both, "size_class"].to_numpy(int)), 1)
        gone = a.index.difference(b.index)
        gone = gone[np.isin(gone.to_numpy(), exit_ids)]
        np.add.at(transition_counts[:, -1], a.loc[gone, "size_class"].to_numpy(int), 1)
        in_tail = a["employment"] >= np.quantile(a["employment"].to_numpy(float), ZIPF_TAIL_QUANTILE)
        tail_firms += int(in_tail.sum())
        tail_exits += int(in_tail.loc[gone].sum())
        stayed = in_tail.loc[both].to_numpy() & ok
        tail_growth.append(np.log(e1[stayed] / e0[stayed]))
    growth = pd.Series(np.concatenate(growth_parts) if growth_parts else np.zeros(0), name="annual_log_growth")
    rows = transition_counts.sum(axis=1, keepdims=True)
    transitions = pd.DataFrame(np.divide(transition_counts, rows, out=np.full_like(transition_counts, np.nan),
                                         where=rows > 0),
                               index=pd.Index(SIZE_CLASSES, name="from"), columns=[*SIZE_CLASSES, "exit"])
    transitions["firms"] = rows[:, 0].astype(int)

    tail_growth = np.concatenate(tail_growth) if tail_growth else np.zeros(0)
    tail = TailAccounting(tail_firms, float(tail_growth.mean()) if tail_growth.size else math.nan,
                          float(tail_growth.std()) if tail_growth.size > 1 else math.nan,
                          tail_exits / tail_firms if tail_firms else math.nan)
    exit_rates = _exit_rates(panel, exits, steps)
    return FirmDynamics(int(steps[-1]), int(len(last)), zipf_exponent(employment), young, size_by_age, growth,
                        exit_rates, transitions, tail, employment, high_growth_share(panel),
                        growth_variance_ratio(panel))


def _exit_rates(panel: pd.DataFrame, exits: pd.DataFrame, steps: np.ndarray) -> pd.DataFrame:
    """Annual exit rate by age class and by size class: exits per year over the average
    number of firms at risk in the snapshots."""
    months = max(int(steps[-1]) + 1, int(exits["step"].max()) + 1 if not exits.empty else 0)
    years = months / 12.0
    records = []
    snapshots = len(steps)
    panel_age = _age_class(panel["age"].to_numpy())
    exit_age = _age_class(exits["age"].to_numpy()) if not exits.empty else np.zeros(0, dtype=int)
    for k, label in enumerate(AGE_LABELS):
        at_risk = np.count_nonzero(panel_age == k) / snapshots
        count = np.count_nonzero(exit_age == k)
        records.append(("age", label, count / years / at_risk if at_risk else math.nan, at_risk))
    panel_size = panel["size_class"].to_numpy()
    exit_size = exits["size_class"].to_numpy() if not exits.empty else np.zeros(0, dtype=int)
    for k, label in enumerate(SIZE_CLASSES):
        at_risk = np.count_nonzero(panel_size == k) / snapshots
        count = np.count_nonzero(exit_size == k)
        records.append(("size", label, count / years / at_risk if at_risk else math.nan, at_risk))
    return pd.DataFrame(records, columns=["by", "class", "annual_exit_rate", "firms_at_risk"])


def write_report(dynamics: FirmDynamics, out: str | Path) -> Path:
    """Write ``report.md``, CSV tables and figures (rank plot, growth rates, size by age)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dynamics.size_by_age.to_csv(out / "size_by_age.csv", index=False)
    dynamics.exit_rates.to_csv(out / "exit_rates.csv", index=False)
    dynamics.transitions.to_csv(out / "size_class_transitions.csv")
    dynamics.growth.to_frame().to_csv(out / "growth_rates.csv", index=False)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    sizes = np.sort(dynamics.sizes[dynamics.sizes > 0])[::-1]
    axes[0].loglog(sizes, np.arange(1, sizes.size + 1), ".", markersize=2)
    axes[0].set(xlabel="employment", ylabel="rank", title=f"size distribution (tail alpha {dynamics.tail_exponent:.2f})")
    if dynamics.growth.size:
        axes[1].hist(dynamics.growth, bins=80, log=True)
    axes[1].set(xlabel="annual log employment growth", ylabel="firms", title="growth rates")
    table = dynamics.size_by_age
    axes[2].bar(table["age"], table["mean_employment"])
    axes[2].set(xlabel="age (years)", ylabel="mean employment", title="size by age")
    fig.tight_layout()
    fig.savefig(out / "firm_dynamics.png", dpi=110)
    plt.close(fig)

    head = dynamics.headline()
    lines = [
        "# Firm dynamics",
        "",
        f"Last snapshot: month {dynamics.snapshot}, {dynamics.firms:,} firms.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| upper-tail exponent of employment (MLE, upper 10%) | {head['tail_exponent']:.3f} |",
        f"| share of employment in firms younger than 5 years | {head['young_employment_share']:.1%} |",
        f"| annual growth rate: sd, excess kurtosis | {head['growth_sd']:.3f}, {head['growth_kurtosis']:.2f} |",
        f"| mean employment, firms aged 10+ over firms under 2 | {head['size_ratio_10y_to_young']:.2f} |",
        f"| high-growth firms (10+ employees, over 20% a year for 3 years) | {head['high_growth_share']:.1%} |",
        "",
        "## What sets the tail",
        "",
        f"Firms in the upper 10% of a snapshot ({dynamics.tail.firm_years:,} firm-years), a year on: "
        f"survivors' log employment grows by {head['tail_drift']:+.3f} on average with sd "
        f"{head['tail_volatility']:.3f}, and {head['tail_exit_rate']:.1%} exit. A Gibrat process with these "
        f"three has an upper tail of exponent **{head['implied_tail_exponent']:.2f}** "
        "(the root of (sd^2/2) z^2 + drift z - exit = 0; Reed 2001, Gabaix 2009), against the "
        f"{head['tail_exponent']:.2f} measured. Zipf (1) needs sd^2/2 + drift = exit: a tail whose firms rarely die.",
        "",
        f"That formula presumes growth that does not reverse. Over {VARIANCE_RATIO_YEARS} years the variance of log "
        f"employment growth is **{_figure(head['growth_variance_ratio'])}** times {VARIANCE_RATIO_YEARS} times a "
        "year's (all firms alive at both snapshots; 1 for Gibrat's random walk, below 1 when growth "
        "reverses, as a stationary size would; Lo and MacKinlay 1988). Well below 1, a year's sd overstates "
        "how far firms spread over their lives, and the measured tail is thinner than the implied one.",
        "",
        "## Mean size by age",
        "",
        _markdown(dynamics.size_by_age),
        "",
        "## Exit rates (a year)",
        "",
        _markdown(dynamics.exit_rates),
        "",
        "## Size-class transitions per year (rows: class a year earlier)",
        "",
        _markdown(dynamics.transitions.reset_index()),
        "",
        "![firm dynamics](firm_dynamics.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    return out


def _figure(value: float) -> str:
    """Two decimals, or "n/a" (a panel too short for the statistic)."""
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
