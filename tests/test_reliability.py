"""Property-based tests: bad input never gets past validation, and any lever
setting keeps the economy within its invariants."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize(("text", "key"), [
    # the three outside shares sum to 1.3 (4321 with the bank at 0.5): the guarantor would bear -0.3
    ("[levers.p13_financing_guarantee]\nbank_share = 0.5\nreguarantee_share = 0.6\n", "levers.p13_financing_guarantee"),
    # the four sum to 4 and to 0: stated guarantor shares that do not complete the others to 1
    ("[levers.p13_financing_guarantee]\nguarantor_share = 1.0\nreguarantee_share = 1.0\nbank_share = 1.0\n"
     "government_share = 1.0\n", "levers.p13_financing_guarantee.guarantor_share"),
    ("[levers.p13_financing_guarantee]\nguarantor_share = 0.0\nreguarantee_share = 0.0\nbank_share = 0.0\n"
     "government_share = 0.0\n", "levers.p13_financing_guarantee.guarantor_share"),
    ("[levers.p13_financing_guarantee]\nguarantor_share = 0.5\n", "levers.p13_financing_guarantee.guarantor_share"),
])
def test_guarantee_shares_that_do_not_sum_to_one_are_refused(tmp_path, text, key):
    """Issue 19, item 7: lever 13's loss shares are never renormalised silently. The guarantor
    bears what the bank, the re-guarantee fund and the local government do not, so a config
    whose three shares exceed 1, or that states a guarantor share the others do not complete
    to 1, is refused in one line naming the key."""
    code, stderr, out = run_cli(tmp_path, text)
    assert code == 2 and f"{key}:" in stderr, stderr
    assert "sum" in stderr
    assert_clean_outcome(code, stderr, out)


def test_a_stated_guarantor_share_that_completes_the_others_is_accepted():
    """Configs written before the guarantor's share was derived state all four; when they sum
    to 1 (within 1e-6) they load, and the split is the one stated."""
    from sme_abm.config import load_config

    p13 = "levers.p13_financing_guarantee"
    config = load_config(None, {f"{p13}.guarantor_share": 0.5, f"{p13}.bank_share": 0.1,
                                f"{p13}.reguarantee_share": 0.3, f"{p13}.government_share": 0.1 + 1e-9})
    assert config.lever("p13_financing_guarantee").bank_share == pytest.approx(0.1)
    assert not hasattr(config.lever("p13_financing_guarantee"), "guarantor_share")


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
    # shares are drawn up to 1 each; the three outside shares must also stay within 1 together
    p13 = "p13_financing_guarantee"
    shares = ("bank_share", "reguarantee_share", "government_share")
    per_lever[p13] = st.fixed_dictionaries(
        {"enabled": st.booleans(), **{name: st.floats(0.0, 1.0 / 3.0) for name in shares}},
        optional={name: st.floats(*p.range, allow_nan=False)
                  for name, p in REGISTRY.by_key(p13).parameters.items() if name not in shares})
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


# -- experiment files: every bad file exits 2 with one line and writes nothing ----------------

from sme_abm.sweep.experiment import DesignSpec, ExperimentFile, ParameterSpec  # noqa: E402

SMOKE_EXPERIMENT = CONFIGS / "experiments" / "smoke.toml"
SWEPT = "levers.p13_financing_guarantee.fee_cap"


def smoke_data() -> dict:
    data = tomllib.loads(SMOKE_EXPERIMENT.read_text())
    data["base"] = str(CONFIGS / "baseline.toml")
    return data


def fresh_name(taken: set[str]) -> st.SearchStrategy[str]:
    return st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(lambda k: k not in taken)


non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
huge_ints = st.one_of(st.integers(min_value=10**18, max_value=10**40), st.integers(min_value=-(10**40), max_value=-(10**18)))
out_of_range_fee = st.one_of(st.floats(min_value=1.01, max_value=1e300), st.floats(min_value=-1e300, max_value=-1e-9),
                             non_finite, huge_ints)
not_an_int = st.one_of(st.text(alphabet="abcxyz -", max_size=5), st.floats(allow_nan=True).filter(lambda x: not float(x).is_integer()),
                       st.lists(st.integers(), max_size=2))


@st.composite
def invalid_experiment(draw) -> tuple[str, str]:
    """Text of a mutation of smoke.toml that must be refused, and a fragment of the key the error must name."""
    data = smoke_data()
    kind = draw(st.sampled_from(["unknown_key", "wrong_type", "out_of_range", "non_finite", "huge", "missing",
                                 "malformed", "empty"]))
    if kind == "unknown_key":
        where = draw(st.sampled_from(["top", "design", "parameter", "overrides"]))
        if where == "top":
            name = draw(fresh_name(set(ExperimentFile.model_fields)))
            data[name] = draw(scalars)
            return tomli_w.dumps(data), name
        if where == "design":
            name = draw(fresh_name(set(DesignSpec.model_fields)))
            data["design"][name] = draw(scalars)
            return tomli_w.dumps(data), f"design.{name}"
        if where == "parameter":
            name = draw(fresh_name(set(ParameterSpec.model_fields)))
            data["design"]["parameters"][SWEPT][name] = 1
            return tomli_w.dumps(data), f"{SWEPT}.{name}"
        name = draw(fresh_name(set(VALID_KEYS)))
        data["overrides"][name] = 1
        return tomli_w.dumps(data), f"overrides.{name}"
    if kind == "wrong_type":
        field_name, value = draw(st.sampled_from([
            ("replicates", not_an_int), ("entropy", not_an_int), ("name", st.one_of(st.integers(), st.lists(st.integers()))),
            ("design.kind", st.text(max_size=10).filter(lambda k: k not in ("grid", "random", "lhs", "sobol", "morris"))),
            ("design.seed", not_an_int), ("outputs", st.integers()), ("overrides", st.integers()),
            ("values", st.one_of(st.text(max_size=5), st.integers(), st.just([]))),
        ]))
        value = draw(value)
        if field_name == "values":
            data["design"]["parameters"][SWEPT]["values"] = value
            return tomli_w.dumps(data), SWEPT
        if field_name.startswith("design."):
            data["design"][field_name.split(".")[1]] = value
        else:
            data[field_name] = value
        return tomli_w.dumps(data), field_name
    if kind == "out_of_range":
        target = draw(st.sampled_from(["replicates", "design.seed", "entropy", "fee_cap", "n_smes", "steps"]))
        if target == "replicates":
            data["replicates"] = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=10_001)))
        elif target == "design.seed":
            data["design"]["seed"] = draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)))
        elif target == "entropy":
            data["entropy"] = draw(st.integers(max_value=-1))
        elif target == "fee_cap":
            data["design"]["parameters"][SWEPT]["values"] = [0.01, draw(out_of_range_fee)]
            return tomli_w.dumps(data), SWEPT
        elif target == "n_smes":
            data["overrides"]["simulation.n_smes"] = draw(st.one_of(st.integers(max_value=9), st.integers(min_value=200_000_001)))
            return tomli_w.dumps(data), "overrides.simulation.n_smes"
        else:
            data["overrides"]["simulation.steps"] = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=12_001)))
            return tomli_w.dumps(data), "overrides.simulation.steps"
        return tomli_w.dumps(data), target
    if kind == "non_finite":
        target = draw(st.sampled_from(["values", "range", "wage", "n_smes", "replicates"]))
        bad = draw(non_finite)
        if target == "values":
            data["design"]["parameters"][SWEPT]["values"] = [bad]
            return tomli_w.dumps(data), SWEPT
        if target == "range":
            data["design"]["parameters"][SWEPT] = {"range": [0.0, bad] if bad > 0 else [bad, 0.05], "levels": 2}
            return tomli_w.dumps(data), SWEPT
        if target == "replicates":
            data["replicates"] = bad
            return tomli_w.dumps(data), "replicates"
        key = {"wage": "economy.wage", "n_smes": "simulation.n_smes"}[target]
        data["overrides"][key] = bad
        return tomli_w.dumps(data), f"overrides.{key}"
    if kind == "huge":
        target = draw(st.sampled_from(["replicates", "n_smes", "name", "description", "samples"]))
        if target == "name":
            data["name"] = "x" * draw(st.integers(65, 100_000))
        elif target == "description":
            data["description"] = "y" * draw(st.integers(4001, 200_000))
        elif target == "samples":
            data["design"] = {**data["design"], "kind": "lhs", "samples": draw(st.integers(min_value=1_000_001)),
                              "parameters": {SWEPT: {"range": [0.0, 0.05]}}}
            return tomli_w.dumps(data), "design.samples"
        elif target == "n_smes":
            data["overrides"]["simulation.n_smes"] = draw(huge_ints)
            return tomli_w.dumps(data), "overrides.simulation.n_smes"
        else:
            data["replicates"] = draw(huge_ints)
        return tomli_w.dumps(data), target
    if kind == "missing":
        target = draw(st.sampled_from(["name", "design", "design.kind"]))
        if target == "design.kind":
            del data["design"]["kind"]
        else:
            del data[target]
        return tomli_w.dumps(data), target
    if kind == "malformed":
        lines = SMOKE_EXPERIMENT.read_text().replace('"../baseline.toml"', f'"{CONFIGS / "baseline.toml"}"').splitlines()
        garbage = draw(st.sampled_from(['"unterminated = 1', "[design", "x = = 1", "= 3", "[[",
                                        "replicates = 2 3", "key = [1, 2", "a.b = {c = }"]))
        lines.insert(draw(st.integers(0, len(lines))), garbage)
        return "\n".join(lines) + "\n", "malformed TOML"
    text = draw(st.sampled_from(["", " ", "\n\n\t\n", "\ufeff"]))
    return text, "empty" if not text.strip() else ""  # a lone BOM is malformed TOML


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(case=invalid_experiment())
def test_fuzzed_experiment_files_exit_2_with_one_line_and_no_results(tmp_path_factory, case):
    text, key = case
    tmp_path = tmp_path_factory.mktemp("experiment")
    path = tmp_path / "fuzzed-experiment.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "results"
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and key in lines[0], (key, lines[0])
    assert "Traceback" not in result.output
    assert not out.exists()


# -- nothing read from a file is ever executed or unpickled ----------------------------------

PACKAGE = Path(__file__).resolve().parent.parent / "sme_abm"
UNSAFE = {
    r"\bpickle\.loads?\(": "unpickles data",
    r"\b(cloudpickle|dill|joblib)\.loads?\(": "unpickles data",
    r"(?<![\w.])eval\(": "evaluates text as code",
    r"(?<![\w.])exec\(": "executes text as code",
    r"\bpd\.read_pickle\(|\bread_pickle\(": "unpickles a file",
    r"allow_pickle\s*=\s*True": "lets numpy unpickle a file",
    r"\bmarshal\.loads?\(": "unmarshals code",
    r"\bshelve\.open\(": "unpickles a file",
}


def test_package_never_executes_or_unpickles_what_it_reads():
    import re

    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, why in UNSAFE.items():
                if re.search(pattern, code):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {why}: {line.strip()}")
            if re.search(r"\byaml\.load\(", code) and "SafeLoader" not in code:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: yaml.load without SafeLoader")
            if re.search(r"\bnp\.load\(", code) and "allow_pickle=False" not in code.replace(" ", ""):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: np.load without allow_pickle=False")
    assert not found, "\n".join(found)
    assert len(list(PACKAGE.rglob("*.py"))) > 20  # the scan did look at the package


def test_unsafe_pattern_scan_catches_each_pattern(tmp_path):
    import re

    samples = ["pickle.load(f)", "data = pickle.loads(b)", "eval(text)", "exec(code)", "pd.read_pickle(p)",
               "np.load(p, allow_pickle=True)", "marshal.loads(b)"]
    for sample in samples:
        assert any(re.search(p, sample) for p in UNSAFE), sample
    for harmless in ["model.eval_metrics()", "executor.submit(f)", "literal_eval_x = 1", "self.exec_time = 2"]:
        assert not any(re.search(p, harmless) for p in UNSAFE), harmless


def test_hostile_policy_collapse_is_allowed_but_bounded():
    """Found by hypothesis in CI: most demand diverted plus 20% compliance costs make firms exit
    together after their ninth loss month. That is the model's answer; the invariants hold."""
    levers = {"p02_fair_competition": {"large_firm_demand_bias": 0.9, "entry_barrier": 0.95},
              "p05_fair_supervision": {"compliance_time_share": 0.5, "shutdown_probability": 0.1},
              "p24_organisation": {"implementation_lag_months": 0.0}}
    model = SMEEconomy({"levers": levers}, n_smes=300, rng=0)
    for _ in range(12):
        model.step()
        assert not check_invariants(model)
    assert model.smes.size < 100  # the collapse happened


