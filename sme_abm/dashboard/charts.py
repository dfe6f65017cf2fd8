"""Matplotlib figures of a run, a comparison and a results folder.

Functions here take data frames and return :class:`matplotlib.figure.Figure`
objects (never pyplot, so nothing leaks between sessions); the components
only display them.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

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


def rank_points(sizes: np.ndarray | None, max_points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """log10 rank and log10 size of the firms, largest first, for a rank plot.

    Ranks are thinned to about ``max_points`` log-spaced points, which keeps
    the plot's shape and makes drawing time independent of the population.
    Plotting logs on linear axes gives the log-log picture far faster than
    log-scaled axes.
    """
    sizes = np.sort(np.asarray(sizes if sizes is not None else [], dtype=float))[::-1]
    sizes = sizes[sizes > 0]
    if sizes.size == 0:
        return np.array([]), np.array([])
    picks = np.unique(np.geomspace(1, sizes.size, num=min(max_points, sizes.size)).astype(int)) - 1
    return np.log10(picks + 1), np.log10(sizes[picks])


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


class LiveFigure:
    """One figure holding a chart group, updated in place every step.

    Building axes, titles and legends once and then only replacing line data
    saves most of a redraw's cost; the figure is drawn to PNG once per step
    instead of once per chart.

    Args:
        panels: Indices of :data:`PANELS`; -1 is the firm-size rank plot.
    """

    def __init__(self, panels: Sequence[int]) -> None:
        self.panels = list(panels)
        cols = 2 if len(self.panels) > 1 else 1
        rows = -(-len(self.panels) // cols)
        self.figure = Figure(figsize=(4.6 * cols + 1.4 * (cols == 1), 3.2 * rows + 0.4 * (rows == 1)), dpi=72)
        if cols == 1:
            self.figure.subplots_adjust(left=0.14, right=0.95, bottom=0.1, top=0.84)
        else:
            self.figure.subplots_adjust(left=0.08, right=0.92, bottom=0.09, top=0.93, wspace=0.35, hspace=0.4)
        axes = self.figure.subplots(rows, cols, squeeze=False).ravel()
        for extra in axes[len(self.panels):]:
            extra.set_visible(False)
        self.lines: list[tuple[Any, Any, str]] = []  # (axes, line, column)
        self.stacked: list[Any] = []
        self.fiscal_axes = None
        self.rank_line = None
        self.empty_notes = []
        for ax, index in zip(axes, self.panels):
            self._build(ax, index)

    def _build(self, ax, index: int) -> None:
        _style(ax)
        if index < 0:
            ax.set_title("Firm size: rank vs employment (log-log)", fontsize=9)
            (self.rank_line,) = ax.plot([], [], ".", markersize=3)
            ax.set_xlabel("log10 rank", fontsize=7)
            ax.set_ylabel("log10 employment", fontsize=7)
            self.lines.append((ax, self.rank_line, ""))
            return
        title, series, unit = PANELS[index]
        ax.set_title(title, fontsize=9)
        if unit:
            ax.set_ylabel(unit, fontsize=7)
        self.empty_notes.append(ax.text(0.5, 0.5, "no months run yet", ha="center", va="center", fontsize=8,
                                        transform=ax.transAxes))
        if title.startswith("Fiscal cost"):
            self.fiscal_axes = ax
            return
        if title.startswith(("Employment", "Guarantees")):
            (first, _), (second, second_label) = series
            twin = ax.twinx()
            _style(twin)
            left = ax.plot([], [], label=series[0][1])[0]
            right = twin.plot([], [], color="C1", label=second_label)[0]
            self.lines += [(ax, left, first), (twin, right, second)]
            ax.legend(handles=[left, right], fontsize=6, loc="upper left")
            return
        for column, label in series:
            self.lines.append((ax, ax.plot([], [], label=label)[0], column))
        ax.legend(fontsize=6, loc="upper left")

    def update(self, ts: pd.DataFrame, firm_sizes: np.ndarray | None = None) -> Figure:
        """Put the run's data so far into the figure and return it."""
        x = _x(ts) if not ts.empty else np.array([])
        for note in self.empty_notes:
            note.set_visible(ts.empty)
        for ax, line, column in self.lines:
            if line is self.rank_line:
                line.set_data(*rank_points(firm_sizes))
            elif column in ts:
                line.set_data(x, ts[column].to_numpy(dtype=float))
            ax.relim()
            ax.autoscale_view()
        if self.fiscal_axes is not None and not ts.empty:
            for artist in self.stacked:
                artist.remove()
            if self.fiscal_axes.get_legend() is not None:
                self.fiscal_axes.get_legend().remove()
            columns = [c for c in _fiscal_columns(ts) if ts[c].abs().sum() > 0]
            self.stacked = list(self.fiscal_axes.stackplot(x, *(ts[c].to_numpy() for c in columns),
                                                           labels=[c[-3:] for c in columns])) if columns else []
            if columns:
                self.fiscal_axes.legend(fontsize=5, ncol=3, loc="upper left")
            self.fiscal_axes.relim()
            self.fiscal_axes.autoscale_view()
        self.figure.suptitle(f"month {len(ts)}", fontsize=9)
        return self.figure
