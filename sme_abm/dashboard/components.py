"""The dashboard's panels as Solara components.

Each panel reads the reactive state in :mod:`sme_abm.dashboard.state` and
changes it only through that module's actions. Charts are matplotlib figures
from :mod:`sme_abm.dashboard.charts` rendered to PNG on the server, so the page
needs no front-end charting library (and no internet).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import solara

from ..levers import SECTION_TITLES, load_registry
from . import charts, state
from .session import RUN_STEPS_RANGE, SEED_RANGE, SMES_RANGE, Settings, clamp, list_presets

#: Parameters shown per lever (the first ones are the main ones).
MAIN_PARAMETERS = 3
#: Seconds between months while playing.
PLAY_INTERVAL = 0.05
#: Chart groups: name -> indices of :data:`charts.PANELS` (-1 is the rank plot).
CHART_GROUPS: dict[str, list[int]] = {
    "Firms": [0, 1, 2, -1],
    "Credit": [3, 4, 5, 6],
    "Fiscal and institutions": [7],
}


@solara.component
def Chart(make: Callable[[], Any], dependencies: list[Any], name: str) -> None:
    """A matplotlib figure drawn only when ``dependencies`` change."""
    figure = solara.use_memo(make, dependencies)
    with solara.Div(classes=["sme-chart", f"sme-chart-{name}"]):
        solara.FigureMatplotlib(figure, dependencies=dependencies, format="png")


@solara.component
def LeverControl(lever: Any, values: dict[str, Any], on_change: Callable[[str, str, Any], None]) -> None:
    """One lever: its switch, description and main parameter sliders."""
    enabled = bool(values["enabled"])
    with solara.Column(gap="0px", classes=["sme-lever"], style={"margin-bottom": "8px"}):
        solara.Switch(label=f"{lever.provision}. {lever.title}", value=enabled,
                      on_value=lambda value: on_change(lever.key, "enabled", value),
                      classes=["sme-lever-switch", f"sme-lever-{lever.key}"])
        solara.Text(lever.description, style={"font-size": "0.8em", "color": "#555"})
        for name in list(lever.parameters)[:MAIN_PARAMETERS]:
            param = lever.parameters[name]
            low, high = param.range
            solara.SliderFloat(
                label=f"{name} ({param.unit})", value=float(values[name]), min=low, max=high,
                step=(high - low) / 100 if high > low else 1.0, disabled=not enabled,
                on_value=lambda value, name=name: on_change(lever.key, name, value),
            )


@solara.component
def LeverPanel(settings: Settings, on_settings: Callable[[Settings], Any]) -> None:
    """All 25 levers, grouped under the 7 section headings of the policy."""
    registry = load_registry()

    def change(key: str, name: str, value: Any) -> None:
        on_settings(settings.with_lever(key, name, value))

    with solara.Column(classes=["sme-lever-panel"]):
        solara.Markdown("Changing a lever restarts the run from month 0 with the new settings.")
        for section, title in SECTION_TITLES.items():
            solara.Markdown(f"**{section}. {title}**")
            for lever in registry.levers:
                if lever.section == section:
                    LeverControl(lever, settings.levers[lever.key], change)


@solara.component
def PresetPicker() -> None:
    """Load any config under ``configs/`` as the starting settings."""
    presets = list_presets()
    current = state.settings.value.preset
    if not presets:
        solara.Warning("No presets found (no configs/*.toml).")
        return
    solara.Select(label="Preset", values=presets, value=current if current in presets else None,
                  on_value=lambda name: name and state.choose_preset(name))


@solara.component
def Player() -> None:
    """Steps the run while ``playing`` is on (in a thread, so the page stays live).

    The thread waits until the page has finished drawing each month before it
    steps again: a month set while a render is still going would restart that
    render, and a render that never gets to finish stalls the page.
    """
    tick = state.tick.value
    drawn = solara.use_memo(threading.Event, [])

    def mark_drawn() -> None:
        drawn.set()

    solara.use_effect(mark_drawn, [tick])

    def loop(cancel) -> None:
        while state.playing.value and not cancel.is_set():
            drawn.clear()
            state.step(1)
            drawn.wait(timeout=10)
            cancel.wait(PLAY_INTERVAL)

    solara.use_thread(loop, dependencies=[state.playing.value])


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
def RunControls() -> None:
    """Step, play/pause, reset, run N months, seed and number of SMEs."""
    settings = state.settings.value

    set_seed = bounded_run_setter(settings, "seed", "Seed", SEED_RANGE)
    set_smes = bounded_run_setter(settings, "n_smes", "Number of SMEs", SMES_RANGE, ",")

    with solara.Column(classes=["sme-run-controls"]):
        MonthLabel(settings)
        with solara.Row():
            solara.Button("Step", on_click=lambda: state.step(1), disabled=state.playing.value, classes=["sme-step"])
            solara.Button("Pause" if state.playing.value else "Play", classes=["sme-play"],
                          on_click=lambda: state.playing.set(not state.playing.value))
            solara.Button("Reset", on_click=state.reset, classes=["sme-reset"])
        with solara.Row():
            solara.SliderInt("Months to run", value=state.steps_to_run.value, min=RUN_STEPS_RANGE[0],
                             max=RUN_STEPS_RANGE[1], on_value=state.steps_to_run.set)
            solara.Button(f"Run {state.steps_to_run.value} months", classes=["sme-run-n"],
                          disabled=state.playing.value, on_click=lambda: state.step(state.steps_to_run.value))
        with solara.Row():
            solara.InputInt("Seed", value=settings.seed, on_value=set_seed, classes=["sme-seed"])
            solara.InputInt(f"Number of SMEs ({SMES_RANGE[0]:,}-{SMES_RANGE[1]:,})", value=settings.n_smes,
                            on_value=set_smes, classes=["sme-smes"])
        PresetPicker()
    Player()


@solara.component
def ChartsPanel() -> None:
    """Live charts of the current run, one group at a time (keeps each redraw fast).

    The group's figure is built once per run and group and updated in place
    every step (see :class:`charts.LiveFigure`).
    """
    group, set_group = solara.use_state("Firms")
    run = state.current_run()
    tick = state.tick.value
    solara.ToggleButtonsSingle(value=group, values=list(CHART_GROUPS), on_value=set_group, classes=["sme-chart-groups"])
    live = solara.use_memo(lambda: charts.LiveFigure(CHART_GROUPS[group]), [group, id(run)])
    slug = group.split()[0].lower()
    Chart(lambda: live.update(run.timeseries(), run.model.smes.employment), [tick, id(run), group], slug)
    if group == "Fiscal and institutions":
        InstitutionsTable()


@solara.component
def InstitutionsTable() -> None:
    """Banks and guarantors: balance sheets, capital ratios, leverage."""
    run = state.current_run()
    _ = state.tick.value
    solara.Markdown("**Banks and guarantors** (CNY m)")
    solara.DataFrame(run.banks_table(), items_per_page=25)


@solara.component
def ComparisonPanel() -> None:
    """Current lever settings vs the baseline's, same seed, side by side."""
    solara.Markdown("Runs the baseline preset's levers with this run's seed, size, economy and shocks "
                    "for as many months as this run, then shows both and their difference.")
    solara.Button("Compare with baseline", on_click=state.run_comparison, classes=["sme-compare"])
    pair = state.comparison.value
    if pair is None:
        return
    current, baseline = pair
    solara.Markdown(f"**Current vs baseline after {len(current)} months**")
    solara.DataFrame(charts.comparison_table(current, baseline), items_per_page=10)
    Chart(lambda: charts.comparison_figure(current, baseline), [id(pair)], "comparison")


