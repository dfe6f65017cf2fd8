"""The sme-abm dashboard: ``sme-abm dashboard`` (or ``solara run sme_abm/dashboard/app.py``).

A heading and a two-line introduction; left: the run controls (sticky), what
differs from the preset, and the 25 levers by section with a search; right:
the headline figures and tabs with the live charts, the comparison with the
baseline, the results browser and the exports. Until the server has warmed up
and this session's model is built, the page shows that it is preparing and
offers no controls.
"""

from __future__ import annotations

import threading

import matplotlib

matplotlib.use("Agg")

import solara  # noqa: E402

from sme_abm.dashboard import state  # noqa: E402
from sme_abm.dashboard.components import (  # noqa: E402
    ChangesList, ChartsPanel, ComparisonPanel, ExportPanel, Headlines, LeverPanel, ResultsBrowser, RunControls,
    RunSettings,
)

TITLE = "SME support policy simulator"
INTRO = ("An agent-based model of China's small and medium enterprises under the 25 provisions of the 2020 SME "
         "support policy. Switch levers on or off, run the economy month by month, and compare with the "
         "baseline: the headline figures show the change.")

CSS = """
.sme-layout { display: grid; grid-template-columns: minmax(300px, 400px) minmax(0, 1fr); gap: 16px;
              align-items: start; }
.sme-busy-page { cursor: progress; }
.sme-left { position: sticky; top: 0; max-height: 100vh; overflow-y: auto; padding-right: 4px; }
.sme-run-controls { position: sticky; top: 0; z-index: 5; background: white; padding: 4px 0 6px 0;
                    border-bottom: 1px solid #ddd; }
.sme-hint { font-size: 0.85rem; color: #444; }
.sme-chip { font-size: 0.75rem; padding: 0 6px; border-radius: 8px; }
.sme-chip-off { background: #eee; color: #333; }
.sme-chip-changed { background: #fff3cd; color: #5c4400; }
.sme-headline { min-width: 130px; padding: 4px 10px; border: 1px solid #ddd; border-radius: 6px; }
.sme-headline-label { font-size: 0.85rem; color: #444; }
.sme-headline-value { font-size: 1.25rem; font-weight: bold; }
.sme-headline-change, .sme-headline-unit { font-size: 0.8rem; color: #333; }
.sme-lever { margin-bottom: 6px; }
.sme-changes { padding: 6px; background: #f6f8fa; border-radius: 6px; margin: 6px 0; }
h1.sme-title { font-size: 1.6rem; margin: 4px 0 2px 0; }
.sme-intro { max-width: 70em; margin-bottom: 8px; }
.sme-chart img { display: block; }
.sme-section-toggle { width: 100%; height: auto !important; min-height: 32px; text-transform: none !important;
                      justify-content: flex-start !important; font-weight: bold; letter-spacing: normal !important; }
.sme-section-toggle .v-btn__content { white-space: normal; text-align: left; flex: 1 1 auto; }
.sme-lever-details, .sme-lever-reset { text-transform: none !important; letter-spacing: normal !important; }
@media (max-width: 1000px) {
  .sme-layout { grid-template-columns: minmax(0, 1fr); }
  .sme-left { position: static; max-height: none; overflow: visible; }
}
"""


@solara.component
def Preparing() -> None:
    """Shown until the model is ready: no controls, so no input is lost."""
    def prepare() -> None:
        state.prepare()

    solara.use_thread(prepare, dependencies=[])
    with solara.Column(classes=["sme-preparing"], style={"max-width": "40em"}):
        solara.Text("Preparing the model (compiling the kernels and building the SMEs) ...",
                    classes=["sme-preparing-label"])
        solara.ProgressLinear(value=True)


@solara.component
def Page() -> None:
    """The whole dashboard."""
    solara.Title(TITLE)
    solara.Style(CSS)
    solara.HTML(tag="h1", unsafe_innerHTML=TITLE, classes=["sme-title"])
    solara.Text(INTRO, classes=["sme-intro"])
    if not state.ready.value:
        Preparing()
        return
    busy = bool(state.busy.value)
    with solara.Div(classes=["sme-layout", "sme-ready" if not busy else "sme-busy-page"]):
        with solara.Column(classes=["sme-left"], gap="4px"):
            RunControls()
            RunSettings()
            ChangesList(state.settings.value, busy)
            LeverPanel(state.settings.value, state.apply_settings, disabled=busy)
        with solara.Column(classes=["sme-right"], gap="8px"):
            if state.message.value:
                with solara.Row(classes=["sme-message-row"], style={"align-items": "center"}):
                    solara.Error(state.message.value, classes=["sme-message"])
                    solara.Button("Dismiss", text=True, on_click=state.dismiss_message, classes=["sme-dismiss"])
            Headlines()
            with solara.lab.Tabs():
                with solara.lab.Tab("Live charts"):
                    ChartsPanel()
                with solara.lab.Tab("Compare with baseline"):
                    ComparisonPanel()
                with solara.lab.Tab("Results browser"):
                    ResultsBrowser()
                with solara.lab.Tab("Export"):
                    ExportPanel()


# Warm the server up as soon as the app is loaded, before the first page asks.
threading.Thread(target=state.warm_up, daemon=True, name="sme-dashboard-warm-up").start()
threading.Thread(target=state.release_memory_loop, daemon=True, name="sme-dashboard-release-memory").start()
