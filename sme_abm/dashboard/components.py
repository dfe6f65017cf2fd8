"""The dashboard's panels as Solara components.

Each panel reads the reactive state in :mod:`sme_abm.dashboard.state` and
changes it only through that module's actions. Charts are matplotlib figures
from :mod:`sme_abm.dashboard.charts` rendered to PNG on the server and shown as
``<img>`` elements with alt text, so the page needs no front-end charting
library (and no internet).

No widget writes a value the user did not set: lever parameters are numeric
fields showing the exact configured value (the slider beside each moves in
hundredths of the range and writes only when dragged), and
:meth:`Settings.with_lever` ignores a value equal to the current one.
"""

from __future__ import annotations

import base64
import threading
from typing import Any, Callable

import solara

from ..levers import SECTION_TITLES, load_registry
from . import charts, interactive, state
from .results import list_results_folders, results_roots
from .session import (
    HEADLINES, RUN_STEPS_RANGE, SEED_RANGE, SMES_RANGE, Settings, clamp, export_stem, format_value, headline_values,
    list_presets, relative_change,
)

#: Seconds between months while playing.
PLAY_INTERVAL = 0.05
#: Positions of a parameter's slider across its range.
SLIDER_POSITIONS = 100
#: Chart groups: name -> indices of :data:`charts.PANELS` (-1 is the rank plot).
CHART_GROUPS: dict[str, list[int]] = {
    "Firms": [0, 1, 2, -1],
    "Credit": [3, 4, 5, 6],
    "Fiscal and institutions": [7],
}


def png_src(figure: Any) -> str:
    return "data:image/png;base64," + base64.b64encode(charts.png_bytes(figure)).decode("ascii")


@solara.component
def Chart(make: Callable[[], Any], dependencies: list[Any], name: str, alt: str | Callable[[], str]) -> None:
    """A matplotlib figure as an ``<img>`` with alt text, drawn only when ``dependencies`` change."""
    src = solara.use_memo(lambda: png_src(make()), dependencies)
    text = alt() if callable(alt) else alt
    with solara.Div(classes=["sme-chart", f"sme-chart-{name}"]):
        solara.v.Html(tag="img", attributes={"src": src, "alt": text, "role": "img"},
                      style_="width: 100%; max-width: 1100px; height: auto;")


def Heading(text: str) -> Any:
    """A small heading (plain text in an ``<h3>``; Markdown would load KaTeX, which the offline assets lack)."""
    return solara.v.Html(tag="h3", children=[text], class_="sme-heading", style_="font-size: 1rem; margin: 8px 0 4px 0;")


# -- levers --------------------------------------------------------------------


def slider_position(value: float, low: float, high: float) -> int:
    """Where ``value`` sits on a parameter's slider (0..SLIDER_POSITIONS)."""
    if high <= low:
        return 0
    return int(round((float(value) - low) / (high - low) * SLIDER_POSITIONS))


def slider_value(position: int, low: float, high: float) -> float:
    """The value at a slider position, rounded so it reads cleanly (``0.054``, not ``0.054000000000000006``)."""
    return float(f"{low + (high - low) * position / SLIDER_POSITIONS:.10g}")


@solara.component
def ParameterField(lever: Any, name: str, value: float, enabled: bool, disabled: bool,
                   on_change: Callable[[str, str, Any], None]) -> None:
    """One lever parameter: exact numeric field, a coarse slider, unit, range and source.

    With the lever off the field shows the registry's off value (what the
    model uses) and cannot be edited; the on value is kept for later.
    """
    param = lever.parameters[name]
    low, high = param.range
    classes = ["sme-param", f"sme-param-{lever.key}-{name}"]
    with solara.Column(gap="0px", classes=classes):
        if enabled:
            with solara.Row(gap="8px", style={"align-items": "center", "flex-wrap": "wrap"}):
                solara.InputFloat(label=name.replace("_", " "), value=float(value), suffix=param.unit,
                                  on_value=lambda v: v is not None and on_change(lever.key, name, v),
                                  disabled=disabled, classes=["sme-param-input"], style={"max-width": "190px"})
                position = slider_position(value, low, high)

                def dragged(new: int) -> None:
                    if new != position:
                        on_change(lever.key, name, slider_value(new, low, high))

                with solara.Div(style={"flex": "1 1 120px", "min-width": "120px"}):
                    solara.SliderInt(label="", value=position, min=0, max=SLIDER_POSITIONS, on_value=dragged,
                                     thumb_label=False, disabled=disabled)
        else:
            solara.InputFloat(label=f"{name.replace('_', ' ')} (off value, used by the model)",
                              value=float(param.off), suffix=param.unit, disabled=True,
                              classes=["sme-param-input", "sme-param-off"], style={"max-width": "320px"})
            solara.Text(f"Value when on: {format_value(value)} {param.unit} (kept).",
                        classes=["sme-hint"])
        solara.Text(f"{param.description} Range {format_value(low)} to {format_value(high)} {param.unit}. "
                    f"Source: {param.source or 'not given'}.", classes=["sme-hint"])