# -- one line, exit 2, before any work, for input that used to give tracebacks or hang ---------


def nested_value(depth: int, kind: str = "array") -> str:
    return "[" * depth + "1" + "]" * depth if kind == "array" else "{a = " * depth + "1" + "}" * depth


def one_error_line(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.mark.parametrize("where", ["config", "experiment", "base", "--set"])
def test_toml_nested_500_deep_is_one_line(tmp_path: Path, where: str) -> None:
    deep = f"x = {nested_value(500)}\n"
    out = tmp_path / "out"
    if where == "config":
        (tmp_path / "deep.toml").write_text(deep)
        args, named = ["run", str(tmp_path / "deep.toml"), "--out", str(out)], str(tmp_path / "deep.toml")
    elif where == "--set":
        args, named = ["run", str(CONFIGS / "baseline.toml"), "--out", str(out), "--set", f"economy.wage={nested_value(500)}"], "--set"
    else:
        data = smoke_data()
        if where == "base":
            (tmp_path / "base.toml").write_text(deep)
            data["base"] = str(tmp_path / "base.toml")
        experiment = tmp_path / "experiment.toml"
        experiment.write_text(tomli_w.dumps(data) + (deep if where == "experiment" else ""))
        args, named = ["sweep", str(experiment), "--out", str(out), "--quiet"], str(tmp_path / ("base.toml" if where == "base" else "experiment.toml"))
    one_error_line(runner.invoke(app, args), named, "nested more than 32 deep")
    assert not out.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1, 600), kind=st.sampled_from(["array", "table"]), key=st.sampled_from(VALID_KEYS))
