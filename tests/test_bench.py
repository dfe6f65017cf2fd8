"""The bench code runs at tiny sizes and reports well-formed, positive numbers."""

import json
import math

from typer.testing import CliRunner

from sme_abm import bench
from sme_abm.cli import app


def test_run_bench_structure_at_tiny_sizes():
    result = bench.run_bench(sizes=(200, 400), steps=2, boltzmann_agents=100, boltzmann_steps=2, memory_steps=1,
                             stationary_burn_in=3)
    json.dumps(result)  # JSON-ready
    assert result["stationary_burn_in_months"] == 3
    # the rates count the firms each timed step stepped, which a burn-in moves away from n
    for n in ("200", "400"):
        assert result["sme_steps_per_s"][n] == result["firms"][n] / result["step_seconds"][n]
        assert 0.5 * int(n) < result["stationary_firms"][n] < 1.5 * int(n)
    for key in ("sme_steps_per_s", "ratio_vs_mesa", "step_seconds", "stationary_step_seconds", "stationary_ratio_vs_mesa"):
        assert set(result[key]) == {"200", "400"}
        assert all(math.isfinite(v) and v > 0 for v in result[key].values())
    # a tiny model may not raise the process's memory high-water mark at all
    assert set(result["bytes_per_sme"]) == {"200", "400"}
    assert all(math.isfinite(v) and v >= 0 for v in result["bytes_per_sme"].values())
    assert math.isfinite(result["mesa_boltzmann_agent_steps_per_s"]) and result["mesa_boltzmann_agent_steps_per_s"] > 0
    assert math.isfinite(result["scaling_exponent"])


def test_scaling_exponent_recovers_a_power_law():
    sizes = [10, 100, 1000]
    assert abs(bench.scaling_exponent(sizes, [2e-3 * n ** 1.05 for n in sizes]) - 1.05) < 1e-9


def test_cli_bench_json(monkeypatch):
    monkeypatch.setattr(bench, "QUICK_SIZES", (150, 300))
    real = bench.run_bench
    monkeypatch.setattr(bench, "run_bench", lambda sizes, progress=None: real(
        sizes, steps=1, boltzmann_agents=64, boltzmann_steps=1, memory_steps=1, progress=progress))
    out = CliRunner().invoke(app, ["bench", "--quick", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout[out.stdout.index("{"):])
    assert set(data["sme_steps_per_s"]) == {"150", "300"}


def test_million_run_benchmark_reports_the_user_command_at_small_size():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "million_run.py"
    spec = importlib.util.spec_from_file_location("million_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(60_000, steps=3)
    assert result["n_smes"] == 60_000 and result["mesa_agents"] is True, result
    # 60,000 Mesa agents alone take ~30 MB above the 100-SME reference run
    assert result["peak_rss_bytes"] > result["base_rss_bytes"] + 15_000_000, result
    assert 250 < result["bytes_per_sme"] < 5_000 and result["wall_s"] > 0, result
