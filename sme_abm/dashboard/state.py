"""The page's reactive state and the actions that change it.

Solara keeps one value of each reactive variable per browser session, so two
users of one server do not share runs. The :class:`Run` object is mutable and
is therefore created per session (never as a shared default); ``tick`` counts
its changes so components that draw it re-render.
"""

from __future__ import annotations

from typing import Any

import solara

from ..errors import ConfigError
from .results import ResultsError, SweepResults, load_results
from .session import RUN_STEPS_RANGE, Run, Settings, clamp, compare_with_baseline, default_settings, load_preset

settings: solara.Reactive[Settings] = solara.reactive(default_settings())
run: solara.Reactive[Run | None] = solara.reactive(None)
tick = solara.reactive(0)
playing = solara.reactive(False)
message = solara.reactive("")
steps_to_run = solara.reactive(12)
comparison: solara.Reactive[Any] = solara.reactive(None)
results: solara.Reactive[SweepResults | None] = solara.reactive(None)
results_message = solara.reactive("")


def current_run() -> Run:
    """This session's run, built from the settings on first use."""
    if run.value is None:
        run.set(Run.from_settings(settings.value))
    return run.value  # type: ignore[return-value]


def apply_settings(new: Settings) -> bool:
    """Adopt ``new`` settings and restart the run from month 0.

    Returns:
        False (state untouched, message set) if the settings do not make a
        valid config.
    """
    try:
        fresh = Run.from_settings(new)
    except ConfigError as exc:
        message.set(f"Settings not applied: {exc}")
        return False
    playing.set(False)
    settings.set(new)
    run.set(fresh)
    comparison.set(None)
    message.set("")
    tick.set(tick.value + 1)
    return True


def choose_preset(name: str) -> None:
    """Load preset ``name``; a file that cannot be read leaves everything as it was."""
    try:
        new = load_preset(name, n_smes=settings.value.n_smes)
    except ConfigError as exc:
        message.set(f"Preset '{name}' not loaded: {exc}")
        return
    except OSError as exc:
        message.set(f"Preset '{name}' not loaded: {exc}")
        return
    apply_settings(new)


def step(n: int = 1) -> None:
    """Advance the current run ``n`` months and redraw."""
    current_run().step(clamp(int(n), RUN_STEPS_RANGE))
    tick.set(tick.value + 1)


def reset() -> None:
    """Restart the run from month 0 with the current settings."""
    apply_settings(settings.value)


def run_comparison() -> None:
    """Compare the current run with the baseline over the same months."""
    current = current_run()
    if current.months < 1:
        message.set("Run at least one month before comparing with the baseline.")
        return
    comparison.set(compare_with_baseline(current, settings.value))
    message.set("")


def open_results(folder: str) -> None:
    """Open a sweep's results folder; an unreadable one leaves the browser as it was."""
    try:
        loaded = load_results(folder)
    except ResultsError as exc:
        results_message.set(f"Results not opened: {exc}")
        return
    results.set(loaded)
    results_message.set("")
