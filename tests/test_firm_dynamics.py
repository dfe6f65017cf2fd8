"""The firm-dynamics report (issue 15): its figures on a panel whose answers are known, and
`sme-abm dynamics` on a real run's results folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sme_abm.cli import app
from sme_abm.firm_dynamics import firm_dynamics


def _panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two yearly snapshots of four firms: firm 1 doubles, firm 2 shrinks from small to
    micro, firm 3 exits in between, firm 4 is born; and the exit of firm 3."""
    panel = pd.DataFrame({
        "firm_id": [1, 2, 3, 1, 2, 4],
        "step": [11, 11, 11, 23, 23, 23],
        "sector": [0] * 6,
        "size_class": [0, 1, 0, 0, 0, 0],
        "employment": [4.0, 40.0, 2.0, 8.0, 10.0, 1.0],
        "output": [1.0] * 6,
        "capital": [1.0] * 6,
        "debt": [0.0] * 6,
        "age": [130, 30, 5, 142, 42, 6],
    })
    exits = pd.DataFrame({"step": [15], "firm_id": [3], "age": [9], "size": [2.0], "size_class": [0],
                          "output": [0.1], "reason": [0]})
    return panel, exits


def test_growth_transitions_exit_rates_and_young_share_of_a_known_panel():
    d = firm_dynamics(*_panel())
    assert sorted(d.growth.round(6)) == sorted(np.round([np.log(2.0), np.log(0.25)], 6))
    t = d.transitions
    assert t.loc["micro", "micro"] == pytest.approx(0.5) and t.loc["micro", "exit"] == pytest.approx(0.5)
    assert t.loc["small", "micro"] == pytest.approx(1.0) and t.loc["small", "firms"] == 1
    # one exit at age 0 in 2 years, 1 firm aged 0 at risk on average over the snapshots
    ages = d.exit_rates[d.exit_rates["by"] == "age"].set_index("class")
    assert ages.loc["0", "annual_exit_rate"] == pytest.approx(0.5)
    assert ages.loc["0", "firms_at_risk"] == pytest.approx(1.0)
    # last snapshot: firms aged 42 and 6 months are young, 10 + 1 of 19 workers
    assert d.young_employment_share == pytest.approx(11.0 / 19.0)
    by_age = d.size_by_age.set_index("age")
    assert by_age.loc["10+", "mean_employment"] == 8.0 and by_age.loc["3-4", "firms"] == 1


def test_dynamics_command_reports_a_run(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["run", "configs/baseline.toml", "--smes", "2000", "--steps", "36", "--out",
                                 str(run_dir)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["dynamics", str(run_dir)])
    assert result.exit_code == 0, result.output
    report = (run_dir / "firm_dynamics" / "report.md").read_text()
    assert "upper-tail exponent" in report and "Size-class transitions" in report
    assert (run_dir / "firm_dynamics" / "firm_dynamics.png").stat().st_size > 5_000
    transitions = pd.read_csv(run_dir / "firm_dynamics" / "size_class_transitions.csv", index_col=0)
    shares = transitions.drop(columns="firms").loc["micro"]
    assert shares.sum() == pytest.approx(1.0) and shares["micro"] > 0.8
    # a folder without a run's files is refused in one line, exit status 2, nothing written
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["dynamics", str(empty)])
    assert result.exit_code == 2 and "firm_panel.parquet" in result.output
    assert list(empty.iterdir()) == []