def test_fuzzed_nesting_depth_is_refused_in_one_line(tmp_path_factory, depth, kind, key):
    section, _, name = key.partition(".")
    text = f"[{section}]\n{name.replace('.', '_')} = {nested_value(depth, kind)}\n"
    tmp_path = tmp_path_factory.mktemp("deep")
    code, stderr, out = run_cli(tmp_path, text)
    assert_clean_outcome(code, stderr, out)
    if depth > 32:
        assert code == 2 and "nested more than 32 deep" in stderr


@pytest.mark.parametrize("kind", ["fifo", "directory", "/dev/null", "/dev/zero"])
def test_special_files_as_config_are_one_line(tmp_path: Path, kind: str) -> None:
    import os

    path = tmp_path / "special.toml"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block for ever
    elif kind == "directory":
        path.mkdir()
    else:
        path = Path(kind)
    one_error_line(runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")]), str(path))
    assert not (tmp_path / "out").exists()


def test_unreadable_config_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    path = tmp_path / "secret.toml"
    path.write_text("[simulation]\n")
    real = Path.read_bytes

    def denied(self):  # chmod 000 as a normal user (root would read it anyway)
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    one_error_line(runner.invoke(app, ["run", str(path)]), str(path), "Permission denied")


def test_usage_errors_and_odd_file_names_are_one_line(tmp_path: Path) -> None:
    one_error_line(runner.invoke(app, ["run", str(CONFIGS / "baseline.toml"), "--smes", "1e3"]), "--smes")
    one_error_line(runner.invoke(app, ["run", str(CONFIGS / "baseline.toml"), "--no-such-option"]), "--no-such-option")
    line = one_error_line(runner.invoke(app, ["run", str(tmp_path / "a\nb.toml")]), "file not found")
    assert "a\\nb.toml" in line


def test_bad_out_is_reported_before_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sme_abm.runner

    monkeypatch.setattr(sme_abm.runner, "run", lambda *a, **k: pytest.fail("the run started"))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker / "run", blocker):
        one_error_line(runner.invoke(app, ["run", str(CONFIGS / "baseline.toml"), "--out", str(out)]), str(out))
    assert blocker.read_text() == "x"


