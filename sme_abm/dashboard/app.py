"""The sme-abm dashboard: ``solara run sme_abm/dashboard/app.py`` or ``sme-abm dashboard``.

Left: run controls and the 25 levers. Right: tabs with the live charts, the
comparison with the baseline, the results browser and the exports.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import solara  # noqa: E402

from sme_abm.dashboard import state  # noqa: E402
from sme_abm.dashboard.components import (  # noqa: E402
    ChartsPanel, ComparisonPanel, ExportPanel, LeverPanel, ResultsBrowser, RunControls,
)


@solara.component
def Page() -> None:
    """The whole dashboard."""
    solara.Title("sme-abm dashboard")
    state.current_run()
    with solara.Columns([1, 2]):
        with solara.Column(style={"max-height": "95vh", "overflow-y": "auto"}):
            RunControls()
            LeverPanel(state.settings.value, state.apply_settings)
        with solara.Column():
            if state.message.value:
                solara.Error(state.message.value, classes=["sme-message"])
            with solara.lab.Tabs():
                with solara.lab.Tab("Live charts"):
                    ChartsPanel()
                with solara.lab.Tab("Compare with baseline"):
                    ComparisonPanel()
                with solara.lab.Tab("Results browser"):
                    ResultsBrowser()
                with solara.lab.Tab("Export"):
                    ExportPanel()
