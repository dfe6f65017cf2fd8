"""The page's reactive state and the actions that change it.

Solara keeps one value of each reactive variable per browser session, so two
users of one server do not share runs. The :class:`Run` object is mutable and
is therefore created per session (never as a shared default); ``tick`` counts
its changes so components that draw it re-render.

Long actions (rebuilding the model, running N months, starting the comparison)
run through :func:`start`: while one runs, ``busy`` names it, ``progress``
counts its months, the page disables every control, and a second start is
refused with a message. In a served page they run in a thread (so the page can
show the progress); without a Solara kernel (``solara.render`` in tests) they
run at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import solara

from ..errors import ConfigError
from .results import ResultsError, SweepResults, load_results
from .session import (
    RUN_STEPS_RANGE, Comparison, Run, Settings, clamp, default_settings, list_presets, load_preset,
)

settings: solara.Reactive[Settings] = solara.reactive(default_settings())
run: solara.Reactive[Run | None] = solara.reactive(None)
tick = solara.reactive(0)
playing = solara.reactive(False)
#: Pause was pressed and the month in progress is still being stepped: the button shows it,
#: so the page says "Play" only once the last month is on it.
pausing = solara.reactive(False)
message = solara.reactive("")
steps_to_run = solara.reactive(12)
#: The baseline beside the run (kept at the run's month), or None.
comparison: solara.Reactive[Comparison | None] = solara.reactive(None)
#: The label of the long action under way ("" when idle).
busy = solara.reactive("")
#: (months done, months to do) of the long action, or None.
progress: solara.Reactive[tuple[int, int] | None] = solara.reactive(None)
#: True once this session's model is built and the server has warmed up.
ready = solara.reactive(False)
results: solara.Reactive[SweepResults | None] = solara.reactive(None)
results_message = solara.reactive("")

#: Set once the server has compiled the model's kernels and drawn a chart.
WARM = threading.Event()
_warm_lock = threading.Lock()


def warm_up() -> None:
    """Build a small model, step it and draw a chart once per server process,
    so the first session's first step and first redraw cost no compilation."""
    with _warm_lock:
        if WARM.is_set():
            return
        try:
            from . import charts

            small = Run.from_settings(default_settings().with_run(n_smes=200))
            small.step(2)
            live = charts.LiveFigure([0, 1, 2, -1])
            charts.png_bytes(live.update(small.timeseries(), small.model.smes.employment))
        finally:
            WARM.set()


def release_memory_loop(interval: float = 2.0) -> None:
    """Whenever Solara has dropped sessions, collect garbage and hand freed heap back to the OS.

    A closed session's model, figures and images are freed by Python, but
    glibc keeps the pages unless asked (``malloc_trim``); without this the
    server's memory stays at its peak after sessions close.
    """
    import ctypes
    import gc
    import time

    from solara.server import kernel_context

    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except OSError:
        trim = None
    last = 0
    while True:
        time.sleep(interval)
        now = len(kernel_context.contexts)
        if now < last:
            gc.collect()
            if trim is not None:
                trim(0)
        last = now


def _in_background(work: Callable[[], None]) -> bool:
    """Run ``work`` in a thread bound to this session's kernel; at once if there is none."""
    from solara.server import kernel_context

    if not kernel_context.has_current_context():
        work()
        return False
    thread = threading.Thread(target=work, daemon=True, name="sme-dashboard-action")
    kernel_context.set_context_for_thread(kernel_context.get_current_context(), thread)
    thread.start()
    return True


def start(label: str, work: Callable[[], None]) -> bool:
    """Run long action ``work`` unless another is under way.

    Returns:
        False (and a message) if an action was already running.
    """
    if busy.value:
        message.set(f"Wait: {busy.value.lower()} is still under way.")
        return False
    busy.set(label)
    progress.set(None)
    message.set("")

    def body() -> None:
        try:
            work()
        except ConfigError as exc:
            message.set(f"{label} failed: {exc}")
        finally:
            progress.set(None)
            busy.set("")
            tick.set(tick.value + 1)

    _in_background(body)
    return True


#: Shortest time between two progress reports of one action. Every report is a
#: message to the browser; at one a month a loaded machine's browser fell so far
#: behind that it applied a whole run's messages in one batch and never showed
#: the page as busy (and the server spent a third of a run rendering the bar).
PROGRESS_INTERVAL = 0.25
_last_report = threading.local()


