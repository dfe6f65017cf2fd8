"""Policy studies (issue 16): warm starts in experiment files, study designs, Shapley values,
interactions, power and cost-effectiveness, and the study report."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sme_abm.errors import ConfigError
from sme_abm.levers import load_registry
from sme_abm.model import SMEEconomy
from sme_abm.sweep import load_experiment, reproduce, sweep
from sme_abm.sweep.design import design_points, design_size
from sme_abm.sweep.studies import (cost_effectiveness, interaction_effects, mde, paired_summary, shapley_values,
                                   state_digest, study_plan, window_metrics)

from conftest import CONFIGS, run_cli

BASELINE = CONFIGS / "baseline.toml"
EXPERIMENTS = CONFIGS / "experiments"
KEYS = load_registry().keys


def tiny(design: dict, start: dict | None = None, replicates: int = 2, steps: int = 3) -> dict:
    """An experiment of 300 SMEs (seconds)."""
    experiment = {"name": "tiny", "base": str(BASELINE), "replicates": replicates, "entropy": 5,
                  "outputs": ["output"], "metrics": ["study.output_mean"],
                  "overrides": {"simulation.n_smes": 300, "simulation.steps": steps}, "design": design}
    if start is not None:
        experiment["start"] = start
    return experiment


# -- designs -------------------------------------------------------------------------------
def test_knockin_design_has_26_points_with_the_right_levers() -> None:
    experiment = load_experiment(EXPERIMENTS / "study-knockin.toml")
    points = design_points(experiment)
    assert len(points) == 26 and design_size(experiment) == 26 * experiment.spec.replicates
    assert all(len(p) == 25 for p in points)
    assert not any(points[0].values()), "point 0 is no policy"
    for k, key in enumerate(KEYS, start=1):
        on = [name for name, value in points[k].items() if value]
        assert on == [f"levers.{key}.enabled"], f"point {k} switches on only lever {key}"


def test_study_smoke_experiment_loads() -> None:
    smoke = load_experiment(EXPERIMENTS / "study-smoke.toml")
    assert len(design_points(smoke)) == 4 and smoke.spec.start.burn_in_months == 12


def test_knockout_design_is_the_full_package_and_each_lever_off() -> None:
    points = design_points(load_experiment(EXPERIMENTS / "study-knockout.toml"))
    assert len(points) == 26 and all(points[0].values())
    for k, key in enumerate(KEYS, start=1):
        assert [name for name, value in points[k].items() if not value] == [f"levers.{key}.enabled"]


def test_interactions_design_covers_the_required_pairs() -> None:
    experiment = load_experiment(EXPERIMENTS / "study-interactions.toml")
    plan = study_plan(experiment.spec.design.model_dump(mode="json"), experiment.base_config)
    pairs = {(a, b) for a, b, *_ in plan["pairs"]}
    for a, b in ((11, 13), (7, 13), (9, 11)):
        assert (KEYS[a - 1], KEYS[b - 1]) in pairs
    for a, b, both, only_a, only_b, neither in plan["pairs"]:
        off = lambda point: {k for k, v in plan["points"][point].items() if not v}  # noqa: E731
        assert off(both) == set() and off(neither) == {f"levers.{a}.enabled", f"levers.{b}.enabled"}
        assert off(only_a) == {f"levers.{b}.enabled"} and off(only_b) == {f"levers.{a}.enabled"}


def test_shapley_design_walks_each_ordering_from_none_to_full() -> None:
    experiment = load_experiment(EXPERIMENTS / "study-shapley.toml")
    plan = study_plan(experiment.spec.design.model_dump(mode="json"), experiment.base_config)
    assert len(plan["orderings"]) == experiment.spec.design.permutations == 16
    assert plan["orderings"][1] == plan["orderings"][0][::-1]
    for chain, order in zip(plan["chains"], plan["orderings"]):
        assert len(chain) == 26
        for step, lever in enumerate(order, start=1):  # each step switches exactly the next lever on
            before, after = plan["points"][chain[step - 1]], plan["points"][chain[step]]
            assert [k for k in after if after[k] != before[k]] == [f"levers.{lever}.enabled"]
    assert design_size(experiment) == len(plan["points"]) * 10


@pytest.mark.parametrize("design, key", [
    ({"kind": "shapley"}, "design"),
    ({"kind": "knockout", "levers": [26]}, "design.levers"),
    ({"kind": "interactions", "pairs": [[7, 7]]}, "design.pairs"),
    ({"kind": "grid", "pairs": [[7, 13]], "parameters": {"levers.p07_tax_relief.enabled": {"values": [True]}}}, "design"),
])
def test_bad_study_designs_are_refused_with_the_key(design: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_experiment(tiny(design))
    assert f": {key}" in str(error.value)


# -- Shapley, interactions, power, cost-effectiveness on planted data --------------------
def _plan(kind: str, **design) -> dict:
    from sme_abm.config import load_config

    return study_plan({"kind": kind, "seed": 3, **design}, load_config(None).to_dict())


def _coalition_values(plan: dict, outcome, replicates: int) -> np.ndarray:
    """points x replicates: outcome(set of levers on, replicate) at every design point."""
    return np.array([[outcome({k.split(".")[1] for k, v in point.items() if v}, r) for r in range(replicates)]
                     for point in plan["points"]])


def test_shapley_values_of_an_additive_outcome_recover_the_planted_contributions() -> None:
    rng = np.random.default_rng(0)
    planted = dict(zip(KEYS, rng.normal(0, 10, len(KEYS))))
    noise = rng.normal(0, 100, 4)  # a replicate effect, common to every coalition (common random numbers)
    plan = _plan("shapley", permutations=6, antithetic=True)
    values = _coalition_values(plan, lambda on, r: sum(planted[k] for k in on) + noise[r], 4)
    table = shapley_values(values, plan["chains"], plan["orderings"], plan["levers"]).set_index("lever")
    for key, contribution in planted.items():
        assert table.loc[key, "phi"] == pytest.approx(contribution, abs=1e-9)
        assert table.loc[key, "se"] == pytest.approx(0, abs=1e-9)
    assert table.loc[KEYS, "phi"].sum() == pytest.approx(table.loc["total", "phi"], abs=1e-9)
    assert table.loc["total", "phi"] == pytest.approx(sum(planted.values()), abs=1e-9)


def test_shapley_values_split_a_planted_interaction_and_sum_to_the_total() -> None:
    a, b = KEYS[6], KEYS[12]  # levers 7 and 13: each gets half of their joint bonus
    outcome = lambda on, r: 3.0 * len(on) + (40.0 if a in on and b in on else 0.0) + r  # noqa: E731
    for antithetic in (False, True):
        plan = _plan("shapley", permutations=200, antithetic=antithetic)
        table = shapley_values(_coalition_values(plan, outcome, 3), plan["chains"], plan["orderings"],
                               plan["levers"]).set_index("lever")
        assert table.loc[KEYS, "phi"].sum() == pytest.approx(table.loc["total", "phi"], abs=1e-9)
        assert table.loc["total", "phi"] == pytest.approx(3.0 * 25 + 40.0)
        assert table.loc[KEYS[0], "phi"] == pytest.approx(3.0)
        for key in (a, b):
            if antithetic:  # an ordering and its reverse put a before b once each: exact
                assert table.loc[key, "phi"] == pytest.approx(23.0) and table.loc[key, "se_permutation"] < 1e-9
            else:  # sampled: within the reported sampling error
                assert table.loc[key, "se_permutation"] > 0
                assert abs(table.loc[key, "phi"] - 23.0) < 3 * table.loc[key, "se_permutation"]


def test_interactions_recover_a_planted_interaction() -> None:
    plan = _plan("interactions", pairs=[[7, 13], [9, 11]], reference="full")
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, (len(plan["points"]), 8))
    base = lambda on, r: 2.0 * len(on) - (15.0 if KEYS[6] in on and KEYS[12] in on else 0.0)  # noqa: E731
    values = _coalition_values(plan, base, 8) + noise
    table = interaction_effects(values, plan["pairs"]).set_index("pair")
    substitutes = table.loc[f"{KEYS[6]} x {KEYS[12]}"]
    assert substitutes["low"] < -15.0 < substitutes["high"] and substitutes["distinguishable"]
    assert table.loc[f"{KEYS[8]} x {KEYS[10]}", "low"] < 0 < table.loc[f"{KEYS[8]} x {KEYS[10]}", "high"]


def test_minimal_detectable_effect_on_synthetic_data() -> None:
    from scipy import stats

    n, sd = 10, 2.0
    expected = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / math.sqrt(n)
    assert mde(sd, n) == pytest.approx(expected)
    assert mde(sd, 4 * n) < mde(sd, n) / 1.9  # about 1/sqrt(4) with more seeds
    # a true effect of one MDE is detected about 80% of the time, no effect about 5%
    rng = np.random.default_rng(2)
    hits = [paired_summary(rng.normal(expected, sd, n))["distinguishable"] for _ in range(3000)]
    false = [paired_summary(rng.normal(0.0, sd, n))["distinguishable"] for _ in range(3000)]
    assert 0.76 < np.mean(hits) < 0.84
    assert 0.035 < np.mean(false) < 0.065
    summary = paired_summary(np.array([1.0, -1.0, 2.0, -2.0]))
    assert not summary["distinguishable"] and summary["low"] < 0 < summary["high"]


def _paired_runs(extra_workers: float, extra_output: float, extra_deficit: float, extra_interest: float,
                 months: int = 24) -> tuple[pd.DataFrame, pd.DataFrame]:
    steps = np.arange(100, 100 + months)
    off = pd.DataFrame({"step": steps, "employment": 1000.0, "output": 50.0, "smes_active": 300,
                        "credit_rationed": 1.0, "credit_demanded": 4.0, "fiscal_cost_total": 0.0,
                        "primary_deficit": 20.0, "bond_interest": 3.0, "government_debt": 900.0})
    on = off.assign(employment=off.employment + extra_workers, output=off.output + extra_output,
                    primary_deficit=off.primary_deficit + extra_deficit, bond_interest=off.bond_interest + extra_interest)
    return on, off


def test_cost_effectiveness_signs_and_units_on_synthetic_paired_runs() -> None:
    # the policy employs 100 more workers and sells 5 CNY m more a month for 24 months, and
    # raises the primary deficit by 9 and interest by 1 CNY m a month: 200 job-years, 120 CNY m
    # of output, 240 CNY m of net fiscal cost
    diffs: dict[str, list[float]] = {"job_years": [], "output": [], "cost": []}
    for wobble in (-0.1, 0.0, 0.1):
        on, off = _paired_runs(100.0 * (1 + wobble), 5.0, 9.0 * (1 + wobble), 1.0)
        m_on, m_off = window_metrics(on), window_metrics(off)
        assert m_on["months"] == 24 and m_on["first_month"] == 100
        diffs["job_years"].append(m_on["job_years"] - m_off["job_years"])
        diffs["output"].append(m_on["output_total"] - m_off["output_total"])
        diffs["cost"].append(m_on["net_fiscal_cost"] - m_off["net_fiscal_cost"])
    assert diffs["job_years"][1] == pytest.approx(200.0) and diffs["output"][1] == pytest.approx(120.0)
    assert diffs["cost"][1] == pytest.approx(240.0)
    ce = cost_effectiveness(*(np.array(diffs[k]) for k in ("job_years", "output", "cost")))
    assert ce["net_cost"] == pytest.approx(240.0) and ce["cost_distinguishable"]
    assert ce["job_years_per_cny_m"] == pytest.approx(200.0 / 240.0)
    assert ce["output_per_cny_m"] == pytest.approx(120.0 / 240.0)
    assert ce["job_years_per_cny_m_ci"] > 0
    # a lever that saves money (lower deficit) and costs jobs: both differences negative, ratio positive
    on, off = _paired_runs(-50.0, -2.0, -10.0, 0.0)
    saving = window_metrics(on)["net_fiscal_cost"] - window_metrics(off)["net_fiscal_cost"]
    assert saving == pytest.approx(-240.0)
    # a cost indistinguishable from 0 leaves the ratio undefined
    ce = cost_effectiveness(np.array([10.0, 12.0, 11.0]), np.array([1.0, 2.0, 1.5]), np.array([5.0, -6.0, 0.5]))
    assert not ce["cost_distinguishable"]


# -- warm starts in sweeps -------------------------------------------------------------------
def test_burn_in_stage_puts_the_state_hash_in_the_manifest_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ko"
    experiment = tiny({"kind": "knockout", "levers": [7]}, {"burn_in_months": 4, "policy": "full"})
    table = sweep(experiment, workers=1, out=out, progress=False)
    assert (table["status"] == "ok").all() and len(table) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["start"]["kind"] == "burn_in" and manifest["start"]["months"] == 4
    digests = manifest["start_states"]
    assert set(digests) == {"r000", "r001"} and digests["r000"] != digests["r001"]
    for name, digest in digests.items():
        assert state_digest(out / "states" / name) == digest
    for run in manifest["runs"]:  # both design points of a replicate start from its state
        record = json.loads((out / "runs" / f"{run['run_id']}.json").read_text())
        assert record["state_sha256"] == digests[f"r{run['replicate']:03d}"]
        series = pd.read_parquet(out / "timeseries" / f"{run['run_id']}.parquet")
        # only the evaluated months are kept, numbered from 0: the burn-in stage starts the
        # evaluated record (SMEEconomy.start_evaluation), so lever 24's phase-in starts there
        assert series["step"].tolist() == [0, 1, 2]
        assert record["summary"]["study"]["first_month"] == 0 and record["summary"]["steps"] == 3
    assert (out / "study" / "report.md").exists() and (out / "study" / "effects.csv").exists()
    # the start is part of the manifest's checksum: editing it is refused
    edited = json.loads((out / "manifest.json").read_text())
    edited["start"]["months"] = 5
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "manifest.json").write_text(json.dumps(edited))
    with pytest.raises(ConfigError, match="checksum"):
        sweep(experiment, workers=1, out=tmp_path / "edited", resume=True, progress=False)
    # a lost state is burnt in again (the same bytes) and only the runs that are missing rerun
    shutil.rmtree(out / "states" / "r001")
    (out / "runs" / "000003.json").unlink()
    kept = (out / "runs" / "000000.json").read_bytes()
    table = sweep(experiment, workers=1, out=out, resume=True, progress=False)
    assert (table["status"] == "ok").all()
    assert state_digest(out / "states" / "r001") == digests["r001"]
    assert (out / "runs" / "000000.json").read_bytes() == kept
    verdicts = reproduce(out, runs=2)
    assert all(matches for _, matches, _ in verdicts), verdicts


def test_from_state_experiment_records_the_state_and_refuses_a_changed_one(tmp_path: Path) -> None:
    state = tmp_path / "state"
    SMEEconomy(BASELINE, n_smes=300, rng=11).run(4).save_state(state)
    experiment = tiny({"kind": "grid", "parameters": {"levers.p07_tax_relief.enabled": {"values": [True, False]}}},
                      {"from_state": str(state)})
    out = tmp_path / "sweep"
    table = sweep(experiment, workers=1, out=out, progress=False)
    assert (table["status"] == "ok").all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["start"]["sha256"] == state_digest(state) and manifest["start"]["state_month"] == 3
    first = pd.read_parquet(out / "timeseries" / "000000.parquet")
    second = pd.read_parquet(out / "timeseries" / "000001.parquet")  # same point, replicate 1: reseeded
    assert first["step"].iloc[0] == 4
    assert not first["output"].equals(second["output"]), "replicates from one state get their own random streams"
    assert all(matches for _, matches, _ in reproduce(out, runs=1))
    (state / "extra.txt").write_text("changed")
    with pytest.raises(ConfigError, match="has changed since the sweep started"):
        sweep(experiment, workers=1, out=out, resume=True, progress=False)


def test_a_state_of_another_economy_is_refused_at_load(tmp_path: Path) -> None:
    state = tmp_path / "state"
    SMEEconomy(BASELINE, n_smes=300, rng=11, banks__n_large=3).run(1).save_state(state)
    with pytest.raises(ConfigError, match="start.from_state"):
        load_experiment(tiny({"kind": "knockout", "levers": [7]}, {"from_state": str(state)}))


def test_a_warm_start_may_vary_only_the_policy() -> None:
    design = {"kind": "grid", "parameters": {"banks.n_large": {"values": [3, 5]}}}
    with pytest.raises(ConfigError, match="design.parameters.banks.n_large"):
        load_experiment(tiny(design, {"burn_in_months": 2}))
    with pytest.raises(ConfigError, match="start.overrides"):
        load_experiment(tiny({"kind": "knockout", "levers": [7]}, {"burn_in_months": 2, "overrides": {"banks.n_large": 3}}))


def test_study_report_command(tmp_path: Path) -> None:
    out = tmp_path / "ki"
    sweep(tiny({"kind": "knockin", "levers": [7, 13]}, {"burn_in_months": 2, "policy": "none"}),
          workers=1, out=out, progress=False)
    (out / "study" / "report.md").unlink()
    result = run_cli("study", "report", str(out))
    assert result.returncode == 0, result.stderr
    report = (out / "study" / "report.md").read_text()
    for heading in ("## Effects", "## Power", "## Cost-effectiveness"):
        assert heading in report
    assert "7 tax relief" in report and (out / "study" / "effects_output.png").stat().st_size > 5_000
    effects = pd.read_csv(out / "study" / "effects.csv")
    assert set(effects["outcome"]) == {"own_channel", "output", "employment", "smes", "credit_rationed", "net_fiscal_cost"}
    assert {"counterfactual", "mean_pct", "ci_pct", "mde", "distinguishable"} <= set(effects.columns)
    row = effects[(effects.lever == "p07_tax_relief") & (effects.outcome == "output")].iloc[0]
    assert row["mean_pct"] == pytest.approx(100 * row["mean"] / abs(row["counterfactual"]))
    missing = run_cli("study", "report", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("design, table, heading", [
    ({"kind": "shapley", "levers": [7, 11, 13], "permutations": 4, "seed": 1}, "shapley.csv", "## Shapley"),
    ({"kind": "interactions", "pairs": [[11, 13], [7, 13]], "reference": "none"}, "interactions.csv", "## Pairwise"),
])
def test_shapley_and_interaction_reports(tmp_path: Path, design: dict, table: str, heading: str) -> None:
    out = tmp_path / design["kind"]
    runs = sweep(tiny(design, steps=2), workers=1, out=out, progress=False)
    assert (runs["status"] == "ok").all()
    assert heading in (out / "study" / "report.md").read_text()
    found = pd.read_csv(out / "study" / table)
    assert set(found["outcome"]) == {"output", "employment", "smes", "credit_rationed", "net_fiscal_cost"}
    if design["kind"] == "shapley":  # efficiency holds on the model's own outputs too
        for _, part in found.groupby("outcome"):
            players = part[part.lever != "total"]
            assert players["phi"].sum() == pytest.approx(part.loc[part.lever == "total", "phi"].item(), rel=1e-9, abs=1e-9)
    else:
        assert len(found) == 2 * 5 and np.isfinite(found["mean"]).all()
