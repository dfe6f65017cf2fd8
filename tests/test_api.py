"""The public Python API: config loading, the model, one-call runs, errors, Mesa's batch_run."""

from __future__ import annotations

import inspect

import mesa
import numpy as np
import pandas as pd
import pytest

import sme_abm
from sme_abm import SME, ConfigError, RunResult, SMEEconomy, SmeAbmError, load_config, run

from conftest import CONFIGS, run_cli

LEVER_KEY = "levers__p13_financing_guarantee__enabled"


def test_every_public_name_is_importable_and_documented():
    api_doc = (CONFIGS.parent / "docs" / "api.md").read_text()
    for name in sme_abm.__all__:
        assert hasattr(sme_abm, name), name
        if not name.startswith("__"):
            assert f"`{name}" in api_doc, f"docs/api.md does not mention {name}"


def test_config_loads_from_file_and_dict_alike():
    from_file = load_config(CONFIGS / "baseline.toml", {"simulation.n_smes": 500})
    from_dict = load_config(from_file.to_dict())
    assert from_dict == from_file
    assert from_file.simulation.n_smes == 500
    assert load_config({"simulation": {"seed": 3}}).simulation.seed == 3


def test_model_steps_and_runs_with_keyword_overrides():
    model = SMEEconomy(n_smes=400, rng=2, levers__p07_tax_relief__enabled=False, economy__wage=0.006)
    assert model.config.lever("p07_tax_relief").enabled is False
    assert model.config.economy.wage == 0.006
    model.step()
    assert len(model.timeseries()) == 1
    assert model.run(3) is model
    timeseries = model.timeseries()
    assert isinstance(timeseries, pd.DataFrame) and timeseries["step"].tolist() == [0, 1, 2, 3]
    firms = model.firms()
    assert isinstance(firms, pd.DataFrame) and len(firms) == model.smes.size
    assert {"sector", "cash", "debt", "employment"} <= set(firms.columns)


def test_run_accepts_an_overrides_dict_and_keywords_alike():
    as_dict = run(None, {"levers.p13_financing_guarantee.enabled": False, "simulation.n_smes": 400,
                         "simulation.steps": 6, "simulation.seed": 4})
    as_keywords = run(None, n_smes=400, steps=6, rng=4, **{LEVER_KEY: False})
    assert isinstance(as_dict, RunResult)
    assert as_dict.config == as_keywords.config
    pd.testing.assert_frame_equal(as_dict.timeseries, as_keywords.timeseries)
    assert as_dict.summary["steps"] == 6 and as_dict.summary["smes_start"] == 400
    assert isinstance(as_dict.firm_panel, pd.DataFrame) and isinstance(as_dict.exits, pd.DataFrame)
    assert as_dict.manifest["seed"] == 4
    # keywords win over the dict
    assert run(None, {"simulation.steps": 6}, n_smes=300, steps=2).summary["steps"] == 2


@pytest.mark.parametrize("call", [
    lambda path: load_config(path, {"simulation.n_smse": 10}),
    lambda path: SMEEconomy(path, simulation__n_smse=10),
    lambda path: run(path, {"simulation.n_smse": 10}),
])
def test_errors_are_config_errors_with_the_cli_message(call):
    path = CONFIGS / "baseline.toml"
    with pytest.raises(ConfigError) as caught:
        call(path)
    assert isinstance(caught.value, SmeAbmError) and isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert "\n" not in message
    assert message == f"{path}: simulation.n_smse: unknown key; did you mean 'n_smes'?"
    assert caught.value.key == "simulation.n_smse"
    cli = run_cli("levers", str(path), "--set", "simulation.n_smse=10")
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"error: {message}"


def test_mesa_batch_run_drives_the_model():
    seeds = [1, 2]
    parameters = {"n_smes": 300, LEVER_KEY: [True, False]}
    keywords = {"max_steps": 6, "number_processes": 1, "display_progress": False}
    if "rng" in inspect.signature(mesa.batch_run).parameters:  # Mesa >= 3.4
        rows = mesa.batch_run(SMEEconomy, parameters=parameters, rng=seeds, **keywords)
    else:  # Mesa 3.3: seeds go in as a model parameter
        rows = mesa.batch_run(SMEEconomy, parameters={**parameters, "rng": seeds}, **keywords)
    results = pd.DataFrame(rows)
    assert len(results) == 4
    assert set(results[LEVER_KEY]) == {True, False}
    for row in results.itertuples(index=False):
        # batch_run's Step: on Mesa 3.3 the 0-based month (the "step" column of timeseries()), after
        # max_steps + 1 steps; on Mesa 3.4+ the model time (months run, a float), after max_steps steps
        seed, enabled, step = row.rng, getattr(row, LEVER_KEY), int(row.Step) - (1 if hasattr(mesa.Model, "run_for") else 0)
        direct = SMEEconomy(n_smes=300, rng=seed, **{LEVER_KEY: enabled}).run(step + 1).timeseries()
        expected = direct.loc[direct["step"] == step].iloc[0]
        for column in ("output", "smes_active", "credit_granted", "npl_ratio"):
            assert getattr(row, column) == pytest.approx(expected[column], nan_ok=True), column


def test_agentset_select_agg_groupby_match_arrays():
    model = SMEEconomy(n_smes=800, rng=6).run(6)
    smes = model.agents_by_type[SME]
    arrays = model.smes
    indebted = smes.select(lambda firm: firm.debt > 0)
    assert len(indebted) == int((arrays.debt > 0).sum())
    assert np.isclose(indebted.agg("cash", np.mean), arrays.cash[arrays.debt > 0].mean())
    assert smes.agg("employment", max) == pytest.approx(arrays.employment.max())
    counts = smes.groupby("size_name").count()
    sizes = pd.Series([firm.size_name for firm in smes]).value_counts().to_dict()
    assert counts == sizes
    exporters = smes.select(lambda firm: bool(firm.exporter))
    assert sorted(exporters.get("firm_id")) == sorted(arrays.firm_id[arrays.exporter].tolist())