def test_validate_too_short_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(CONFIGS / "baseline.toml"), "--smes", "10", "--steps", "1",
                                 "--replicates", "1", "--out", str(tmp_path / "v")])
    one_error_line(result, "simulation.steps", "12 months")
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("scheduler, reason", [("nonsense", "not a scheduler address"),
                                               ("tcp://127.0.0.1:1", "cannot connect")])
def test_bad_dask_scheduler_is_one_line_and_writes_nothing(tmp_path: Path, scheduler: str, reason: str) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(SMOKE_EXPERIMENT), "--backend", "dask", "--scheduler", scheduler,
                                 "--out", str(out), "--quiet"])
    one_error_line(result, "--scheduler", scheduler, reason)
    assert not out.exists()


# -- fuzzed sweep results files: a damaged manifest or run record never gives a traceback -------


def real_manifest() -> dict:
    from sme_abm.sweep import load_experiment
    from sme_abm.sweep.core import _new_manifest

    return json.loads(json.dumps(_new_manifest(load_experiment(SMOKE_EXPERIMENT))))


MANIFEST = real_manifest()
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)


@st.composite
def damaged_manifest(draw) -> bytes:
    from sme_abm.sweep.core import RESOLVED_KEYS

    text = json.dumps(MANIFEST)
    kind = draw(st.sampled_from(["truncated", "other_json", "key_dropped", "key_changed", "deep", "bytes"]))
    if kind == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))].encode()
    if kind == "other_json":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":
        depth = draw(st.integers(1, 100_000))
        return ("[" * depth + "]" * depth).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    data = json.loads(text)
    key = draw(st.sampled_from([*RESOLVED_KEYS, "resolved_sha256"]))
    if kind == "key_dropped":
        del data[key]
    else:
        data[key] = draw(json_values.filter(lambda value: value != data[key]))
    return json.dumps(data).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=damaged_manifest())
