"""Saved states: continue bit for bit, refuse what does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sme_abm import SMEEconomy
from sme_abm.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _outputs(model):
    return model.timeseries(), model.exits(), model.firm_panel(), model.firms()


@pytest.mark.parametrize("config, agents", [("baseline.toml", True), ("shock.toml", False)])
def test_sixty_months_straight_equal_thirty_saved_loaded_and_thirty_more(tmp_path, config, agents):
    options = dict(n_smes=1_500, rng=4, simulation__mesa_agents=agents, simulation__panel_every=7)
    straight = SMEEconomy(CONFIGS / config, **options).run(60)
    first = SMEEconomy(CONFIGS / config, **options).run(30)
    first.save_state(tmp_path / "state")
    resumed = SMEEconomy(CONFIGS / config, state=tmp_path / "state", **options)
    assert resumed.month == 29 and len(resumed.timeseries()) == 30
    resumed.run(30)
    for a, b in zip(_outputs(straight), _outputs(resumed)):
        assert a.equals(b)
    assert resumed.government.debt == straight.government.debt
    if agents:
        assert [a.firm_id for a in resumed.smes.agent] == resumed.smes.firm_id.tolist()
        assert resumed.sme_agent(int(resumed.smes.firm_id[5])).cash == resumed.smes.cash[5]


def test_state_is_open_format_and_carries_its_provenance(tmp_path):
    model = SMEEconomy(n_smes=300, rng=1).run(3)
    folder = model.save_state(tmp_path / "s")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["banks.parquet", "exits.parquet", "firm_index.parquet", "firm_panel.parquet",
                     "guarantors.parquet", "smes.parquet", "state.json", "timeseries.parquet"]
    header = json.loads((folder / "state.json").read_text())  # strict JSON: no NaN
    assert header["config_hash"] == model.config.digest() and header["package_version"]
    assert header["month"] == 2


def test_loading_into_another_economy_or_version_is_refused(tmp_path):
    SMEEconomy(n_smes=300, rng=1).run(2).save_state(tmp_path / "s")
    # another policy is fine: that is what a warm start is for
    SMEEconomy(state=tmp_path / "s", levers__p07_tax_relief__enabled=False).run(1)
    with pytest.raises(ConfigError, match="another economy"):
        SMEEconomy(state=tmp_path / "s", economy__wage=0.02)
    header = json.loads((tmp_path / "s" / "state.json").read_text())
    header["package_version"] = "0.0.1"
    (tmp_path / "s" / "state.json").write_text(json.dumps(header))
    with pytest.raises(ConfigError, match="0.0.1"):
        SMEEconomy(state=tmp_path / "s")
    with pytest.raises(ConfigError, match="not a saved state"):
        SMEEconomy(state=tmp_path)


def test_unknown_state_is_never_left_out_silently(tmp_path):
    model = SMEEconomy(n_smes=100, rng=1)
    model.something_new = object()
    with pytest.raises(TypeError, match="model.something_new"):
        model.save_state(tmp_path / "s")
    assert not (tmp_path / "s").exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_cli_burn_in_then_run_from_state_equals_one_straight_run(tmp_path):
    """`sme-abm burn-in` for 18 months and `sme-abm run --from-state` for 12 more give
    the time series, exits and panel of one 30-month run; a state from another economy
    or a folder that is no state is refused with one line and exit 2, nothing written."""
    import pandas as pd
    from conftest import run_cli

    common = ["--smes", "900", "--seed", "3"]
    baseline = str(CONFIGS / "baseline.toml")
    done = run_cli("burn-in", baseline, "--months", "18", "--out", str(tmp_path / "state"), *common, "--quiet")
    assert done.returncode == 0, done.stderr
    done = run_cli("run", baseline, "--from-state", str(tmp_path / "state"), "--steps", "12",
                   "--out", str(tmp_path / "warm"), "--quiet")
    assert done.returncode == 0, done.stderr
    done = run_cli("run", baseline, "--steps", "30", *common, "--out", str(tmp_path / "straight"), "--quiet")
    assert done.returncode == 0, done.stderr
    for name in ("timeseries.parquet", "exits.parquet", "firm_panel.parquet"):
        assert pd.read_parquet(tmp_path / "warm" / name).equals(pd.read_parquet(tmp_path / "straight" / name)), name
    for state, extra in ((tmp_path / "state", ["--set", "economy.wage=0.02"]), (tmp_path, [])):
        done = run_cli("run", baseline, "--from-state", str(state), "--steps", "3", "--out", str(tmp_path / "no"), *extra)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert str(state) in done.stderr
        assert not (tmp_path / "no").exists()


def test_per_firm_values_live_in_the_parquet_table_not_in_the_json_header(tmp_path, monkeypatch):
    """state.json holds only what does not grow with the population (a per-firm list there
    cost 250 B per SME of memory when loaded), and a state's Mesa agents, made in slices on
    loading, are the firms of the table, row for row, and the same agents a straight run has."""
    from sme_abm import state

    sizes = {}
    for n in (300, 3_000):
        model = SMEEconomy(n_smes=n, rng=2, simulation__burn_in_months=0).run(2)
        sizes[n] = (model.save_state(tmp_path / f"s{n}") / "state.json").stat().st_size
    assert sizes[3_000] < 1.1 * sizes[300], sizes

    monkeypatch.setattr(state, "AGENT_BATCH", 7)
    loaded = SMEEconomy(n_smes=300, rng=2, simulation__burn_in_months=0, state=tmp_path / "s300")
    assert [agent.firm_id for agent in loaded.smes.agent] == loaded.smes.firm_id.tolist()
    straight = SMEEconomy(n_smes=300, rng=2, simulation__burn_in_months=0).run(3)
    loaded.run(1)
    assert loaded.timeseries().equals(straight.timeseries())
    assert len(loaded.agents) == len(straight.agents)


def test_a_state_saved_before_a_new_option_existed_still_loads_and_a_changed_value_does_not(tmp_path):
    """A state carries its whole config. A key added since (a new option, off by default with
    outputs unchanged) takes its default when this version reads that config, so the state
    still describes the same economy; a key the state states with another value does not."""
    SMEEconomy(n_smes=300, rng=1).run(2).save_state(tmp_path / "s")
    path = tmp_path / "s" / "state.json"
    header = json.loads(path.read_text())
    # as a version without economy.rd_success_elasticity saved it: not in its config or its hash
    del header["config"]["economy"]["rd_success_elasticity"]
    header["structural_hash"] = "of-a-config-without-the-key"
    path.write_text(json.dumps(header))
    SMEEconomy(state=tmp_path / "s", levers__p07_tax_relief__enabled=False).run(1)  # a warm start: it loads
    header["config"]["economy"]["wage"] = 0.02  # a value the run's config (the default, 0.005) does not have
    path.write_text(json.dumps(header))
    with pytest.raises(ConfigError, match="another economy"):
        SMEEconomy(state=tmp_path / "s", economy__wage=0.005)


def test_a_state_saved_before_an_option_entered_the_baseline_is_read_at_its_value_then(tmp_path):
    """Options that entered the baseline on 2026-12-06 were added earlier with the value that
    left outputs unchanged. A state saved by a version without one of them was saved under that
    value, so it is read at it (``config.VALUES_BEFORE_THE_KEY``), not at today's default, and
    continues bit for bit as the run it came from."""
    from sme_abm.config import VALUES_BEFORE_THE_KEY

    old = {key.replace(".", "__"): value for key, value in VALUES_BEFORE_THE_KEY.items()}
    common = dict(n_smes=300, rng=4, simulation__burn_in_months=0, simulation__mesa_agents=False, **old)
    SMEEconomy(**common).run(2).save_state(tmp_path / "s")
    path = tmp_path / "s" / "state.json"
    header = json.loads(path.read_text())
    for dotted in VALUES_BEFORE_THE_KEY:  # as a version without these keys saved it
        section, key = dotted.split(".")
        del header["config"][section][key]
    path.write_text(json.dumps(header))
    loaded = SMEEconomy(state=tmp_path / "s")
    for dotted, value in VALUES_BEFORE_THE_KEY.items():
        section, key = dotted.split(".")
        assert getattr(getattr(loaded.config, section), key) == value
        assert getattr(getattr(SMEEconomy(n_smes=10).config, section), key) != value  # not today's default
    straight = SMEEconomy(**common).run(3)
    loaded.run(1)
    assert loaded.timeseries().equals(straight.timeseries())


def test_reproduce_compares_the_series_a_sweep_recorded_and_names_those_added_since():
    import pandas as pd

    from sme_abm.sweep.core import recorded_series_identical

    recorded = pd.DataFrame({"output": [1.0, 2.0], "employment": [3.0, 4.0]})
    fresh = pd.DataFrame({"output": [1.0, 2.0], "new_series": [0.0, 0.0], "employment": [3.0, 4.0]})
    assert recorded_series_identical(recorded, fresh) == (True, "identical", ["new_series"])
    fresh.loc[1, "employment"] = 4.0000001
    assert recorded_series_identical(recorded, fresh)[0] is False
    assert recorded_series_identical(fresh, recorded)[0] is False  # a recorded series missing is a difference


def test_reproduce_reads_a_sweep_config_as_it_was_recorded():
    """`sme-abm reproduce` compares a run's config digest with the one its sweep recorded; keys
    added since are left out of it (they are at their defaults), every other key and value is in."""
    import hashlib

    from sme_abm.config import load_config
    from sme_abm.sweep.core import _digest_as_recorded

    recorded = load_config(CONFIGS / "baseline.toml").to_dict()
    del recorded["economy"]["rd_success_elasticity"]  # the sweep ran before the key existed
    planned = {"values": {"levers.p07_tax_relief.enabled": False}, "seed": 5}
    then = load_config(CONFIGS / "baseline.toml", {"levers.p07_tax_relief.enabled": False, "simulation.seed": 5}).to_dict()
    del then["economy"]["rd_success_elasticity"]
    assert _digest_as_recorded(recorded, planned) == hashlib.sha256(json.dumps(then, sort_keys=True).encode()).hexdigest()
    before = _digest_as_recorded(recorded, planned)
    recorded["economy"]["wage"] = 0.02  # every recorded value counts
    assert _digest_as_recorded(recorded, planned) != before
