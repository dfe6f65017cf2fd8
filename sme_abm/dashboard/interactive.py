"""Interactive live charts with hover values: Plotly figures shown with ``solara.FigurePlotly``.

Plotly 5.x draws in the browser with plotly.js, which its wheel installs as the
``jupyterlab-plotly`` nbextension; Solara 1.58.2 serves nbextensions from the
environment, so the charts work with no internet (checked in Chromium with every
request outside 127.0.0.1 refused, ``tests/test_dashboard_browser.py``). Plotly 6
moved to anywidget and has not been checked offline, hence ``plotly<6``.

The figures keep the static charts' properties (:mod:`.charts`): the month on the
x-axis, units on the y-axes, lever names, shock windows shaded, the baseline
dashed, and the legend outside the plotting area; hovering shows every series'
value at that month.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .charts import PANELS, RIGHT_LABELS, _fiscal_columns, lever_label, months, rank_points

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]


def available() -> bool:
    """Whether Plotly is installed (the ``dashboard`` extra installs it)."""
    import importlib.util

    return importlib.util.find_spec("plotly") is not None


def live_figure(ts: pd.DataFrame, panels: Sequence[int], shocks: Sequence[tuple[int, int, str]] = (),
                baseline: pd.DataFrame | None = None, firm_sizes: np.ndarray | None = None) -> Any:
    """A Plotly figure of a chart group (indices of :data:`charts.PANELS`, -1 the firm-size rank plot)."""
    from plotly.subplots import make_subplots

    panels = list(panels)
    cols = 2 if len(panels) > 1 else 1
    rows = -(-len(panels) // cols)
    titles = ["Firm size: rank vs employment (log-log)" if i < 0 else PANELS[i][0] for i in panels]
    specs = [[{"secondary_y": (i >= 0 and PANELS[i][0] in RIGHT_LABELS)} if k < len(panels) else None
              for k, i in ((r * cols + c, panels[r * cols + c] if r * cols + c < len(panels) else 0)
                           for c in range(cols))] for r in range(rows)]
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=titles, specs=specs, horizontal_spacing=0.12,
                           vertical_spacing=0.16 if rows > 1 else 0.1)
    x = months(ts) if not ts.empty else np.array([])
    with_base = baseline is not None and not baseline.empty
    bx = months(baseline) if with_base else np.array([])
    last = max(len(x), 12)
    for k, index in enumerate(panels):
        row, col = k // cols + 1, k % cols + 1
        if index < 0:
            rx, ry = rank_points(firm_sizes)
            figure.add_scatter(x=rx, y=ry, mode="markers", marker={"size": 4}, name="firms by size",
                               hovertemplate="log10 rank %{x:.2f}<br>log10 employment %{y:.2f}<extra></extra>",
                               row=row, col=col)
            figure.update_xaxes(title_text="log10 rank (1 = largest firm)", row=row, col=col)
            figure.update_yaxes(title_text="log10 employment (workers)", row=row, col=col)
            continue
        title, series, unit = PANELS[index]
        figure.update_xaxes(title_text="month", range=[0.5, last + 0.5], row=row, col=col)
        figure.update_yaxes(title_text=unit, row=row, col=col)
        for start, duration, kind in shocks:
            figure.add_vrect(x0=start + 0.5, x1=start + duration + 0.5, fillcolor="grey", opacity=0.15, line_width=0,
                             row=row, col=col, exclude_empty_subplots=False, annotation_text=f"{kind} shock",
                             annotation_position="top left")
        if title.startswith("Fiscal cost"):
            columns = [c for c in _fiscal_columns(ts) if ts[c].abs().sum() > 0] if not ts.empty else []
            for n, column in enumerate(columns):
                figure.add_scatter(x=x, y=ts[column].to_numpy(dtype=float), name=lever_label(column[len("fiscal_cost_"):]),
                                   stackgroup="fiscal", line={"width": 0.5, "color": COLORS[n % len(COLORS)]},
                                   hovertemplate="%{y:.4g} CNY m<extra>%{fullData.name}</extra>", row=row, col=col)
            if with_base and "fiscal_cost_total" in baseline:  # type: ignore[operator]
                figure.add_scatter(x=bx, y=baseline["fiscal_cost_total"].to_numpy(dtype=float),  # type: ignore[index]
                                   name="baseline total", line={"color": "black", "dash": "dash"},
                                   hovertemplate="%{y:.4g} CNY m<extra>baseline total</extra>", row=row, col=col)
            continue
        two_axes = title in RIGHT_LABELS
        if two_axes:
            figure.update_yaxes(title_text=RIGHT_LABELS[title], secondary_y=True, row=row, col=col)
        for n, (column, label) in enumerate(series):
            color = COLORS[(k * 3 + n) % len(COLORS)]
            extra = {"secondary_y": n == 1} if two_axes else {}
            shown_unit = RIGHT_LABELS[title] if two_axes and n == 1 else unit
            if column in ts:
                figure.add_scatter(x=x, y=ts[column].to_numpy(dtype=float), name=label, line={"color": color},
                                   legendgroup=title, legendgrouptitle_text=title if n == 0 else None,
                                   hovertemplate="%{y:.4g} " + shown_unit + "<extra>" + label + "</extra>", row=row, col=col,
                                   **extra)
            if with_base and column in baseline:  # type: ignore[operator]
                figure.add_scatter(x=bx, y=baseline[column].to_numpy(dtype=float),  # type: ignore[index]
                                   name=f"{label}, baseline", line={"color": color, "dash": "dash", "width": 1},
                                   legendgroup=title,
                                   hovertemplate="%{y:.4g} " + shown_unit + "<extra>" + label + ", baseline</extra>",
                                   row=row, col=col, **extra)
    note = " (dashed: baseline)" if with_base else ""
    figure.update_layout(title={"text": f"Month {len(ts)}{note}", "x": 0.01, "font": {"size": 14}},
                         height=380 * rows + 60, font={"size": 12}, hovermode="x unified",
                         legend={"x": 1.02, "y": 1.0, "xanchor": "left", "font": {"size": 11}, "groupclick": "toggleitem"},
                         margin={"l": 60, "r": 20, "t": 70, "b": 50}, template="plotly_white")
    return figure


__all__ = ["available", "live_figure"]