def test_fuzzed_manifest_is_refused_in_one_line_by_resume_and_reproduce(tmp_path_factory, content):
    out = tmp_path_factory.mktemp("manifest")
    (out / "manifest.json").write_bytes(content)
    for args in (["sweep", str(SMOKE_EXPERIMENT), "--out", str(out), "--resume", "--quiet"], ["reproduce", str(out)]):
        one_error_line(runner.invoke(app, args), str(out / "manifest.json"))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                         st.integers(1, 100_000).map(lambda d: ("{\"a\":" * d + "1" + "}" * d).encode())))
def test_fuzzed_run_record_is_corrupt_never_a_crash(tmp_path_factory, content):
    from sme_abm.sweep.store import SweepStore

    store = SweepStore(tmp_path_factory.mktemp("record"))
    store.runs_dir.mkdir()
    planned = MANIFEST["runs"][0]
    store.run_record_path(planned["run_id"]).write_bytes(content)
    assert store.verify_run(planned)[0] == "corrupt"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=30).filter(lambda n: "/" not in n and "\x00" not in n and n not in (".", "..")
                                                    and len(n.encode()) < 200))
def test_fuzzed_file_names_of_valid_configs_are_accepted(tmp_path_factory, name):
    tmp_path = tmp_path_factory.mktemp("names")
    path = tmp_path / f"{name}.toml"
    path.write_bytes("\ufeff".encode() + (CONFIGS / "baseline.toml").read_bytes())  # with a byte-order mark
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--smes", "30", "--steps", "2", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "summary.json").exists()
    missing = tmp_path / f"{name}-missing.toml"
    one_error_line(runner.invoke(app, ["run", str(missing)]), "file not found")