def report_progress(done: int, total: int) -> None:
    """Show ``done`` of ``total``: the first month, the last, and at most one
    report every :data:`PROGRESS_INTERVAL` seconds between them."""
    now = time.monotonic()
    if done not in (1, total) and now - getattr(_last_report, "time", 0.0) < PROGRESS_INTERVAL:
        return
    _last_report.time = now
    progress.set((done, total))


def current_run() -> Run:
    """This session's run, built from the settings on first use."""
    if run.value is None:
        run.set(Run.from_settings(settings.value))
    return run.value  # type: ignore[return-value]


def prepare() -> None:
    """Warm the server up and build this session's run, then mark it ready."""
    warm_up()
    current_run()
    ready.set(True)


def apply_settings(new: Settings) -> bool:
    """Adopt ``new`` settings and restart the run from month 0.

    Settings equal to the current ones change nothing (a widget echoing its
    value back is not a change).

    Returns:
        False (state untouched, message set) if the settings do not make a
        valid config, or another action is under way.
    """
    if new == settings.value and run.value is not None:
        return True
    if busy.value:
        message.set(f"Wait: {busy.value.lower()} is still under way.")
        return False
    try:
        fresh = Run.from_settings(new)
    except ConfigError as exc:
        message.set(f"Settings not applied: {exc}")
        return False
    playing.set(False)
    settings.set(new)
    run.set(fresh)
    message.set("")
    if comparison.value is not None:
        comparison.set(Comparison(fresh, new))
    tick.set(tick.value + 1)
    return True


def choose_preset(name: str) -> None:
    """Load preset ``name`` (one of :func:`list_presets`, never a path); a file
    that cannot be read leaves everything as it was.

    A size the user typed is kept; otherwise the preset's own size is used.
    """
    if name not in list_presets():
        message.set(f"Preset not loaded: {name!r} is not one of the presets.")
        return
    current = settings.value
    typed_size = current.n_smes != current.base["simulation"]["n_smes"]
    try:
        new = load_preset(name, n_smes=current.n_smes if typed_size else None)
    except (ConfigError, OSError) as exc:
        message.set(f"Preset '{name}' not loaded: {exc}")
        return
    apply_settings(new)


def _advance(n: int) -> None:
    current_run().step(n)
    if comparison.value is not None:
        comparison.value.catch_up()


def toggle_play() -> None:
    """Play, or ask the player to stop after the month it is stepping (:data:`pausing`)."""
    if playing.value:
        pausing.set(True)
        playing.set(False)
    else:
        playing.set(True)


def step(n: int = 1) -> bool:
    """Advance the current run (and the baseline beside it) ``n`` months and redraw."""
    if busy.value:
        message.set(f"Wait: {busy.value.lower()} is still under way.")
        return False
    message.set("")
    _advance(clamp(int(n), RUN_STEPS_RANGE))
    tick.set(tick.value + 1)
    return True


def run_months(n: int) -> bool:
    """Run ``n`` months as a long action, reporting each month."""
    n = clamp(int(n), RUN_STEPS_RANGE)

    def work() -> None:
        for done in range(1, n + 1):
            _advance(1)
            report_progress(done, n)

    return start(f"Running {n} months", work)


def reset() -> None:
    """Restart the run from month 0 with the current settings."""
    if busy.value:
        message.set(f"Wait: {busy.value.lower()} is still under way.")
        return
    settings_now = settings.value
    run.set(None)
    apply_settings(settings_now)


def set_comparison(on: bool) -> bool:
    """Turn the baseline beside the run on (built and caught up as a long
    action) or off."""
    if not on:
        comparison.set(None)
        tick.set(tick.value + 1)
        return True
    if comparison.value is not None:
        return True
    current, chosen = current_run(), settings.value

    def work() -> None:
        pair = Comparison(current, chosen)
        pair.baseline.step_to(current.months, report_progress)
        comparison.set(pair)

    return start("Running the baseline", work)


def run_comparison() -> None:
    """Compare the current run with the baseline over the same months."""
    set_comparison(True)


def open_results(folder: str) -> None:
    """Open a sweep's results folder under the results roots; anything else
    leaves the browser as it was."""
    try:
        loaded = load_results(folder)
    except ResultsError as exc:
        results_message.set(f"Results not opened: {exc}")
        return
    results.set(loaded)
    results_message.set("")


def dismiss_message() -> None:
    message.set("")

