"""Matplotlib figures of a run, a comparison and a results folder.

Functions here take data frames and return :class:`matplotlib.figure.Figure`
objects (never pyplot, so nothing leaks between sessions); the components
only display them.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

#: One panel per entry: (title, [(column, label), ...], unit).
PANELS: list[tuple[str, list[tuple[str, str]], str]] = [
    ("SMEs by size class", [("smes_micro", "micro"), ("smes_small", "small"), ("smes_medium", "medium")], "firms"),
    ("Entries and exits", [("entries", "entries"), ("exits", "exits")], "firms / month"),
    ("Employment and output", [("employment", "employment (workers)"), ("output", "output (CNY m)")], ""),
    ("Credit granted vs rationed", [("credit_granted", "granted"), ("credit_rationed", "rationed")], "CNY m / month"),
    ("Loan rate and spread", [("avg_loan_rate", "avg loan rate"), ("loan_rate_spread", "spread over LPR")], "annual"),
    ("Non-performing loans", [("npl_ratio", "NPL ratio")], "share"),
    ("Guarantees and guarantor leverage", [("guarantees_outstanding", "outstanding (CNY m)"),
                                           ("guarantor_leverage_max", "max leverage (x, right)")], ""),
    ("Fiscal cost by lever", [], "CNY m / month"),
]

#: Outcomes compared against the baseline.
COMPARE_OUTCOMES: list[tuple[str, str]] = [
    ("smes_active", "active SMEs"),
    ("employment", "employment"),
    ("output", "output (CNY m)"),
    ("credit_granted", "credit granted (CNY m)"),
    ("credit_rationed", "credit rationed (CNY m)"),
    ("avg_loan_rate", "avg loan rate"),
    ("npl_ratio", "NPL ratio"),
    ("fiscal_cost_total", "fiscal cost (CNY m)"),
]


def _x(ts: pd.DataFrame) -> np.ndarray:
    return ts["step"].to_numpy() if "step" in ts else np.arange(len(ts))


def _fiscal_columns(ts: pd.DataFrame) -> list[str]:
    return sorted(c for c in ts.columns if c.startswith("fiscal_cost_p"))


def _style(ax) -> None:
    """Small tick labels, few ticks: text is most of a redraw's cost."""
    ax.tick_params(labelsize=7)
    ax.locator_params(nbins=4)


def _draw_panel(ax, ts: pd.DataFrame, title: str, series: list[tuple[str, str]], unit: str) -> None:
    ax.set_title(title, fontsize=9)
    _style(ax)
    if ts.empty:
        ax.text(0.5, 0.5, "no months run yet", ha="center", va="center", fontsize=8, transform=ax.transAxes)
        return
    x = _x(ts)
    if title.startswith("Fiscal cost"):
        columns = [c for c in _fiscal_columns(ts) if ts[c].abs().sum() > 0]
        if columns:
            ax.stackplot(x, *(ts[c].to_numpy() for c in columns), labels=[c[-3:] for c in columns])
            ax.legend(fontsize=5, ncol=3, loc="upper left")
        ax.set_ylabel(unit, fontsize=7)
        return
    if title.startswith("Employment"):
        ax.plot(x, ts["employment"], label="employment (workers)")
        twin = ax.twinx()
        twin.plot(x, ts["output"], color="C1", label="output (CNY m, right)")
        _style(twin)
        ax.legend(handles=ax.lines + twin.lines, fontsize=6, loc="lower left")
        return
    if title.startswith("Guarantees"):
        ax.plot(x, ts["guarantees_outstanding"], label="outstanding (CNY m)")
        twin = ax.twinx()
        twin.plot(x, ts["guarantor_leverage_max"], color="C1", label="max leverage (x, right)")
        _style(twin)
        ax.legend(handles=ax.lines + twin.lines, fontsize=6, loc="lower left")
        return
    for column, label in series:
        if column in ts:
            ax.plot(x, ts[column], label=label)
    ax.legend(fontsize=6, loc="upper left")
    if unit:
        ax.set_ylabel(unit, fontsize=7)


def rank_plot(ax, sizes: np.ndarray, label: str = "employment", max_points: int = 400) -> None:
    """Firm-size distribution as a log-log rank plot (Zipf plot).

    Plots log10(size) against log10(rank) on linear axes: the same picture as
    log-scaled axes at a fraction of the drawing time. Ranks are thinned to
    about ``max_points`` log-spaced points, which keeps the shape and makes the
    drawing time independent of the population.
    """
    ax.set_title(f"Firm size: rank vs {label} (log-log)", fontsize=9)
    _style(ax)
    sizes = np.sort(np.asarray(sizes, dtype=float))[::-1]
    sizes = sizes[sizes > 0]
    if sizes.size == 0:
        ax.text(0.5, 0.5, "no firms", ha="center", va="center", transform=ax.transAxes)
        return
    picks = np.unique(np.geomspace(1, sizes.size, num=min(max_points, sizes.size)).astype(int)) - 1
    ax.plot(np.log10(picks + 1), np.log10(sizes[picks]), ".", markersize=3)
    ax.set_xlabel("log10 rank", fontsize=7)
    ax.set_ylabel(f"log10 {label}", fontsize=7)


