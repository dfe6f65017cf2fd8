"""Parameter sweeps: designs, backends, interruption and resume, reproduction, errors, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sme_abm.errors import ConfigError
from sme_abm.sweep import (analyze_sensitivity, frames_identical, load_experiment, replicate_seeds, reproduce,
                           sample_matrix, sweep)
from sme_abm.sweep.design import design_points, plan_runs
from sme_abm.sweep.store import SweepLockedError, SweepStore

from conftest import CONFIGS, ROOT, run_cli

SMOKE = CONFIGS / "experiments" / "smoke.toml"
BASELINE = CONFIGS / "baseline.toml"


def write_experiment(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


#: Runs slow enough (about half a second each) for a test to catch the sweep in flight.
SLOW_RUNS = {"n_smes": 20_000, "steps": 48}


def grid_experiment(tmp_path: Path, fee_caps: list[float], bank_shares: list[float], replicates: int = 2,
                    n_smes: int = 1000, steps: int = 24) -> Path:
    """A grid experiment in tmp_path (1,000 SMEs for 24 months unless told otherwise)."""
    return write_experiment(tmp_path / "grid.toml", f"""
name = "grid"
base = "{BASELINE}"
replicates = {replicates}
entropy = 99
[overrides]
"simulation.n_smes" = {n_smes}
"simulation.steps" = {steps}
[design]
kind = "grid"
[design.parameters."levers.p13_financing_guarantee.fee_cap"]
values = {fee_caps}
[design.parameters."levers.p13_financing_guarantee.bank_share"]
values = {bank_shares}
""")


def start_sweep(*args: str, log: Path) -> subprocess.Popen:
    """Start ``sme-abm sweep`` in the background; output goes to ``log`` (not a pipe a stray child could hold)."""
    environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    with open(log, "w") as stream:
        # SIGINT as from a terminal, even when the test runner itself was started in the background
        return subprocess.Popen([sys.executable, "-m", "sme_abm", "sweep", *args, "--quiet"], cwd=ROOT,
                                env=environment, stdout=stream, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_runs(folder: Path, count: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / "runs").exists() and len(list((folder / "runs").glob("*.json"))) >= count:
            return
        assert process.poll() is None, f"sweep ended early with status {process.returncode}"
        time.sleep(0.02)
    raise AssertionError(f"{count} runs not done within {timeout} s")


def assert_complete(folder: Path, expected_runs: int, steps: int = 24) -> pd.DataFrame:
    """Every planned run present exactly once, ok, with an intact time series and no temporaries."""
    table = pd.read_parquet(folder / "runs.parquet")
    assert len(table) == expected_runs
    assert table["run_id"].is_unique
    assert (table["status"] == "ok").all(), table[["run_id", "status", "error"]]
    records = sorted(p.stem for p in (folder / "runs").glob("*.json"))
    series = sorted(p.stem for p in (folder / "timeseries").glob("*.parquet"))
    assert records == series == sorted(table["run_id"])
    for run_id in series:
        frame = pd.read_parquet(folder / "timeseries" / f"{run_id}.parquet")
        assert (frame["run_id"] == run_id).all() and len(frame) == steps
    assert not list(folder.rglob(".*.tmp"))
    assert not (folder / ".lock").exists()
    return table


# -- designs and seeds ----------------------------------------------------------


def test_replicate_seeds_come_from_one_entropy() -> None:
    seeds = replicate_seeds(20260101, 5)
    assert seeds == replicate_seeds(20260101, 5)
    assert len(set(seeds)) == 5 and all(0 <= s < 2**63 for s in seeds)
    assert seeds[:3] == replicate_seeds(20260101, 3)  # spawning more does not change the first ones
    assert seeds != replicate_seeds(20260102, 5)


def test_shipped_experiments_load_with_expected_sizes() -> None:
    smoke = load_experiment(SMOKE)
    assert len(design_points(smoke)) == 4 and smoke.spec.replicates == 2
    study = load_experiment(CONFIGS / "experiments" / "guarantee-fee-x-risk-split.toml")
    assert len(design_points(study)) == 25
    morris = load_experiment(CONFIGS / "experiments" / "morris-levers.toml")
    assert len(morris.parameters) == 25
    assert len(design_points(morris)) == 10 * 26
    runs = plan_runs(design_points(smoke), replicate_seeds(1, 2))
    assert [r.run_id for r in runs] == [f"{i:06d}" for i in range(8)]


def test_sobol_design_and_analysis_recover_ishigami_indices() -> None:
    from SALib.test_functions import Ishigami

    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    inputs = sample_matrix("sobol", problem, 2048, seed=1)
    indices = analyze_sensitivity("sobol", problem, inputs, Ishigami.evaluate(inputs), seed=1)
    np.testing.assert_allclose(indices["S1"], [0.3139, 0.4424, 0.0], atol=0.04)
    np.testing.assert_allclose(indices["ST"], [0.5576, 0.4424, 0.2437], atol=0.04)


def test_morris_screening_ranks_a_linear_function() -> None:
    problem = {"num_vars": 3, "names": ["a", "b", "c"], "bounds": [[0, 1]] * 3}
    inputs = sample_matrix("morris", problem, 20, seed=3)
    indices = analyze_sensitivity("morris", problem, inputs, 5 * inputs[:, 0] + 1 * inputs[:, 1], seed=3)
    np.testing.assert_allclose(indices["mu_star"], [5, 1, 0], atol=1e-9)
    np.testing.assert_allclose(indices["sigma"], [0, 0, 0], atol=1e-9)


# -- invalid experiment files -----------------------------------------------------


@pytest.mark.parametrize("body, key", [
    ('name = "x"\nbogus = 1\n[design]\nkind = "grid"\n[design.parameters."simulation.seed"]\nvalues = [1]', "bogus"),
    ('name = "x"\n[design]\nkind = "grid"\n[design.parameters."levers.p13_financing_guarantee.no_such"]\nvalues = [1.0]',
     "design.parameters.levers.p13_financing_guarantee.no_such"),
    ('name = "x"\n[design]\nkind = "grid"\n[design.parameters."levers.p13_financing_guarantee.fee_cap"]\nvalues = [0.5]',
     "design.parameters.levers.p13_financing_guarantee.fee_cap"),
    ('name = "x"\n[design]\nkind = "lhs"\nsamples = 4\n[design.parameters."economy.wage"]\nrange = [0.001, 0.01]\n'
     '[design.parameters."simulation.seed"]\nvalues = [1]', "design.parameters.simulation.seed"),
    ('name = "x"\nbase = "missing.toml"\n[design]\nkind = "grid"\n[design.parameters."simulation.seed"]\nvalues = [1]', "base"),
    ('name = "x"\n[overrides]\n"simulation.n_smes" = -5\n[design]\nkind = "grid"\n'
     '[design.parameters."simulation.seed"]\nvalues = [1]', "overrides.simulation.n_smes"),
    ('name = "x"\n[design]\nkind = "sobol"\n[design.parameters."economy.wage"]\nrange = [0.001, 0.01]', "design"),
    # lever 13's three loss shares may each be valid and still exceed 1 together (issue 19, item 7)
    ('name = "x"\n[design]\nkind = "lhs"\nsamples = 4\n'
     '[design.parameters."levers.p13_financing_guarantee.bank_share"]\nrange = [0.0, 0.5]\n'
     '[design.parameters."levers.p13_financing_guarantee.reguarantee_share"]\nrange = [0.0, 0.6]',
     "design.parameters.levers.p13_financing_guarantee.bank_share"),
    ('name = "x"\n[design]\nkind = "grid"\n'
     '[design.parameters."levers.p13_financing_guarantee.bank_share"]\nvalues = [0.2, 0.7]', 
     "design.parameters.levers.p13_financing_guarantee.bank_share"),
])
def test_bad_experiment_names_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    path = write_experiment(tmp_path / "bad.toml", body)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert caught.value.source == str(path) and caught.value.key == key
    assert "\n" not in str(caught.value)


def test_bad_experiment_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    path = write_experiment(tmp_path / "bad.toml", 'name = "x"\n[design]\nkind = "grid"\n'
                            '[design.parameters."levers.p13_financing_guarantee.fee_cap"]\nvalues = [7.0]')
    out = tmp_path / "out"
    done = run_cli("sweep", str(path), "--out", str(out))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "fee_cap" in lines[0]
    assert not out.exists()


# -- running ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke") / "local"
    sweep(SMOKE, workers=1, out=out, progress=False)
    return out


def test_smoke_sweep_writes_complete_results(smoke_local: Path) -> None:
    table = assert_complete(smoke_local, 8)
    manifest = json.loads((smoke_local / "manifest.json").read_text())
    assert manifest["entropy"] == "20260101"
    assert manifest["replicate_seeds"] == replicate_seeds(20260101, 2)
    assert manifest["experiment_text"] == SMOKE.read_text()
    assert {"numpy", "mesa", "sme-abm"} <= set(manifest["versions"])
    assert sorted(table["seed"].unique()) == sorted(manifest["replicate_seeds"])
    assert set(table["levers.p13_financing_guarantee.fee_cap"]) == {0.005, 0.02}
    assert {"annual_exit_rate", "fiscal_cost_by_lever.p13_financing_guarantee"} <= set(table.columns)
    assert (smoke_local / "report.md").read_text().startswith("# Sweep `smoke`")
    assert len(list((smoke_local / "figures").glob("*.png"))) == 3
    # replicates differ, design points with the same seed differ only through the parameters
    first, second = (pd.read_parquet(smoke_local / "timeseries" / f"00000{i}.parquet") for i in (0, 1))
    assert not frames_identical(first, second)[0]


def test_dask_backend_with_two_workers_matches_local_bit_for_bit(smoke_local: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "dask"
    table = sweep(SMOKE, workers=2, backend="dask", out=out, progress=False)
    assert_complete(out, 8)
    local = pd.read_parquet(smoke_local / "runs.parquet")
    metrics = [c for c in table.columns if c not in ("duration", "run_seconds")]
    pd.testing.assert_frame_equal(table[metrics], local[metrics], check_exact=True)
    for path in sorted((smoke_local / "timeseries").glob("*.parquet")):
        same, detail = frames_identical(pd.read_parquet(path), pd.read_parquet(out / "timeseries" / path.name))
        assert same, (path.name, detail)
    assert json.loads((out / "manifest.json").read_text())["sessions"][0]["backend"] == "dask"


def test_reproduce_confirms_runs_and_detects_tampering(smoke_local: Path, tmp_path: Path) -> None:
    verdicts = reproduce(smoke_local, runs=3)
    assert len(verdicts) == 3 and all(matches for _, matches, _ in verdicts)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_local, copy)
    path = copy / "timeseries" / "000002.parquet"
    frame = pd.read_parquet(path)
    frame.loc[5, "output"] = np.nextafter(frame.loc[5, "output"], np.inf)  # one bit
    frame.to_parquet(path, index=False)
    done = run_cli("reproduce", str(copy))
    assert done.returncode == 1
    assert "000002: MISMATCH" in done.stdout and "000001: OK" in done.stdout
    assert "7/8 runs reproduced" in done.stdout


def test_failing_run_is_recorded_and_sweep_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli_env(["sweep", str(SMOKE), "--out", str(out), "--workers", "2", "--quiet"],
                       {"SME_ABM_SWEEP_FAIL_RUNS": "000003"})
    assert done.returncode == 1, done.stderr
    table = pd.read_parquet(out / "runs.parquet")
    failed = table[table["status"] == "failed"]
    assert list(failed["run_id"]) == ["000003"]
    assert "RuntimeError: injected failure for run 000003" in failed["error"].iloc[0]
    assert (table.drop(failed.index)["status"] == "ok").all()
    assert "Runs that did not finish" in (out / "report.md").read_text()
    # resuming reruns only the failed run
    done = run_cli("sweep", str(SMOKE), "--out", str(out), "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
    assert_complete(out, 8)
    sessions = json.loads((out / "manifest.json").read_text())["sessions"]
    assert sessions[-1]["to_run"] == 1 and sessions[-1]["already_done"] == 7


def run_cli_env(args: list[str], env: dict) -> subprocess.CompletedProcess:
    environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **env}
    return subprocess.run([sys.executable, "-m", "sme_abm", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=environment)


def test_interrupted_and_killed_sweep_resumes_without_duplicates(tmp_path: Path) -> None:
    # 18 runs of about half a second each, so that the sweep is still running when interrupted
    experiment = grid_experiment(tmp_path, [0.0, 0.01, 0.02], [0.1, 0.2, 0.3], **SLOW_RUNS)
    out = tmp_path / "out"
    first = start_sweep(str(experiment), "--out", str(out), "--workers", "1", log=tmp_path / "first.log")
    wait_for_runs(out, 3, first)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) == 130, (tmp_path / "first.log").read_text()
    assert not (out / ".lock").exists()
    after_interrupt = len(list((out / "runs").glob("*.json")))
    assert 3 <= after_interrupt < 18

    second = start_sweep(str(experiment), "--out", str(out), "--workers", "1", "--resume", log=tmp_path / "second.log")
    wait_for_runs(out, after_interrupt + 3, second)
    second.kill()  # SIGKILL: no cleanup, the lock stays behind
    second.wait(timeout=60)
    assert (out / ".lock").exists()
    after_kill = len(list((out / "runs").glob("*.json")))
    assert after_kill < 18

    third = run_cli("sweep", str(experiment), "--out", str(out), "--workers", "2", "--resume", "--quiet")
    assert third.returncode == 0, third.stderr
    assert_complete(out, 18, steps=SLOW_RUNS["steps"])
    sessions = json.loads((out / "manifest.json").read_text())["sessions"]
    assert sessions[0]["interrupted"] and sessions[-1]["already_done"] == after_kill
    assert sessions[-1]["to_run"] == 18 - after_kill


def test_second_sweep_into_a_locked_folder_is_refused(tmp_path: Path) -> None:
    experiment = grid_experiment(tmp_path, [0.0, 0.01, 0.02], [0.1, 0.2], replicates=4, **SLOW_RUNS)  # ~12 s
    out = tmp_path / "out"
    first = start_sweep(str(experiment), "--out", str(out), "--workers", "1", log=tmp_path / "first.log")
    try:
        wait_for_runs(out, 1, first)
        with pytest.raises(SweepLockedError):
            SweepStore(out).acquire_lock()
        second = run_cli("sweep", str(experiment), "--out", str(out), "--resume", "--quiet")
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert first.poll() is None, "the first sweep ended before the checks; they proved nothing"
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    store = SweepStore(tmp_path / "out")
    store.root.mkdir()
    store.lock_path.write_text(json.dumps({"pid": int(dead.stdout), "hostname": socket.gethostname()}))
    store.acquire_lock()
    assert json.loads(store.lock_path.read_text())["pid"] == os.getpid()
    store.release_lock()
    assert not store.lock_path.exists()