@solara.component
def ExportPanel() -> None:
    """Download the time series as CSV and the settings as a reproducing config."""
    run = state.current_run()
    name = run.config.name
    solara.Markdown(f"The config reproduces this run with `sme-abm run {name}-dashboard.toml`: it is the config "
                    "the run was built from, with `simulation.steps` set to the months run so far.")
    with solara.Row():
        solara.FileDownload(run.export_csv, filename=f"{name}-timeseries.csv", label="Time series (CSV)",
                            mime_type="text/csv")
        solara.FileDownload(run.export_toml, filename=f"{name}-dashboard.toml", label="Config (TOML)",
                            mime_type="application/toml")


@solara.component
def ResultsBrowser() -> None:
    """Open a sweep's results folder: runs, outcome charts, heatmap, sensitivity."""
    folder, set_folder = solara.use_state("")
    with solara.Row():
        solara.InputText("Results folder", value=folder, on_value=set_folder, continuous_update=True,
                         classes=["sme-results-folder"])
        solara.Button("Open", on_click=lambda: state.open_results(folder), classes=["sme-results-open"])
    if state.results_message.value:
        solara.Error(state.results_message.value, classes=["sme-results-error"])
    loaded = state.results.value
    if loaded is None:
        return
    ResultsView(loaded)


@solara.component
def ResultsView(loaded: Any) -> None:
    """What :func:`load_results` could read from one folder."""
    solara.Markdown(f"**{loaded.folder}**: {len(loaded.runs)} runs; swept: "
                    f"{', '.join(loaded.parameters) or 'none found'}")
    for warning in loaded.warnings:
        solara.Warning(warning)
    solara.DataFrame(loaded.runs, items_per_page=10)
    series = loaded.timeseries_outcomes
    outcome, set_outcome = solara.use_state(series[0] if series else None)
    if loaded.timeseries is not None and series:
        solara.Select("Time-series outcome", values=series, value=outcome if outcome in series else series[0],
                      on_value=set_outcome)
        chosen = outcome if outcome in series else series[0]
        Chart(lambda: charts.lines_figure(loaded.timeseries, chosen), [id(loaded), chosen], "sweep-lines")
    run_outcome, set_run_outcome = solara.use_state(loaded.outcomes[0] if loaded.outcomes else None)
    if loaded.outcomes and loaded.parameters:
        chosen_run = run_outcome if run_outcome in loaded.outcomes else loaded.outcomes[0]
        solara.Select("Run outcome", values=loaded.outcomes, value=chosen_run, on_value=set_run_outcome)
        first = loaded.parameters[0]
        if len(loaded.parameters) >= 2:
            second = loaded.parameters[1]
            Chart(lambda: charts.heatmap_figure(loaded.runs, first, second, chosen_run),
                  [id(loaded), chosen_run], "heatmap")
        else:
            Chart(lambda: charts.scatter_figure(loaded.runs, first, chosen_run), [id(loaded), chosen_run], "scatter")
    if loaded.sensitivity is not None:
        table = loaded.sensitivity
        solara.Markdown("**Sensitivity**")
        solara.DataFrame(table, items_per_page=15)
        indices = [c for c in ("S1", "ST", "mu_star", "sigma", "delta") if c in table]
        shown = table[table["outcome"] == table["outcome"].iloc[0]] if "outcome" in table else table
        if indices:
            Chart(lambda: charts.sensitivity_figure(shown, "parameter", indices), [id(loaded)], "sensitivity")
