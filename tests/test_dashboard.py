"""Dashboard tests without a browser: session logic, results folder, panels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

solara = pytest.importorskip("solara", reason="dashboard extras (solara) not installed")
v = pytest.importorskip("ipyvuetify")
widgets = pytest.importorskip("ipywidgets")

from sme_abm.config import load_config  # noqa: E402
from sme_abm.dashboard import components, state  # noqa: E402
from sme_abm.dashboard.results import ResultsError, load_results  # noqa: E402
from sme_abm.dashboard.session import (  # noqa: E402
    SMES_RANGE, Run, Settings, default_settings, list_presets, load_preset,
)
from sme_abm.errors import ConfigError  # noqa: E402
from sme_abm.levers import SECTION_TITLES, load_registry  # noqa: E402
from sme_abm.model import SMEEconomy  # noqa: E402

SMALL = 300


OPEN_RENDERS: list = []


def render(element):
    """``solara.render`` whose render context is closed after the test, so a
    later test's state changes do not re-render this test's components."""
    box, rc = solara.render(element, handle_error=False)
    OPEN_RENDERS.append(rc)
    return box, rc


@pytest.fixture(autouse=True)
def fresh_state():
    """Each test starts from the baseline preset with a small population."""
    state.settings.set(default_settings().with_run(n_smes=SMALL))
    state.run.set(None)
    state.playing.set(False)
    state.message.set("")
    state.comparison.set(None)
    state.results.set(None)
    state.results_message.set("")
    yield
    state.playing.set(False)
    while OPEN_RENDERS:
        OPEN_RENDERS.pop().close()


def switches(rc):
    return [w for w in rc.find(v.Switch).widgets if "sme-lever-switch" in (w.class_ or "")]


def button(rc, label):
    found = rc.find(v.Btn, children=[label])
    found.assert_single()
    return found.widget


# -- session -----------------------------------------------------------------


def test_presets_include_the_shipped_configs():
    names = list_presets()
    assert names[0] == "baseline"
    assert {"baseline", "no-policy", "shock"} <= set(names)


def test_settings_are_bounded():
    settings = default_settings()
    assert settings.with_run(n_smes=10**9).n_smes == SMES_RANGE[1]
    assert settings.with_run(seed=-5).seed == 0
    lever = load_registry().by_key("p01_legal_system")
    high = lever.parameters["loan_recovery_rate"].range[1]
    assert settings.with_lever("p01_legal_system", "loan_recovery_rate", 7.0).levers["p01_legal_system"]["loan_recovery_rate"] == high


def test_exported_config_reproduces_the_run(tmp_path):
    settings = default_settings().with_run(n_smes=SMALL, seed=11).with_lever("p13_financing_guarantee", "enabled", False)
    run = Run.from_settings(settings)
    run.step(5)
    path = tmp_path / "exported.toml"
    path.write_text(run.export_toml(), encoding="utf-8")
    config = load_config(path)
    assert config.simulation.seed == 11 and config.simulation.n_smes == SMALL and config.simulation.steps == 5
    assert config.levers.p13_financing_guarantee.enabled is False
    again = SMEEconomy(config).run().timeseries()
    pd.testing.assert_frame_equal(again, run.timeseries())


def test_bad_preset_raises_config_error(tmp_path):
    (tmp_path / "broken.toml").write_text("[simulation\nn_smes = 3", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_preset("broken", folder=tmp_path)


# -- panels --------------------------------------------------------------------


def test_lever_panel_has_25_switches_under_7_headings():
    changes = []
    _, rc = render(components.LeverPanel(state.settings.value, changes.append))
    found = switches(rc)
    assert len(found) == 25
    sliders = rc.find(v.Slider).widgets
    for slider in sliders:
        assert slider.min <= slider.v_model <= slider.max
    found[12].v_model = False
    assert changes and changes[-1].levers["p13_financing_guarantee"]["enabled"] is False
    assert [w.label.split(".")[0] for w in found] == [str(n) for n in range(1, 26)]
    assert len(SECTION_TITLES) == 7


def test_page_steps_and_switching_a_lever_restarts(monkeypatch):
    from sme_abm.dashboard import app

    _, rc = render(app.Page())
    assert len(switches(rc)) == 25
    button(rc, "Step").click()
    assert state.current_run().months == 1
    assert len(rc.find(widgets.Image).widgets) == 1  # the Firms group: four panels in one figure
    first = rc.find(widgets.Image).widgets[0].value
    state.steps_to_run.set(6)
    button(rc, "Run 6 months").click()
    assert state.current_run().months == 7
    assert rc.find(widgets.Image).widgets[0].value != first
    switches(rc)[12].v_model = False
    assert state.current_run().months == 0
    assert state.current_run().config.levers.p13_financing_guarantee.enabled is False
    button(rc, "Reset").click()
    assert state.current_run().months == 0


def test_chart_groups_draw_every_panel():
    from sme_abm.dashboard.charts import PANELS, LiveFigure

    run = state.current_run()
    run.step(3)
    drawn = []
    for name, panels in components.CHART_GROUPS.items():
        live = LiveFigure(panels)
        figure = live.update(run.timeseries(), run.model.smes.employment)
        drawn += panels
        titles = [ax.get_title() for ax in figure.axes if ax.get_visible() and ax.get_title()]
        assert len(titles) == len(panels), name
        assert all(len(line.get_xdata()) > 0 for _, line, _ in live.lines)
    assert sorted(drawn) == [-1, *range(len(PANELS))]


def test_comparison_panel_needs_months_then_shows_differences():
    _, rc = render(components.ComparisonPanel())
    button(rc, "Compare with baseline").click()
    assert "at least one month" in state.message.value
    state.apply_settings(state.settings.value.with_lever("p13_financing_guarantee", "enabled", False))
    state.step(4)
    button(rc, "Compare with baseline").click()
    current, baseline = state.comparison.value
    assert len(current) == len(baseline) == 4
    assert not current["credit_guaranteed"].equals(baseline["credit_guaranteed"])
    assert len(rc.find(widgets.Image).widgets) == 1


def test_bad_preset_shows_message_and_keeps_state(tmp_path, monkeypatch):
    (tmp_path / "baseline.toml").write_text("name = 'baseline'\n", encoding="utf-8")
    (tmp_path / "broken.toml").write_text("[simulation]\nn_smes = -3\n", encoding="utf-8")
    monkeypatch.setenv("SME_ABM_CONFIGS", str(tmp_path))
    state.step(2)
    before = (state.settings.value, state.current_run())
    state.choose_preset("broken")
    assert "broken" in state.message.value and "n_smes" in state.message.value
    assert (state.settings.value, state.current_run()) == before
    assert state.current_run().months == 2


def test_export_panel_offers_csv_and_toml():
    state.step(3)
    _, rc = render(components.ExportPanel())
    labels = [w.children[-1] for w in rc.find(v.Btn).widgets]
    assert any("CSV" in str(label) for label in labels) and any("TOML" in str(label) for label in labels)
    csv = state.current_run().export_csv()
    assert csv.splitlines()[0].startswith("step,") and len(csv.splitlines()) == 4


# -- results browser -------------------------------------------------------------


def make_sweep(folder: Path, sensitivity: bool = True) -> Path:
    """A small synthetic sweep: a 2 x 3 grid of two parameters, two seeds."""
    rows, series = [], []
    run_id = 0
    for guarantee in (0.5, 1.0):
        for recovery in (0.3, 0.45, 0.6):
            for seed in (1, 2):
                rows.append({"run_id": run_id, "seed": seed,
                             "levers.p13_financing_guarantee.leverage_limit": guarantee,
                             "levers.p01_legal_system.loan_recovery_rate": recovery,
                             "output_mean": 100 * guarantee + 10 * recovery + seed,
                             "npl_ratio_mean": 0.02 / guarantee})
                series.append(pd.DataFrame({"run_id": run_id, "step": np.arange(6),
                                            "output": np.linspace(100, 100 + run_id, 6)}))
                run_id += 1
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "runs.parquet")
    (folder / "timeseries").mkdir()
    for i in range(0, len(series), 4):
        pd.concat(series[i:i + 4]).to_parquet(folder / "timeseries" / f"part-{i:03d}.parquet")
    (folder / "manifest.json").write_text(json.dumps({"parameters": {
        "levers.p13_financing_guarantee.leverage_limit": [0.5, 1.0],
        "levers.p01_legal_system.loan_recovery_rate": [0.3, 0.45, 0.6]}}))
    if sensitivity:
        (folder / "sensitivity.json").write_text(json.dumps({"output_mean": {
            "names": ["leverage_limit", "loan_recovery_rate"], "S1": [0.8, 0.1], "ST": [0.85, 0.12]}}))
    return folder


def test_load_results_reads_the_synthetic_sweep(tmp_path):
    loaded = load_results(make_sweep(tmp_path / "sweep"))
    assert len(loaded.runs) == 12 and loaded.timeseries is not None and len(loaded.timeseries) == 72
    assert len(loaded.parameters) == 2
    assert "output_mean" in loaded.outcomes and "seed" not in loaded.outcomes
    assert list(loaded.sensitivity["parameter"]) == ["leverage_limit", "loan_recovery_rate"]
    assert loaded.warnings == []


def test_load_results_is_defensive(tmp_path):
    with pytest.raises(ResultsError):
        load_results(tmp_path / "missing")
    with pytest.raises(ResultsError):
        load_results(tmp_path)
    (tmp_path / "runs.parquet").write_text("not parquet")
    with pytest.raises(ResultsError):
        load_results(tmp_path)
    folder = make_sweep(tmp_path / "odd", sensitivity=False)
    (folder / "manifest.json").write_text("{broken")
    pd.DataFrame({"x": [1]}).to_parquet(folder / "timeseries" / "zz-no-run-id.parquet")
    (folder / "sensitivity.json").write_text(json.dumps({"unexpected": "shape"}))
    loaded = load_results(folder)
    assert len(loaded.runs) == 12
    assert any("manifest.json" in w for w in loaded.warnings)
    assert any("zz-no-run-id" in w for w in loaded.warnings)
    assert loaded.sensitivity is None
    assert len(loaded.parameters) == 2  # found from the dotted column names


def test_results_browser_shows_runs_heatmap_and_sensitivity(tmp_path):
    folder = make_sweep(tmp_path / "sweep")
    _, rc = render(components.ResultsBrowser())
    state.open_results(str(tmp_path / "nowhere"))
    assert "not a folder" in state.results_message.value and state.results.value is None
    state.open_results(str(folder))
    assert state.results_message.value == ""
    assert len(rc.find(widgets.Image).widgets) == 3  # lines, heatmap, sensitivity
    state.open_results(str(tmp_path))  # not a sweep: message, previous results kept
    assert "runs.parquet" in state.results_message.value
    assert state.results.value.folder == folder


def test_play_steps_until_paused():
    import time

    _, rc = render(components.RunControls())
    button(rc, "Play").click()
    deadline = time.monotonic() + 30
    while state.current_run().months < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    button(rc, "Pause").click()
    time.sleep(0.3)
    months = state.current_run().months
    assert months >= 3
    time.sleep(0.3)
    assert state.current_run().months == months


def test_dashboard_command_binds_to_loopback_by_default():
    from sme_abm.dashboard import server

    command = server.command()
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--port") + 1] == "8765"
    assert command[4].endswith("app.py") and "--no-check-version" in command
    assert server.environment()["SOLARA_ASSETS_PROXY"] == "True"


def test_results_browser_reads_a_real_morris_sweep(tmp_path):
    """The results browser reads what `sme-abm sweep` writes, sensitivity tables included."""
    import sme_abm
    from sme_abm.dashboard.results import load_results

    keys = ["levers.p13_financing_guarantee.fee_cap", "levers.p07_tax_relief.small_micro_cit_rate"]
    experiment = {"name": "m", "replicates": 1, "entropy": 1,
                  "overrides": {"simulation.n_smes": 200, "simulation.steps": 4},
                  "design": {"kind": "morris", "samples": 2,
                             "parameters": {keys[0]: {"range": [0.0, 0.03]}, keys[1]: {"range": [0.0, 0.25]}}}}
    sme_abm.sweep(experiment, workers=1, out=tmp_path / "morris", progress=False)
    results = load_results(tmp_path / "morris")
    assert results.warnings == []
    assert sorted(results.parameters) == sorted(keys)
    sensitivity = results.sensitivity
    assert sensitivity is not None and {"parameter", "mu_star", "outcome"} <= set(sensitivity)
    assert set(sensitivity["parameter"]) == set(keys)


def test_run_setters_clamp_to_their_widget_ranges_and_say_so():
    from sme_abm.dashboard.session import SMES_RANGE

    set_smes = components.bounded_run_setter(state.settings.value, "n_smes", "Number of SMEs", SMES_RANGE, ",")
    set_smes(10)
    assert state.settings.value.n_smes == SMES_RANGE[0]
    assert state.message.value == "Number of SMEs must be between 100 and 50,000; using 100."
    state.message.set("")
    set_smes(300)
    assert state.settings.value.n_smes == 300 and state.message.value == ""
