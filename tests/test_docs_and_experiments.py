"""Shipped configs and docs match the code; the knockout experiment runs."""

from __future__ import annotations

import importlib.util

import pandas as pd

from sme_abm.configdoc import render_levers_doc, standard_configs

from conftest import CONFIGS, ROOT


def test_shipped_configs_are_generated_from_the_code():
    for name, text in standard_configs().items():
        assert (CONFIGS / name).read_text() == text, f"configs/{name} is stale: run `make configs`"


def test_levers_doc_lists_every_lever_and_parameter():
    doc = (ROOT / "docs" / "levers.md").read_text()
    fresh = render_levers_doc()
    for line in fresh.splitlines():
        if line.startswith("| `"):
            assert line in doc, f"docs/levers.md is stale: {line}"


def test_knockout_experiment_small(tmp_path):
    spec = importlib.util.spec_from_file_location("run_knockout", ROOT / "experiments/knockout/run_knockout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "knockout"
    assert module.main(["--replicates", "2", "--smes", "300", "--steps", "6", "--workers", "1", "--out", str(out)]) == 0
    table = pd.read_csv(out / "knockout.csv")
    assert table["provision"].tolist() == list(range(1, 26))
    assert table[["output", "output_ci", "fiscal_cost"]].notna().all().all()
    # knocking out tax relief removes its fiscal cost: the lever adds cost
    assert table.loc[table.key == "p07_tax_relief", "fiscal_cost"].item() > 0
    assert (out / "knockout.png").stat().st_size > 10_000
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 26 * 2
