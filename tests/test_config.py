"""Config validation: every kind of bad input is one clear line naming file and key."""

from __future__ import annotations

import math

import pytest

from sme_abm import ConfigError, load_config
from sme_abm.config import parse_override

from conftest import CONFIGS


def message(data, origin="bad.toml") -> str:
    with pytest.raises(ConfigError) as info:
        load_config(data, origin=origin)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(origin + ": ")
    return text


def test_defaults_equal_baseline_file():
    """The baseline is the code's defaults, started from the economy's own state (a burn-in;
    the code's default is none, so a bare ``SMEEconomy()`` starts from the set-up)."""
    from sme_abm.configdoc import BURN_IN_MONTHS

    baseline = load_config(CONFIGS / "baseline.toml")
    assert baseline.simulation.burn_in_months == BURN_IN_MONTHS > 0
    defaults = load_config({"name": "baseline", "description": baseline.description,
                            "simulation": {"burn_in_months": BURN_IN_MONTHS}})
    assert baseline.digest() == defaults.digest()


def test_unknown_key_suggests_closest():
    assert message({"simulation": {"n_smse": 5}}) == "bad.toml: simulation.n_smse: unknown key; did you mean 'n_smes'?"
    assert "did you mean 'p13_financing_guarantee'" in message({"levers": {"p13_financing_guarante": {}}})
    assert "did you mean 'fee_cap'" in message({"levers": {"p13_financing_guarantee": {"fee_cp": 0.01}}})


def test_wrong_type_and_range_name_the_key():
    assert message({"simulation": {"n_smes": "many"}}).startswith("bad.toml: simulation.n_smes: Input should be a valid integer")
    text = message({"levers": {"p13_financing_guarantee": {"fee_cap": 0.5}}})
    assert "levers.p13_financing_guarantee.fee_cap" in text and "0.1" in text
    assert "levers.p01_legal_system.enabled" in message({"levers": {"p01_legal_system": {"enabled": "yes"}}})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_rejected(value):
    assert "government.cit_rate" in message({"government": {"cit_rate": value}})


def test_cross_field_rules():
    assert "economy.sector_shares" in message({"economy": {"sector_shares": [0.5, 0.5, 0.5, 0.5]}})
    assert "shocks[0].kind" in message({"shocks": [{"kind": "meteor", "start": 1}]})


def test_missing_empty_and_malformed_files(tmp_path):
    assert "file not found" in message(tmp_path / "nope.toml", origin=str(tmp_path / "nope.toml"))
    empty = tmp_path / "empty.toml"
    empty.write_text("  \n")
    assert "empty" in message(empty, origin=str(empty))
    broken = tmp_path / "broken.toml"
    broken.write_text("[simulation\nn_smes = 3\n")
    assert "malformed TOML" in message(broken, origin=str(broken))


def test_overrides_parse_toml_values():
    assert parse_override("levers.p13_financing_guarantee.enabled=false") == (
        ["levers", "p13_financing_guarantee", "enabled"], False)
    assert parse_override("simulation.n_smes=2000") == (["simulation", "n_smes"], 2000)
    config = load_config(CONFIGS / "baseline.toml", {"levers.p13_financing_guarantee.enabled": False})
    assert config.levers.p13_financing_guarantee.enabled is False


def test_resolved_config_round_trips_through_toml():
    import tomllib

    config = load_config(CONFIGS / "shock.toml", {"simulation.seed": 3})
    again = load_config(tomllib.loads(config.to_toml()))
    assert again.digest() == config.digest()
    assert len(again.shocks) == 2