def _small_figure() -> Figure:
    fig = Figure(figsize=(4.2, 3.0), dpi=72)
    fig.subplots_adjust(left=0.17, right=0.86, bottom=0.14, top=0.9)
    return fig


def panel_figure(ts: pd.DataFrame, index: int) -> Figure:
    """Time-series panel ``index`` of :data:`PANELS` as its own small figure."""
    title, series, unit = PANELS[index]
    fig = _small_figure()
    _draw_panel(fig.subplots(), ts, title, series, unit)
    return fig


def rank_figure(sizes: np.ndarray | None) -> Figure:
    """The firm-size rank plot as its own small figure."""
    fig = _small_figure()
    rank_plot(fig.subplots(), sizes if sizes is not None else np.array([]))
    return fig


def comparison_figure(current: pd.DataFrame, baseline: pd.DataFrame,
                      outcomes: Sequence[tuple[str, str]] = COMPARE_OUTCOMES) -> Figure:
    """Current settings vs baseline (left of each pair) and their difference (right)."""
    outcomes = [o for o in outcomes if o[0] in current and o[0] in baseline]
    rows = max(len(outcomes), 1)
    fig = Figure(figsize=(12, 2.2 * rows), dpi=72, layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    n = min(len(current), len(baseline))
    cur, base = current.iloc[:n], baseline.iloc[:n]
    x = _x(cur)
    for (column, label), (left, right) in zip(outcomes, axes):
        left.plot(x, cur[column], label="current")
        left.plot(x, base[column], label="baseline", linestyle="--")
        left.set_title(label, fontsize=9)
        left.legend(fontsize=6)
        diff = cur[column].to_numpy(dtype=float) - base[column].to_numpy(dtype=float)
        right.axhline(0, color="grey", linewidth=0.8)
        right.plot(x, diff, color="C3")
        right.set_title(f"{label}: current - baseline", fontsize=9)
        for ax in (left, right):
            ax.tick_params(labelsize=7)
    return fig


def comparison_table(current: pd.DataFrame, baseline: pd.DataFrame,
                     outcomes: Sequence[tuple[str, str]] = COMPARE_OUTCOMES) -> pd.DataFrame:
    """End-of-run values side by side with their difference."""
    rows = []
    for column, label in outcomes:
        if column in current and column in baseline and len(current) and len(baseline):
            a, b = float(current[column].iloc[-1]), float(baseline[column].iloc[-1])
            rows.append({"outcome": label, "current": a, "baseline": b, "difference": a - b,
                         "difference_pct": (a - b) / abs(b) * 100 if b else float("nan")})
    return pd.DataFrame(rows).round(4)


def lines_figure(timeseries: pd.DataFrame, outcome: str, group: str = "run_id", limit: int = 40) -> Figure:
    """One line per run of ``outcome`` over time."""
    fig = Figure(figsize=(7, 3.5), dpi=72, layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"{outcome} by run", fontsize=9)
    ids = list(pd.unique(timeseries[group]))[:limit]
    for run_id in ids:
        part = timeseries[timeseries[group] == run_id]
        ax.plot(_x(part), part[outcome], linewidth=0.8, alpha=0.7)
    ax.set_xlabel("month", fontsize=7)
    if len(ids) < timeseries[group].nunique():
        ax.text(0.01, 0.98, f"first {limit} runs shown", fontsize=7, va="top", transform=ax.transAxes)
    return fig


def scatter_figure(runs: pd.DataFrame, parameter: str, outcome: str) -> Figure:
    """Run-level outcome against one swept parameter."""
    fig = Figure(figsize=(5, 3.5), dpi=72, layout="constrained")
    ax = fig.subplots()
    ax.scatter(runs[parameter], runs[outcome], s=12)
    ax.set_xlabel(parameter, fontsize=7)
    ax.set_ylabel(outcome, fontsize=7)
    ax.set_title(f"{outcome} vs {parameter}", fontsize=9)
    return fig


def heatmap_figure(runs: pd.DataFrame, x: str, y: str, outcome: str) -> Figure:
    """Mean ``outcome`` over a two-parameter grid."""
    grid = runs.pivot_table(index=y, columns=x, values=outcome, aggfunc="mean")
    fig = Figure(figsize=(6, 4.5), dpi=72, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], fontsize=7, rotation=45)
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index], fontsize=7)
    ax.set_xlabel(x, fontsize=8)
    ax.set_ylabel(y, fontsize=8)
    ax.set_title(f"mean {outcome}", fontsize=9)
    fig.colorbar(image, ax=ax)
    return fig


def sensitivity_figure(table: pd.DataFrame, name_column: str, index_columns: Iterable[str]) -> Figure:
    """Horizontal bars of sensitivity indices per parameter."""
    index_columns = list(index_columns)
    fig = Figure(figsize=(7, max(2.5, 0.3 * len(table) + 1)), dpi=72, layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(table))
    height = 0.8 / max(len(index_columns), 1)
    for i, column in enumerate(index_columns):
        ax.barh(positions + i * height, table[column].astype(float), height=height, label=column)
    ax.set_yticks(positions + height * (len(index_columns) - 1) / 2, table[name_column].astype(str), fontsize=7)
    ax.legend(fontsize=7)
    ax.set_title("sensitivity indices", fontsize=9)
    return fig
