"""Property-based tests: bad input never gets past validation, and any lever
setting keeps the economy within its invariants."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sme_abm import SMEEconomy, load_registry
from sme_abm.cli import app
from sme_abm.config import Config, config_keys
from sme_abm.invariants import check_invariants

from conftest import CONFIGS

REGISTRY = load_registry()
VALID_KEYS = config_keys()
runner = CliRunner()

scalars = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0, -1]),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10), max_size=5),
)
key_names = st.one_of(st.sampled_from(VALID_KEYS), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=20))


def nested(pairs: list[tuple[str, object]]) -> dict:
    data: dict = {}
    for dotted, value in pairs:
        parts = [p for p in dotted.split(".") if p] or ["x"]
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return data


def run_cli(tmp_path: Path, text: str | bytes, small: bool = True) -> tuple[int, str, Path]:
    path = tmp_path / "fuzzed.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "results" / "run"
    size = ["--smes", "30", "--steps", "2"] if small else []
    result = runner.invoke(app, ["run", str(path), *size, "--quiet", "--out", str(out)])
    return result.exit_code, result.stderr, out


def assert_clean_outcome(code: int, stderr: str, out: Path, path_hint: str = "fuzzed.toml") -> None:
    assert code in (0, 2), stderr
    if code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and path_hint in lines[0], stderr
        assert "Traceback" not in stderr
        assert not out.exists() and not any(out.parent.glob(".*partial")) if out.parent.exists() else True
    else:
        assert {p.name for p in out.iterdir()} >= {"timeseries.parquet", "config.toml", "manifest.json"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(key_names, scalars), min_size=1, max_size=6))
def test_fuzzed_configs_exit_0_or_2_with_one_line(tmp_path_factory, pairs):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    try:
        text = tomli_w.dumps(nested(pairs))
    except (TypeError, ValueError):  # TOML cannot hold NaN keys etc.: write a raw line instead
        text = "\n".join(f"{k} = {v!r}" for k, v in pairs)
    code, stderr, out = run_cli(tmp_path, text)
    assert_clean_outcome(code, stderr, out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_arbitrary_bytes_never_crash(tmp_path_factory, text):
    code, stderr, out = run_cli(tmp_path_factory.mktemp("bytes"), text)
    assert_clean_outcome(code, stderr, out)


def test_huge_and_non_finite_values_named(tmp_path):
    for line, key in (("[simulation]\nn_smes = 100000000000000\n", "simulation.n_smes"),
                      ("[economy]\nwage = nan\n", "economy.wage"),
                      ("[levers.p13_financing_guarantee]\nfee_cap = inf\n", "levers.p13_financing_guarantee.fee_cap")):
        code, stderr, out = run_cli(tmp_path, line, small=False)
        assert code == 2 and key in stderr
        assert_clean_outcome(code, stderr, out)


def lever_settings() -> st.SearchStrategy[dict]:
    per_lever = {}
    for lever in REGISTRY.levers:
        params = {name: st.floats(min_value=p.range[0], max_value=p.range[1], allow_nan=False)
                  for name, p in lever.parameters.items()}
        per_lever[lever.key] = st.fixed_dictionaries({"enabled": st.booleans()}, optional=params)
    return st.fixed_dictionaries(per_lever)


shocks = st.lists(st.fixed_dictionaries({
    "kind": st.sampled_from(["demand", "disaster"]),
    "start": st.integers(0, 8), "duration": st.integers(1, 6),
    "depth": st.floats(0, 1), "share": st.floats(0, 1),
}), max_size=2)


@settings(max_examples=30, deadline=None)
@given(levers=lever_settings(), scheduled=shocks, seed=st.integers(0, 2**31))
def test_invariants_hold_under_random_policy(levers, scheduled, seed):
    model = SMEEconomy({"levers": levers, "shocks": scheduled}, n_smes=300, rng=seed)
    for _ in range(12):
        model.step()
        failures = check_invariants(model)
        assert not failures, failures


def test_configs_are_data_never_code():
    # a config that tries to smuggle code in is just an unknown key or a wrong type
    data = tomllib.loads((CONFIGS / "baseline.toml").read_text())
    data["simulation"]["n_smes"] = "__import__('os').system('echo hacked')"
    with pytest.raises(Exception) as info:
        Config.model_validate(data)
    assert "n_smes" in str(info.value)
