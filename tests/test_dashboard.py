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
def fresh_state(monkeypatch, tmp_path):
    """Each test starts from the baseline preset with a small population; the
    results browser's root is the test's temporary folder."""
    monkeypatch.setenv("SME_ABM_RESULTS_ROOTS", str(tmp_path))
    state.busy.set("")
    state.ready.set(False)
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


def images(rc) -> list:
    """The chart images (``<img>`` elements with alt text) in a render."""
    return rc.find(v.Html, tag="img").widgets


def open_all_parameters(rc) -> None:
    for button_widget in [w for w in rc.find(v.Btn).widgets if "sme-lever-details" in (w.class_ or "")]:
        button_widget.click()


def test_lever_panel_has_25_switches_under_7_headings():
    changes = []
    _, rc = render(components.LeverPanel(state.settings.value, changes.append))
    found = switches(rc)
    assert len(found) == 25
    open_all_parameters(rc)
    sliders = rc.find(v.Slider).widgets
    assert len(sliders) == sum(len(lever.parameters) for lever in load_registry().levers)
    for slider in sliders:
        assert slider.min <= slider.v_model <= slider.max
    assert changes == []  # opening every lever's parameters wrote nothing
    found[12].v_model = False
    assert changes and changes[-1].levers["p13_financing_guarantee"]["enabled"] is False
    assert [w.label.split(".")[0] for w in found] == [str(n) for n in range(1, 26)]
    assert len(SECTION_TITLES) == 7


def test_page_steps_and_switching_a_lever_restarts(monkeypatch):
    from sme_abm.dashboard import app

    state.prepare()
    _, rc = render(app.Page())
    assert len(switches(rc)) == 25
    button(rc, "Step").click()
    assert state.current_run().months == 1
    assert len(images(rc)) == 1  # the Firms group: four panels in one figure
    first = images(rc)[0].attributes["src"]
    assert "Month 1" in images(rc)[0].attributes["alt"]
    state.steps_to_run.set(6)
    button(rc, "Run 6 months").click()
    assert state.current_run().months == 7
    assert images(rc)[0].attributes["src"] != first
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
        titles = [ax.get_title(loc="left") for ax in figure.axes if ax.get_visible() and ax.get_title(loc="left")]
        assert len(titles) == len(panels), name
        assert all(len(line.get_xdata()) > 0 for _, line, _ in live.lines)
    assert sorted(drawn) == [-1, *range(len(PANELS))]


def test_live_charts_draw_the_background_once_per_layout_and_blit_the_lines():
    """A step's chart is the cached static figure plus the new lines (issue 18's latency):
    the full draw happens only when limits change (a new year on the month axis, data
    outside the value range), the blitted image is the full draw's pixel for pixel, and the
    limits always hold the data."""
    import io

    import PIL.Image

    from sme_abm.dashboard.charts import LiveFigure, png_bytes

    model = SMEEconomy(n_smes=1_000, rng=3, simulation__burn_in_months=0, simulation__mesa_agents=False)
    live = LiveFigure(components.CHART_GROUPS["Firms"])
    renders = 0
    for month in range(1, 37):
        model.step()
        figure = live.update(model.timeseries(), model.smes.employment)
        blitted = png_bytes(figure)
        renders += 1
        for ax, line, _ in live.lines:
            x, y = np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)
            low, high = ax.get_ylim()
            assert low <= np.nanmin(y) and np.nanmax(y) <= high
            if line is not live.rank_line:
                assert ax.get_xlim()[1] >= x.max() + 0.5 and x.max() == month
    # 9 full draws in 48 months measured at this size: each new year of the month axis, the
    # early months when the data's range grows fast, and jumps of the largest firm's size
    assert live.full_draws <= renders // 2
    live._background = None  # force a full draw of the same month
    full = png_bytes(figure)
    assert live.full_draws >= 2
    pixels = [np.asarray(PIL.Image.open(io.BytesIO(image)).convert("RGB")) for image in (blitted, full)]
    assert np.array_equal(*pixels)