# -- bad input that used to be accepted silently ------------------------------------------------


def write_experiment_data(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "experiment.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.mark.parametrize("where", ["design", "overrides"])
def test_sweeping_or_fixing_the_seed_is_refused(tmp_path: Path, where: str) -> None:
    data = smoke_data()
    if where == "design":
        data["design"]["parameters"]["simulation.seed"] = {"values": [1, 2, 3]}
        key = "design.parameters.simulation.seed"
    else:
        data["overrides"]["simulation.seed"] = 5
        key = "overrides.simulation.seed"
    path = write_experiment_data(tmp_path, data)
    one_error_line(runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"]),
                   str(path), key, "entropy")
    assert not (tmp_path / "out").exists()


def test_design_over_the_run_limit_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import time

    data = smoke_data()
    data["replicates"] = 10_000
    data["design"] = {"kind": "lhs", "samples": 1_000_000, "parameters": {SWEPT: {"range": [0.0, 0.05]}}}
    path = write_experiment_data(tmp_path, data)
    out = tmp_path / "out"
    started = time.monotonic()
    line = one_error_line(runner.invoke(app, ["sweep", str(path), "--out", str(out), "--quiet"]), str(path), "design")
    assert "10,000,000,000 runs" in line and "--max-runs" in line
    assert time.monotonic() - started < 30  # the design was never built
    assert not out.exists()
    # a small design over a lowered limit is refused, and runs once the limit allows it
    small = write_experiment_data(tmp_path, {**smoke_data(), "overrides": {"simulation.n_smes": 30, "simulation.steps": 2}})
    one_error_line(runner.invoke(app, ["sweep", str(small), "--out", str(out), "--quiet", "--max-runs", "7"]), "8 runs")
    assert not out.exists()
    assert runner.invoke(app, ["sweep", str(small), "--out", str(out), "--quiet", "--max-runs", "8",
                               "--workers", "1"]).exit_code == 0


def _peak_bytes(work) -> tuple[object, int]:
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["grid", "lhs"])
def test_a_design_forced_past_the_run_limit_is_never_built_in_memory(tmp_path: Path, kind: str) -> None:
    """400,000 runs (issue 19 item 7): planning them, writing the manifest and iterating every
    run stay under 16 MB of Python allocations (a list of the runs took about 400 MB)."""
    from sme_abm.sweep.core import _new_manifest, checked_manifest, design_points_of, planned_runs
    from sme_abm.sweep.design import design_points, plan_runs, replicate_seeds
    from sme_abm.sweep.experiment import load_experiment
    from sme_abm.sweep.store import SweepStore

    data = smoke_data()
    if kind == "grid":  # 20 x 20 points x 1,000 replicates
        data["replicates"] = 1000
        data["design"] = {"kind": "grid", "parameters": {
            SWEPT: {"range": [0.0, 0.05], "levels": 20},
            "levers.p13_financing_guarantee.bank_share": {"range": [0.1, 0.5], "levels": 20}}}
    else:  # 4,000 sampled points x 100 replicates (SALib builds the matrix: memory grows with points, not runs)
        data["replicates"] = 100
        data["design"] = {"kind": "lhs", "samples": 4000, "parameters": {SWEPT: {"range": [0.0, 0.05]}}}
    experiment = load_experiment(write_experiment_data(tmp_path, data))
    limit = 16 * 2**20

    def iterate(runs) -> tuple[int, object]:
        count, last = 0, None
        for run in runs:
            count, last = count + 1, run
        return count, last

    (count, last), peak = _peak_bytes(lambda: iterate(plan_runs(design_points(experiment),
                                                                replicate_seeds(1, data["replicates"]))))
    assert count == 400_000 and last.run_id == "399999" and last.replicate == data["replicates"] - 1
    assert peak < limit, f"planning and iterating 400,000 runs allocated {peak / 2**20:.0f} MB"

    store = SweepStore(tmp_path / "out")
    store.root.mkdir()
    manifest, peak = _peak_bytes(lambda: _new_manifest(experiment, store))
    assert peak < limit, f"the manifest of 400,000 runs allocated {peak / 2**20:.0f} MB"
    assert manifest["runs"]["count"] == 400_000  # described, not listed
    store.write_manifest(manifest)
    assert store.manifest_path.stat().st_size < 100_000
    reread = checked_manifest(store)
    (count, last), peak = _peak_bytes(lambda: iterate(planned_runs(store, reread)))
    assert peak < limit and count == 400_000
    plan = plan_runs(design_points(experiment), [int(s) for s in manifest["replicate_seeds"]])
    assert last == plan[-1].to_dict() and planned_runs(store, reread)[12_345] == plan[12_345].to_dict()
    if kind == "grid":
        assert plan[0].values == {SWEPT: 0.0, "levers.p13_financing_guarantee.bank_share": 0.1}
        assert plan[1000].values[SWEPT] == 0.0 and plan[20_000].values[SWEPT] > 0.0  # last key fastest
    else:  # the design matrix is kept in design.npy and checked against its checksum
        points = store.root / "design.npy"
        assert points.exists() and len(design_points_of(store, reread)) == 4000
        raw = bytearray(points.read_bytes())
        raw[-1] ^= 0xFF
        points.write_bytes(bytes(raw))
        with pytest.raises(Exception, match="points_sha256"):
            planned_runs(store, reread)


