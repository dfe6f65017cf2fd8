"""The command line: run writes complete results; bad input exits 2 with one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import CONFIGS, run_cli


def test_run_writes_all_files_and_config_reproduces(tmp_path):
    out = tmp_path / "first"
    done = run_cli("run", str(CONFIGS / "baseline.toml"), "--smes", "800", "--steps", "13", "--seed", "5",
                   "--out", str(out), "--set", "levers.p13_financing_guarantee.fee_cap=0.008")
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    assert {p.name for p in out.iterdir()} == {"timeseries.parquet", "summary.json", "config.toml", "manifest.json",
                                              "firm_panel.parquet", "exits.parquet"}
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 13
    for column in ("smes_micro", "smes_small", "smes_medium", "entries", "exits", "defaults", "employment", "output",
                   "credit_demanded", "credit_granted", "credit_rationed", "avg_loan_rate", "loan_rate_spread",
                   "npl_ratio", "guarantees_outstanding", "fiscal_cost_total", "tax_revenue"):
        assert column in ts
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and len(manifest["config_sha256"]) == 64 and "mesa" in manifest["versions"]
    again = tmp_path / "again"
    done = run_cli("run", str(out / "config.toml"), "--out", str(again), "--quiet")
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(ts, pd.read_parquet(again / "timeseries.parquet"), check_exact=True)
    # --applications adds the credit-application record, and the run itself is unchanged
    third = tmp_path / "third"
    done = run_cli("run", str(out / "config.toml"), "--out", str(third), "--quiet", "--applications")
    assert done.returncode == 0, done.stderr
    applications = pd.read_parquet(third / "applications.parquet")
    assert len(applications) > 100 and applications["step"].between(0, 12).all()
    assert applications.loc[applications["granted"], "amount"].sum() == pytest.approx(ts["credit_granted"].sum())
    pd.testing.assert_frame_equal(ts, pd.read_parquet(third / "timeseries.parquet"), check_exact=True)


BAD_CONFIGS = {
    "unknown_key": ("[simulation]\nn_smse = 10\n", "simulation.n_smse: unknown key; did you mean 'n_smes'?"),
    "wrong_type": ("[simulation]\nsteps = 'ten'\n", "simulation.steps: Input should be a valid integer"),
    "out_of_range": ("[levers.p21_payment_arrears]\npayment_days = 900\n", "levers.p21_payment_arrears.payment_days"),
    "malformed": ("[simulation\nsteps = 3\n", "malformed TOML"),
    "empty": ("", "file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, case):
    text, expected = BAD_CONFIGS[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    out = tmp_path / "results"
    done = run_cli("run", str(path), "--out", str(out / "run"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0]
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_missing_file_and_bad_override(tmp_path):
    done = run_cli("run", str(tmp_path / "missing.toml"))
    assert done.returncode == 2 and "missing.toml: file not found" in done.stderr
    done = run_cli("run", str(CONFIGS / "baseline.toml"), "--set", "levers.p13_financing_guarantee.fee_cap=2",
                   "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "levers.p13_financing_guarantee.fee_cap" in done.stderr
    assert not (tmp_path / "x").exists()


def test_levers_json_lists_all_25_with_state():
    done = run_cli("levers", str(CONFIGS / "no-policy.toml"), "--json")
    assert done.returncode == 0, done.stderr
    levers = json.loads(done.stdout)
    assert [lever["provision"] for lever in levers] == list(range(1, 26))
    assert all(not lever["enabled"] for lever in levers)
    assert {"provision", "section", "key", "title", "enabled"} <= set(levers[0])
    table = run_cli("levers", str(CONFIGS / "baseline.toml"))
    assert "p13_financing_guarantee" in table.stdout