def test_comparison_panel_needs_months_then_shows_differences():
    _, rc = render(components.ComparisonPanel())
    button(rc, "Compare with baseline").click()
    assert state.comparison.value is not None and state.comparison.value.baseline.months == 0
    assert rc.find(v.Html, class_="sme-compare-empty").widgets
    state.set_comparison(False)
    state.apply_settings(state.settings.value.with_lever("p13_financing_guarantee", "enabled", False))
    state.step(4)
    button(rc, "Compare with baseline").click()
    current, baseline = state.comparison.value.frames()
    assert len(current) == len(baseline) == 4
    assert not current["credit_guaranteed"].equals(baseline["credit_guaranteed"])
    assert len(images(rc)) == 1
    state.step(2)  # the baseline keeps up with the run
    current, baseline = state.comparison.value.frames()
    assert len(current) == len(baseline) == 6
    assert not rc.find(v.Html, class_="sme-compare-empty").widgets


def test_bad_preset_shows_message_and_keeps_state(tmp_path, monkeypatch):
    (tmp_path / "baseline.toml").write_text("name = 'baseline'\n[simulation]\nn_smes = 300\n", encoding="utf-8")
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
    (folder / "manifest.json").write_text(json.dumps({"design_kind": "grid", "parameters": {
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
    assert "not a sweep results folder" in state.results_message.value and state.results.value is None
    state.open_results(str(folder))
    assert state.results_message.value == ""
    assert len(images(rc)) == 3  # lines, heatmap, sensitivity
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


def test_pause_shows_play_only_once_the_month_in_progress_is_on_the_page(monkeypatch):
    """Pause lets the month being stepped finish; the button reads "Pausing…" until the
    player has stopped, so once it reads "Play" the month no longer changes (the browser test
    saw month 18 turn 19 after "Play" showed, on a loaded machine). A slow month (0.4 s) makes
    the click land while one is being stepped."""
    import time

    advance = state._advance

    def slow_advance(n: int) -> None:
        time.sleep(0.4)
        advance(n)

    monkeypatch.setattr(state, "_advance", slow_advance)
    _, rc = render(components.RunControls())
    button(rc, "Play").click()
    deadline = time.monotonic() + 30
    while state.current_run().months < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # into the next month's step
    button(rc, "Pause").click()
    assert state.pausing.value
    while state.pausing.value and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not state.pausing.value and not state.playing.value
    months = state.current_run().months
    time.sleep(0.8)
    assert state.current_run().months == months


def test_dashboard_command_binds_to_loopback_by_default():
    from sme_abm.dashboard import server

    command = server.command()
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--port") + 1] == "8765"
    assert command[2] == "sme_abm.dashboard.launch" and command[3].endswith("app.py")
    assert "--no-check-version" in command
    assert server.environment()["SOLARA_ASSETS_PROXY"] == "True"


def test_server_keeps_to_two_heap_arenas_unless_told(monkeypatch):
    """glibc's per-thread arenas kept a closed session's pages (issue 19.1's memory test read
    381 -> 432 MB after 20 sessions under load; with two arenas 369 -> 377 MB)."""
    from sme_abm.dashboard import server

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert server.environment()["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert server.environment()["MALLOC_ARENA_MAX"] == "4"


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


# -- issue 18 and 19.1 -------------------------------------------------------------


BASELINE_TOML = Path(__file__).resolve().parent.parent / "configs" / "baseline.toml"


def test_untouched_page_exports_the_preset_exactly(tmp_path):
    """Open the page, open every lever's parameters, touch nothing: the export is the preset."""
    from sme_abm.dashboard import app

    state.settings.set(default_settings())  # the preset as shipped, its own size
    state.prepare()
    _, rc = render(app.Page())
    open_all_parameters(rc)
    assert state.settings.value == default_settings()
    assert state.settings.value.changes() == []
    exported = tmp_path / "export.toml"
    exported.write_text(state.current_run().export_toml(state.settings.value), encoding="utf-8")
    assert load_config(exported).to_dict() == load_config(BASELINE_TOML).to_dict()
    fields = {w.label: w.v_model for w in rc.find(v.TextField).widgets}
    assert fields["fee cap"] == "0.01" and fields["leverage limit"] == "10.0"


def test_untouched_12_months_compare_shows_exactly_zero_differences():
    state.settings.set(default_settings())
    state.prepare()
    state.set_comparison(True)
    state.run_months(12)
    current, baseline = state.comparison.value.frames()
    assert len(current) == len(baseline) == 12
    pd.testing.assert_frame_equal(current, baseline)
    from sme_abm.dashboard import charts

    table = charts.comparison_table(current, baseline)
    assert set(table["Difference"]) == {"0"} and set(table["Change"]) == {"0"}


def test_slider_positions_never_snap_the_configured_value():
    from sme_abm.dashboard.components import slider_position, slider_value

    lever = load_registry().by_key("p05_fiscal_support") if "p05_fiscal_support" in load_registry().keys \
        else load_registry().levers[4]
    for lever in load_registry().levers:
        for name, param in lever.parameters.items():
            low, high = param.range
            position = slider_position(param.default, low, high)
            assert 0 <= position <= 100
            # a drag writes a value that prints cleanly (no 0.054000000000000006)
            assert len(repr(slider_value(position, low, high))) <= 14
    settings = default_settings()
    key = "p13_financing_guarantee"
    assert settings.with_lever(key, "fee_cap", settings.levers[key]["fee_cap"]) is settings


def test_off_lever_shows_the_off_values_the_model_uses():
    _, rc = render(components.LeverPanel(state.settings.value, state.apply_settings))
    switches(rc)[12].v_model = False
    _, rc = render(components.LeverPanel(state.settings.value, state.apply_settings))
    [w for w in rc.find(v.Btn).widgets if "sme-lever-details-p13" in (w.class_ or "")][0].click()
    lever = load_registry().by_key("p13_financing_guarantee")
    off_fields = [w for w in rc.find(v.TextField).widgets if "sme-param-off" in (w.class_ or "")]
    assert len(off_fields) == len(lever.parameters)
    assert all(w.disabled for w in off_fields)
    assert [float(w.v_model) for w in off_fields] == [p.off for p in lever.parameters.values()]


def test_changes_list_names_what_differs_and_resets():
    settings = default_settings().with_run(n_smes=SMALL)
    settings = settings.with_lever("p07_tax_relief", "enabled", False).with_lever(
        "p13_financing_guarantee", "enabled", False).with_lever("p09_monetary_transmission", "relending_share", 0.8)
    text = settings.changes_text()
    assert text.startswith("levers 7 and 13 off; lever 9 relending_share 0.8 (preset ")
    state.apply_settings(settings)
    _, rc = render(components.ChangesList(state.settings.value, False))
    button(rc, "Reset lever 7").click()
    assert state.settings.value.levers["p07_tax_relief"]["enabled"] is True
    _, rc = render(components.ChangesList(state.settings.value, False))
    button(rc, "Reset all to preset").click()
    assert state.settings.value.changes() == []


def test_export_names_and_header_say_what_changed(tmp_path):
    settings = default_settings().with_run(n_smes=SMALL).with_lever("p13_financing_guarantee", "enabled", False)
    run = Run.from_settings(settings)
    run.step(2)
    text = run.export_toml(settings)
    assert text.startswith("# Exported from the sme-abm dashboard after 2 months; preset baseline.")
    assert "#   lever 13 off" in text
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.name == "baseline-modified" and "lever 13 off" in config.description
    from sme_abm.dashboard.session import export_stem

    assert export_stem(settings) == "baseline-modified" and export_stem(default_settings()) == "baseline"


def test_percent_changes_stay_meaningful_near_zero():
    from sme_abm.dashboard.session import relative_change

    assert relative_change(105.0, 100.0) == "+5%"
    assert relative_change(0.0001, 0.0001) == "0"
    assert relative_change(0.0184, 0.00001, "share") == "+1.84 pp"
    assert "%" not in relative_change(18.4, 0.01) and "baseline near 0" in relative_change(18.4, 0.01)


def test_headlines_show_change_against_the_baseline():
    state.set_comparison(True)
    state.apply_settings(state.settings.value.with_lever("p13_financing_guarantee", "enabled", False))
    state.step(3)
    _, rc = render(components.Headlines())
    labels = [w.children[0] for w in rc.find(v.Html, class_="sme-headline-label").widgets]
    assert labels == ["SMEs", "Employment", "Output", "Credit rationed", "NPL ratio", "Net fiscal cost"]
    changes = [w.children[0] for w in rc.find(v.Html, class_="sme-headline-change").widgets]
    assert len(changes) == 6 and all(c.endswith("vs baseline") for c in changes)


def test_long_actions_cannot_start_twice():
    started = []
    state.busy.set("Running 12 months")
    assert state.start("Running the baseline", lambda: started.append(1)) is False
    assert started == [] and "still under way" in state.message.value
    assert state.step(1) is False and state.current_run().months == 0
    state.busy.set("")
    assert state.start("Running the baseline", lambda: started.append(1)) is True
    assert started == [1] and state.busy.value == ""


def test_busy_page_disables_the_controls():
    from sme_abm.dashboard import app

    state.prepare()
    state.busy.set("Running 12 months")
    _, rc = render(app.Page())
    run_n = rc.find(v.Btn, class_="sme-run-n").widget
    assert button(rc, "Step").disabled and run_n.disabled
    assert all(w.disabled for w in switches(rc))
    assert rc.find(v.Html, class_="sme-busy-label").widgets


def test_progress_reaches_the_page_at_most_every_quarter_second(monkeypatch):
    """A run's progress is reported for its first and last month and at most once per
    interval between: a report a month flooded a loaded browser (issue 18, problem 2)."""
    reports, clock = [], [100.0]
    monkeypatch.setattr(state, "progress", type("Sink", (), {"set": lambda self, value: reports.append(value)})())
    monkeypatch.setattr(state.time, "monotonic", lambda: clock[0])
    for done in range(1, 241):
        clock[0] += 0.01  # 10 ms a month: 2.4 s in all
        state.report_progress(done, 240)
    assert reports[0] == (1, 240) and reports[-1] == (240, 240)
    gaps = np.diff([done for done, _ in reports[1:-1]])
    assert 8 <= len(reports) <= 12 and (gaps >= state.PROGRESS_INTERVAL / 0.01 - 1).all(), reports


def test_page_waits_for_the_model_before_offering_controls():
    from sme_abm.dashboard import app

    _, rc = render(app.Page())
    # not ready yet: the page says so and shows no control (the preparing thread may finish meanwhile)
    assert rc.find(v.Html, class_="sme-preparing-label").widgets or state.ready.value


def test_presets_are_chosen_by_name_only(tmp_path):
    outside = tmp_path / "outside.toml"
    outside.write_text("name = 'outside'\n", encoding="utf-8")
    before = state.settings.value
    for name in (str(outside.with_suffix("")), "../../../../../../" + str(outside.with_suffix("")), "nonexistent"):
        state.choose_preset(name)
        assert "not one of the presets" in state.message.value
        assert state.settings.value == before
    with pytest.raises(ConfigError):
        load_preset("../configs/baseline")


def test_results_browser_refuses_outside_its_roots_with_one_message(tmp_path, monkeypatch):
    root = tmp_path / "results"
    root.mkdir()
    monkeypatch.setenv("SME_ABM_RESULTS_ROOTS", str(root))
    elsewhere = make_sweep(tmp_path / "elsewhere")
    (tmp_path / "csv-only").mkdir()
    pd.DataFrame({"run_id": [1], "x": [2.0]}).to_csv(tmp_path / "csv-only" / "runs.csv", index=False)
    (root / "csv").mkdir()
    pd.DataFrame({"run_id": [1], "x": [2.0]}).to_csv(root / "csv" / "runs.csv", index=False)
    (root / "link").symlink_to(elsewhere)

    def refusal(path):
        with pytest.raises(ResultsError) as info:
            load_results(path)
        return str(info.value).replace(str(path), "PATH")

    messages = {refusal(p) for p in ("/etc", "/nonexistent/folder", str(elsewhere), str(tmp_path / "csv-only"),
                                     str(root / "missing"), str(root / "csv"), str(root / "link"), "../..")}
    assert len(messages) == 1, messages
    inside = make_sweep(root / "sweeps" / "grid")
    assert len(load_results(inside).runs) == 12
    assert len(load_results("sweeps/grid").runs) == 12  # relative to the root
    from sme_abm.dashboard.results import list_results_folders

    assert list_results_folders() == ["sweeps/grid"]


def test_results_browser_defaults_to_declared_outputs_and_grids_only(tmp_path):
    folder = make_sweep(tmp_path / "sweep")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["experiment"] = {"outputs": ["output"], "metrics": ["npl_ratio_mean"]}
    manifest["design_kind"] = "morris"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_results(folder)
    assert loaded.default_metrics[0] == "npl_ratio_mean" and "point" not in loaded.outcomes
    assert not loaded.is_grid
    state.open_results(str(folder))
    _, rc = render(components.ResultsView(loaded))
    alts = [w.attributes["alt"] for w in images(rc)]
    assert not any(a.startswith("Mean ") for a in alts)  # no heatmap for a Morris design
    assert sum("of each run against" in a for a in alts) == 2  # a scatter per swept parameter
    assert any("output_mean" in a for a in alts)  # sensitivity chart names its metric


def test_guard_checks_host_and_origin(monkeypatch):
    from sme_abm.dashboard import guard

    monkeypatch.setenv("SERVER_PORT", "8765")
    monkeypatch.delenv("SME_ABM_ALLOWED_ORIGINS", raising=False)
    monkeypatch.delenv("SME_ABM_ALLOWED_HOSTS", raising=False)
    ok = {"host": "127.0.0.1:8765", "origin": "http://127.0.0.1:8765"}
    assert guard.check(ok, websocket=True) == ""
    assert guard.check({"host": "localhost:8765", "origin": "http://localhost:8765"}, websocket=True) == ""
    assert guard.check({**ok, "origin": "http://evil.example"}, websocket=True) == "origin not allowed"
    assert guard.check({**ok, "origin": "http://127.0.0.1:9999"}, websocket=True) == "origin not allowed"
    assert guard.check({"host": "127.0.0.1:8765"}, websocket=True) == "origin required"
    assert guard.check({"host": "127.0.0.1:8765"}, websocket=False) == ""
    assert guard.check({**ok, "host": "rebind.example:8765"}, websocket=False) == "host not allowed"
    monkeypatch.setenv("SME_ABM_ALLOWED_ORIGINS", "https://analyst.example")
    monkeypatch.setenv("SME_ABM_ALLOWED_HOSTS", "analyst.example")
    assert guard.check({"host": "analyst.example", "origin": "https://analyst.example"}, websocket=True) == ""


def test_dashboard_command_passes_the_guard_settings(tmp_path):
    from sme_abm.dashboard import server

    env = server.environment("10.0.0.5", allow_origins=["http://10.0.0.5:8765"], results_roots=[str(tmp_path)],
                             max_sessions=4)
    assert env["SME_ABM_ALLOWED_HOSTS"] == "10.0.0.5"
    assert env["SME_ABM_ALLOWED_ORIGINS"] == "http://10.0.0.5:8765"
    assert env["SME_ABM_RESULTS_ROOTS"] == str(tmp_path.resolve()) and env["SME_ABM_MAX_SESSIONS"] == "4"
    assert env["SOLARA_KERNEL_CULL_TIMEOUT"] == server.CULL_TIMEOUT


def test_18_hover_switch_shows_interactive_plotly_charts_with_units_lever_names_and_shocks() -> None:
    """Issue 18, hover values: the live charts' switch puts Plotly figures in place of the
    images, with the month on the x-axis, units, lever names, shocks shaded, the baseline dashed."""
    go = pytest.importorskip("plotly.graph_objects")
    from sme_abm.dashboard import interactive

    state.current_run().step(3)
    _, rc = render(components.ChartsPanel())
    assert not rc.find(go.FigureWidget).widgets  # static images until switched on
    rc.find(v.Switch, label="Hover values (interactive charts)").widget.v_model = True
    figure = rc.find(go.FigureWidget).widget
    names = {trace.name for trace in figure.data}
    assert {"micro", "small", "medium", "entries", "exits"} <= names
    assert figure.layout.xaxis.title.text == "month" and figure.layout.yaxis.title.text == "firms"
    assert figure.layout.hovermode == "x unified" and figure.layout.legend.x > 1  # legend outside the plots
    assert figure.layout.title.text == "Month 3"

    shocked = interactive.live_figure(state.current_run().timeseries(), [7], [(1, 2, "demand")],
                                      state.current_run().timeseries())
    assert [shape.type for shape in shocked.layout.shapes] == ["rect"]  # the shock window
    assert any(trace.name and trace.name[0].isdigit() and " " in trace.name for trace in shocked.data)  # "6 Special funds"
    assert any(trace.line.dash == "dash" for trace in shocked.data)  # the baseline


def test_bank_table_shows_reserves_not_the_ledger_position():
    """A bank's ledger account is reserves less the deposits it owes (negative for a
    deposit-taking bank); the table shows its money, its reserves."""
    run = Run(load_config({"simulation": {"n_smes": 500, "burn_in_months": 0}}))
    run.step(2)
    table = run.banks_table()
    banks = run.model.banks
    shown = table[table["institution"].str.startswith("bank ")]
    assert np.allclose(shown["cash"].to_numpy(), banks.reserves, rtol=0, atol=1e-4)  # the table rounds to 4 places
    assert (banks.cash[banks.kind == 0] < 0).all() and (shown["cash"].to_numpy()[banks.kind == 0] > 0).all()
    assert list(shown["kind"].unique()) == ["large state bank", "small local bank", "non-deposit lender"]