@pytest.mark.parametrize("kind", ["grid", "lhs"])
def test_a_plan_too_large_to_list_sweeps_resumes_and_reproduces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  kind: str) -> None:
    """The lazily described plan (used past INLINE_RUNS runs) runs, resumes and reproduces like a listed one."""
    import pandas as pd

    from sme_abm.sweep import core

    monkeypatch.setattr(core, "INLINE_RUNS", 4)
    data = {**smoke_data(), "overrides": {"simulation.n_smes": 30, "simulation.steps": 2}}
    if kind == "lhs":
        data["design"] = {"kind": "lhs", "samples": 4, "parameters": {SWEPT: {"range": [0.0, 0.05]}}}
    path = write_experiment_data(tmp_path, data)
    out = tmp_path / "out"
    table = core.sweep(path, workers=1, out=out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"]["count"] == 8 and (out / "design.npy").exists() == (kind == "lhs")
    assert list(table["run_id"]) == [f"{i:06d}" for i in range(8)] and (table["status"] == "ok").all()
    (out / "runs" / "000005.json").unlink()
    again = core.sweep(path, workers=1, out=out, resume=True, progress=False)
    pd.testing.assert_frame_equal(table.drop(columns="duration"), again.drop(columns="duration"))
    verdicts = core.reproduce(out, runs=3)
    assert len(verdicts) == 3 and all(ok for _, ok, _ in verdicts)
    assert (out / "report.md").exists()


@pytest.mark.parametrize("name", [".", "..", ".hidden", "-x"])
def test_experiment_names_that_are_not_folder_names_are_refused(tmp_path: Path, name: str) -> None:
    path = write_experiment_data(tmp_path, {**smoke_data(), "name": name})
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        one_error_line(runner.invoke(app, ["sweep", str(path), "--quiet"]), str(path), "name")
    finally:
        os.chdir(old)
    assert list(cwd.iterdir()) == []


def test_non_ascii_file_name_and_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "基线.toml"
    path.write_bytes("\ufeff[simulation]\nsteps = 2\n".encode())  # no name: it comes from the file name
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--smes", "30", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "name = \"run\"" in (out / "config.toml").read_text()


# -- numbers that are not numbers, and the edges of the population -----------------------------


def strict_json(text: str):
    """Parse as JSON.parse would: NaN and Infinity are not JSON."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a JSON file"))


COLLAPSE = {"shocks": [{"kind": "demand", "start": 0, "duration": 24, "depth": 1.0}]}


def test_summary_and_run_records_are_strict_json_with_null_for_undefined(tmp_path: Path) -> None:
    config = tmp_path / "collapse.toml"
    config.write_text(tomli_w.dumps(COLLAPSE))
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(config), "--smes", "300", "--steps", "6", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = strict_json((out / "summary.json").read_text())
    assert None in summary.values()  # no loan granted: the loan rates are undefined, written as null
    strict_json((out / "manifest.json").read_text())
    data = smoke_data()
    data["overrides"].update({"simulation.n_smes": 100, "simulation.steps": 6})
    data["base"] = str(config)  # the collapse comes from the base config
    experiment = tmp_path / "experiment.toml"
    experiment.write_text(tomli_w.dumps(data))
    sweep_out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(experiment), "--out", str(sweep_out), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    records = [strict_json(path.read_text()) for path in sorted((sweep_out / "runs").glob("*.json"))]
    assert len(records) == 8 and all(None in record["summary"].values() for record in records)
    strict_json((sweep_out / "manifest.json").read_text())


EXTINCTION = {"levers": {"p02_fair_competition": {"large_firm_demand_bias": 0.9, "entry_barrier": 0.95},
                         "p05_fair_supervision": {"compliance_time_share": 0.5, "shutdown_probability": 0.1},
                         "p24_organisation": {"implementation_lag_months": 0.0}},
              "economy": {"entry_rate": 0.0},
              "shocks": [{"kind": "demand", "start": 1, "duration": 60, "depth": 1.0}]}


@pytest.mark.parametrize("edge", ["extinction", "explosion"])
def test_population_edges_are_reported_cleanly(tmp_path: Path, edge: str) -> None:
    import warnings

    settings_ = EXTINCTION if edge == "extinction" else {"economy": {"entry_rate": 1.0}}
    steps = 30 if edge == "extinction" else 36
    model = SMEEconomy(settings_, n_smes=100, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # outputs are defined, not computed from empty arrays
        for _ in range(steps):
            model.step()
            assert not check_invariants(model)
    summary = model.summary()
    if edge == "extinction":
        assert summary["extinct"] and summary["smes_end"] == 0 and 0 < summary["extinct_month"] < steps
        frame = model.timeseries()
        assert frame["productivity_mean"].iloc[-1] != frame["productivity_mean"].iloc[-1]  # NaN: no firms
    else:
        assert not summary["extinct"] and summary["sme_count_ratio_max"] > 5
    config = tmp_path / "edge.toml"
    config.write_text(tomli_w.dumps(settings_))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(config), "--smes", "100", "--steps", str(steps), "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = one_line_of(result.stderr)
    assert line.startswith("warning:") and ("every SME had exited" in line if edge == "extinction" else "5x bound" in line)
    assert strict_json((out / "summary.json").read_text())["extinct"] is (edge == "extinction")


def one_line_of(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]