@solara.component
def LeverControl(lever: Any, values: dict[str, Any], preset: dict[str, Any], disabled: bool,
                 on_change: Callable[[str, str, Any], None], on_reset: Callable[[str], None]) -> None:
    """One lever: its switch, what it does and, when opened, its parameters."""
    enabled = bool(values["enabled"])
    opened, set_opened = solara.use_state(False)
    changed = values != preset
    with solara.Column(gap="0px", classes=["sme-lever", f"sme-lever-box-{lever.key}"]):
        with solara.Row(gap="4px", style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Switch(label=f"{lever.provision}. {lever.title}", value=enabled, disabled=disabled,
                          on_value=lambda value: on_change(lever.key, "enabled", bool(value)),
                          classes=["sme-lever-switch", f"sme-lever-{lever.key}"])
            # the details button first, so it stays the same widget when the chips come and go
            solara.Button("Hide parameters" if opened else f"Parameters ({len(lever.parameters)})", text=True,
                          small=True, on_click=lambda: set_opened(not opened),
                          classes=["sme-lever-details", f"sme-lever-details-{lever.key}"])
            if not enabled:
                solara.Text("off", classes=["sme-chip", "sme-chip-off"])
            if changed:
                solara.Text("changed", classes=["sme-chip", "sme-chip-changed"])
                solara.Button("Reset to preset", text=True, small=True, disabled=disabled, on_click=lambda: on_reset(lever.key),
                              classes=["sme-lever-reset", f"sme-lever-reset-{lever.key}"])
        solara.Text(lever.description, classes=["sme-hint"])
        if opened:
            for name in lever.parameters:
                ParameterField(lever, name, values[name], enabled, disabled, on_change)


def lever_matches(lever: Any, query: str) -> bool:
    """True if the search ``query`` (words, any order) matches the lever's number, title, key or text."""
    words = query.lower().split()
    text = " ".join([str(lever.provision), lever.title, lever.key, lever.description, *lever.parameters]).lower()
    return all(word in text for word in words) if words else True


@solara.component
def LeverSection(section: int, title: str, levers: list[Any], settings: Settings, disabled: bool,
                 change: Callable[[str, str, Any], None], reset: Callable[[str], None], force_open: bool) -> None:
    opened, set_opened = solara.use_state(True)
    shown = opened or force_open
    off = sum(not settings.levers[lever.key]["enabled"] for lever in levers)
    label = f"{'▾' if shown else '▸'} {section}. {title} ({len(levers)} levers{f', {off} off' if off else ''})"
    with solara.Column(gap="0px", classes=["sme-section", f"sme-section-{section}"]):
        solara.Button(label, text=True, on_click=lambda: set_opened(not opened), classes=["sme-section-toggle"])
        if shown:
            for lever in levers:
                # keyed by lever, so a search that hides levers cannot hand one lever's widgets (and its
                # opened state) to another
                LeverControl(lever, settings.levers[lever.key], settings.base["levers"][lever.key], disabled,
                             change, reset).key(lever.key)


@solara.component
def LeverPanel(settings: Settings, on_settings: Callable[[Settings], Any], disabled: bool = False) -> None:
    """All 25 levers under the policy's 7 section headings, with a search."""
    registry = load_registry()
    query, set_query = solara.use_state("")

    def change(key: str, name: str, value: Any) -> None:
        new = settings.with_lever(key, name, value)
        if new is not settings:
            on_settings(new)

    def reset(key: str) -> None:
        on_settings(settings.reset_lever(key))

    with solara.Column(gap="4px", classes=["sme-lever-panel"]):
        solara.InputText("Search levers (number, name or word)", value=query, on_value=set_query,
                         continuous_update=True, classes=["sme-lever-search"])
        solara.Text("Changing a lever restarts the run from month 0 with the new settings.", classes=["sme-hint"])
        any_shown = False
        for section, title in SECTION_TITLES.items():
            levers = [lever for lever in registry.levers if lever.section == section and lever_matches(lever, query)]
            if levers:
                any_shown = True
                LeverSection(section, title, levers, settings, disabled, change, reset, bool(query.strip()))
        if not any_shown:
            solara.Text(f"No lever matches '{query}'.", classes=["sme-hint"])


@solara.component
def ChangesList(settings: Settings, disabled: bool) -> None:
    """What differs from the preset, each with a reset, and a reset for all."""
    changes = settings.changes()
    with solara.Column(gap="2px", classes=["sme-changes"]):
        if not changes:
            solara.Text(f"Settings exactly as in preset {settings.preset}.", classes=["sme-changes-none"])
            return
        solara.Text(f"Differs from preset {settings.preset}: {settings.changes_text()}", classes=["sme-changes-text"])
        with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
            keys = list(dict.fromkeys(c.key for c in changes if c.key))
            for key in keys:
                provision = load_registry().by_key(key).provision
                solara.Button(f"Reset lever {provision}", small=True, outlined=True, disabled=disabled,
                              on_click=lambda key=key: state.apply_settings(settings.reset_lever(key)),
                              classes=["sme-reset-lever"])
            solara.Button("Reset all to preset", small=True, color="primary", outlined=True, disabled=disabled,
                          on_click=lambda: state.apply_settings(settings.reset_all()), classes=["sme-reset-all"])


# -- run controls --------------------------------------------------------------


@solara.component
def PresetPicker(disabled: bool = False) -> None:
    """Load any config under ``configs/`` as the starting settings (chosen by name only)."""
    presets = list_presets()
    current = state.settings.value.preset
    if not presets:
        solara.Warning("No presets found (no configs/*.toml).")
        return
    solara.Select(label="Preset", values=presets, value=current if current in presets else None,
                  on_value=lambda name: name and state.choose_preset(name), disabled=disabled,
                  classes=["sme-preset"])


@solara.component
def Player() -> None:
    """Steps the run while ``playing`` is on (in a thread, so the page stays live).

    The thread waits until the page has finished drawing each month before it
    steps again: a month set while a render is still going would restart that
    render, and a render that never gets to finish stalls the page. Pausing lets
    the month in progress finish (no intrusive cancel, which could stop a month
    half-stepped) and clears ``pausing`` when the thread has stopped, after that
    month is on the page.
    """
    tick = state.tick.value
    drawn = solara.use_memo(threading.Event, [])

    def mark_drawn() -> None:
        drawn.set()

    solara.use_effect(mark_drawn, [tick])

    def loop(cancel) -> None:
        if not state.playing.value:
            return
        try:
            while state.playing.value and not cancel.is_set():
                drawn.clear()
                if not state.step(1):
                    state.playing.set(False)
                    break
                drawn.wait(timeout=10)
                cancel.wait(PLAY_INTERVAL)
        finally:
            state.pausing.set(False)

    solara.use_thread(loop, dependencies=[state.playing.value], intrusive_cancel=False)


@solara.component
def MonthLabel(settings: Settings) -> None:
    """Month, size, seed and preset of the current run (redrawn every step)."""
    _ = state.tick.value
    solara.Text(f"Month {state.current_run().months} · {settings.n_smes:,} SMEs · seed {settings.seed} · "
                f"preset {settings.preset}", classes=["sme-month"])


def bounded_run_setter(settings: Settings, key: str, label: str, bounds: tuple[int, int],
                       number: str = "") -> Callable[[int | None], None]:
    """A setter for run setting ``key`` that clamps to ``bounds`` and says so in the page when it had to.

    ``number`` is the format spec the message shows the numbers with (``","`` for thousands).
    """
    def set_value(value: int | None) -> None:
        if value is None:
            return
        bounded = clamp(int(value), bounds)
        state.apply_settings(settings.with_run(**{key: bounded}))
        if bounded != value:
            low, high = (format(limit, number) for limit in bounds)
            state.message.set(f"{label} must be between {low} and {high}; using {bounded:{number}}.")
    return set_value


@solara.component
def BusyBar() -> None:
    """What long action is under way and how far it is (nothing when idle)."""
    label = state.busy.value
    if not label:
        return
    done_total = state.progress.value
    with solara.Column(gap="0px", classes=["sme-busy"], style={"width": "100%"}):
        if done_total:
            done, total = done_total
            solara.Text(f"{label}: month {done} of {total}", classes=["sme-busy-label"])
            solara.ProgressLinear(value=100 * done / max(total, 1))
        else:
            solara.Text(f"{label} ...", classes=["sme-busy-label"])
            solara.ProgressLinear(value=True)


@solara.component
def RunControls() -> None:
    """Step, play/pause, reset, run N months, the comparison switch (sticky);
    below: seed, number of SMEs and the preset."""
    settings = state.settings.value
    busy = bool(state.busy.value)
    playing, pausing = state.playing.value, state.pausing.value

    def set_months(value: int | None) -> None:
        if value is not None:
            state.steps_to_run.set(clamp(int(value), RUN_STEPS_RANGE))

    with solara.Column(gap="4px", classes=["sme-run-controls"]):
        MonthLabel(settings)
        with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
            solara.Button("Step", on_click=lambda: state.step(1), disabled=playing or pausing or busy,
                          classes=["sme-step"])
            solara.Button("Pausing…" if pausing else ("Pause" if playing else "Play"), classes=["sme-play"],
                          disabled=busy or pausing, on_click=state.toggle_play)
            solara.Button("Reset", on_click=state.reset, classes=["sme-reset"], disabled=busy)
        with solara.Row(gap="4px", style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.InputInt(f"Months ({RUN_STEPS_RANGE[0]}-{RUN_STEPS_RANGE[1]})", value=state.steps_to_run.value,
                            on_value=set_months, disabled=busy, classes=["sme-months"], style={"max-width": "130px"})
            solara.Button(f"Run {state.steps_to_run.value} months", classes=["sme-run-n"], disabled=playing or busy,
                          on_click=lambda: state.run_months(state.steps_to_run.value))
        solara.Switch(label="Compare with baseline (dashed lines)", value=state.comparison.value is not None,
                      disabled=busy, on_value=state.set_comparison, classes=["sme-compare-switch"])
        BusyBar()
        Player()


@solara.component
def RunSettings() -> None:
    """Seed, number of SMEs and the preset."""
    settings = state.settings.value
    busy = bool(state.busy.value)
    set_seed = bounded_run_setter(settings, "seed", "Seed", SEED_RANGE)
    set_smes = bounded_run_setter(settings, "n_smes", "Number of SMEs", SMES_RANGE, ",")
    with solara.Row(gap="8px", style={"flex-wrap": "wrap"}):
        solara.InputInt("Seed", value=settings.seed, on_value=set_seed, classes=["sme-seed"], disabled=busy,
                        style={"max-width": "140px"})
        solara.InputInt(f"Number of SMEs ({SMES_RANGE[0]:,}-{SMES_RANGE[1]:,})", value=settings.n_smes,
                        on_value=set_smes, classes=["sme-smes"], disabled=busy, style={"max-width": "220px"})
    PresetPicker(disabled=busy)


# -- headline figures, charts, comparison --------------------------------------


@solara.component
def Headlines() -> None:
    """The six headline figures at the current month, with their change against the baseline."""
    _ = state.tick.value
    run = state.current_run()
    now = headline_values(run.timeseries())
    pair = state.comparison.value
    base = headline_values(pair.baseline.timeseries()) if pair is not None and pair.in_step else {}
    with solara.Row(gap="8px", classes=["sme-headlines"], style={"flex-wrap": "wrap"}):
        for label, _column, unit, kind in HEADLINES:
            with solara.Column(gap="0px", classes=["sme-headline"]):
                solara.Text(label, classes=["sme-headline-label"])
                value = now.get(label)
                solara.Text(charts.format_number(value) if value is not None else "–",
                            classes=["sme-headline-value"])
                if value is not None and label in base:
                    solara.Text(f"{relative_change(value, base[label], kind)} vs baseline",
                                classes=["sme-headline-change"])
                else:
                    solara.Text(unit, classes=["sme-headline-unit"])


@solara.component
def ChartsPanel() -> None:
    """Live charts of the current run, one group at a time (keeps each redraw fast).

    The group's figure is built once per run and group and updated in place
    every step (see :class:`charts.LiveFigure`). With the comparison on, the
    baseline is drawn dashed, at the same month.
    """
    group, set_group = solara.use_state("Firms")
    run = state.current_run()
    tick = state.tick.value
    pair = state.comparison.value
    hover, set_hover = solara.use_state(False)
    with solara.Row(style={"align-items": "center"}):
        solara.ToggleButtonsSingle(value=group, values=list(CHART_GROUPS), on_value=set_group,
                                   classes=["sme-chart-groups"])
        if interactive.available():
            solara.Switch(label="Hover values (interactive charts)", value=hover, on_value=set_hover,
                          classes=["sme-hover-switch"])
    slug = group.split()[0].lower()
    baseline = pair.baseline.timeseries() if pair is not None else None
    ts = run.timeseries()
    on = hover and interactive.available()
    live = solara.use_memo(lambda: charts.LiveFigure(CHART_GROUPS[group], charts.shock_windows(run.config)),
                           [group, id(run)])
    figure = solara.use_memo(
        lambda: interactive.live_figure(ts, CHART_GROUPS[group], charts.shock_windows(run.config), baseline,
                                        run.model.smes.employment) if on else None,
        [on, tick, id(run), group, id(pair)])
    if figure is not None:
        with solara.Div(classes=["sme-chart-interactive", f"sme-chart-interactive-{slug}"]):
            solara.Text(charts.describe(ts, CHART_GROUPS[group], baseline), classes=["sme-chart-description"],
                        style={"font-size": "0.85rem"})
            solara.FigurePlotly(figure)
    else:
        Chart(lambda: live.update(ts, run.model.smes.employment, baseline), [tick, id(run), group, id(pair)], slug,
              alt=lambda: charts.describe(ts, CHART_GROUPS[group], baseline))
    if group == "Fiscal and institutions":
        InstitutionsTable()


@solara.component
def InstitutionsTable() -> None:
    """Banks and guarantors: balance sheets, capital ratios, leverage."""
    run = state.current_run()
    _ = state.tick.value
    Heading("Banks and guarantors (CNY m)")
    solara.DataFrame(charts.format_table(run.banks_table()), items_per_page=25)


@solara.component
def ComparisonPanel() -> None:
    """Current settings vs the baseline preset's levers, same seed, kept at the same month."""
    _ = state.tick.value
    solara.Text("The baseline runs the baseline preset's levers with this run's seed, size, economy and shocks, "
                "month by month beside the current run.", classes=["sme-hint"])
    pair = state.comparison.value
    if pair is None:
        solara.Button("Compare with baseline", on_click=state.run_comparison, classes=["sme-compare"],
                      disabled=bool(state.busy.value))
        return
    current, baseline = pair.frames()
    if not pair.in_step:
        solara.Warning(f"The baseline is at month {pair.baseline.months}, the run at {pair.current.months}.")
        return
    if current.empty:
        solara.Text("Run at least one month to see the comparison.", classes=["sme-compare-empty"])
        return
    Heading(f"Current vs baseline after {len(current)} months")
    solara.DataFrame(charts.comparison_table(current, baseline), items_per_page=12)
    solara.FileDownload(lambda: charts.comparison_csv(current, baseline),
                        filename=f"{export_stem(state.settings.value)}-vs-baseline-month{len(current)}.csv",
                        label="Comparison (CSV)", mime_type="text/csv")
    Chart(lambda: charts.comparison_figure(current, baseline), [state.tick.value, id(pair)], "comparison",
          alt=f"Difference from the baseline by month for {len(charts.COMPARE_OUTCOMES)} outcomes, "
              f"{len(current)} months.")


@solara.component
def ExportPanel() -> None:
    """Download the time series as CSV and the settings as a reproducing config."""
    _ = state.tick.value
    run = state.current_run()
    settings = state.settings.value
    stem = export_stem(settings)
    solara.Text(f"The config reproduces this run with: sme-abm run {stem}-dashboard.toml. It is the config "
                "the run was built from, with simulation.steps set to the months run so far; its header "
                "lists what differs from the preset.", classes=["sme-hint"])
    with solara.Row(style={"flex-wrap": "wrap"}):
        solara.FileDownload(run.export_csv, filename=f"{stem}-timeseries-month{run.months}.csv",
                            label="Time series (CSV)", mime_type="text/csv")
        solara.FileDownload(lambda: run.export_toml(settings), filename=f"{stem}-dashboard.toml",
                            label="Config (TOML)", mime_type="application/toml")


# -- results browser -----------------------------------------------------------


@solara.component_vue("folder_open.vue")
def FolderOpen(label: str, event_open_folder: Callable[[str], None]) -> None:
    """A folder field and its Open button; the click carries the typed text (no server-side copy to lag)."""


@solara.component
def ResultsBrowser() -> None:
    """Open a sweep's results folder under the results roots: runs, outcome charts, heatmap, sensitivity."""
    folders = solara.use_memo(list_results_folders, [])
    roots = ", ".join(str(root) for root in results_roots())
    solara.Text(f"Sweep folders under {roots} (the folders the browser may open).", classes=["sme-hint"])
    with solara.Row(style={"flex-wrap": "wrap", "align-items": "center"}):
        if folders:
            solara.Select("Sweep", values=folders, value=None, on_value=lambda f: f and state.open_results(f),
                          classes=["sme-results-pick"], style={"min-width": "280px"})
        else:
            solara.Text("No sweep folders found yet (run `sme-abm sweep`).", classes=["sme-hint"])
        FolderOpen(label="Or type a folder under the roots", event_open_folder=lambda folder: state.open_results(folder or ""))
    if state.results_message.value:
        solara.Error(state.results_message.value, classes=["sme-results-error"])
    loaded = state.results.value
    if loaded is None:
        return
    ResultsView(loaded)


@solara.component
def ResultsView(loaded: Any) -> None:
    """What :func:`load_results` could read from one folder."""
    kind = loaded.design_kind or "unknown"
    Heading(f"{loaded.folder.name}: {len(loaded.runs)} runs, {kind} design; swept: "
                    f"{', '.join(charts.readable(p) for p in loaded.parameters) or 'none found'}")
    for warning in loaded.warnings:
        solara.Warning(warning)
    solara.DataFrame(charts.format_table(loaded.runs), items_per_page=10)
    series = loaded.default_outputs
    outcome, set_outcome = solara.use_state(series[0] if series else None)
    if loaded.timeseries is not None and series:
        chosen = outcome if outcome in series else series[0]
        solara.Select("Time-series outcome", values=series, value=chosen, on_value=set_outcome,
                      classes=["sme-results-outcome"])
        Chart(lambda: charts.lines_figure(loaded.timeseries, chosen), [id(loaded), chosen], "sweep-lines",
              alt=f"{chosen} over time, one line per run of {loaded.folder.name}")
    metrics = loaded.default_metrics
    metric, set_metric = solara.use_state(metrics[0] if metrics else None)
    if metrics and loaded.parameters:
        chosen_metric = metric if metric in metrics else metrics[0]
        solara.Select("Run outcome", values=metrics, value=chosen_metric, on_value=set_metric,
                      classes=["sme-results-metric"])
        if loaded.is_grid and len(loaded.parameters) >= 2:
            first, second = loaded.parameters[:2]
            Chart(lambda: charts.heatmap_figure(loaded.runs, first, second, chosen_metric),
                  [id(loaded), chosen_metric], "heatmap", alt=f"Mean {chosen_metric} over {first} and {second}")
        else:
            for parameter in loaded.parameters[:6]:
                Chart(lambda parameter=parameter: charts.scatter_figure(loaded.runs, parameter, chosen_metric),
                      [id(loaded), chosen_metric, parameter], "scatter",
                      alt=f"{chosen_metric} of each run against {parameter}")
    if loaded.sensitivity is not None:
        SensitivityView(loaded)


@solara.component
def SensitivityView(loaded: Any) -> None:
    table = loaded.sensitivity
    Heading("Sensitivity")
    solara.DataFrame(charts.format_table(table), items_per_page=15)
    indices = [c for c in ("S1", "ST", "mu_star", "sigma", "delta") if c in table]
    if not indices:
        return
    groups = list(dict.fromkeys(table["outcome"])) if "outcome" in table else [""]
    for metric in groups:
        shown = table[table["outcome"] == metric] if metric else table
        Chart(lambda shown=shown, metric=metric: charts.sensitivity_figure(shown, "parameter", indices, metric),
              [id(loaded), metric], "sensitivity", alt=f"Sensitivity indices {', '.join(indices)} of {metric or 'the outcome'}")
