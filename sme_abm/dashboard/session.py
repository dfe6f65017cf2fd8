"""The dashboard's state without any user interface: settings, runs, presets.

Everything the page does to the model goes through this module, so it can be
tested without Solara or a browser. A :class:`Settings` value is what the user
has chosen (preset, lever switches and values, seed, number of SMEs); a
:class:`Run` is a model built from the config those settings resolve to.
Changing a setting builds a new run from month 0, so the exported config
always reproduces what the page shows.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Config, load_config
from ..errors import ConfigError
from ..levers import load_registry
from ..model import SMEEconomy

SEED_RANGE = (0, 2**31 - 1)
SMES_RANGE = (100, 50_000)
RUN_STEPS_RANGE = (1, 240)
DEFAULT_SMES = 2_000


def configs_dir() -> Path:
    """The folder holding the preset configs.

    ``SME_ABM_CONFIGS`` wins; then the repository's ``configs/`` next to the
    package; then ``configs/`` in the working directory.
    """
    env = os.environ.get("SME_ABM_CONFIGS")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2] / "configs"
    return beside if beside.is_dir() else Path.cwd() / "configs"


def list_presets(folder: Path | None = None) -> list[str]:
    """Names (file stems) of the ``*.toml`` presets, baseline first."""
    folder = folder or configs_dir()
    names = sorted(path.stem for path in folder.glob("*.toml")) if folder.is_dir() else []
    return sorted(names, key=lambda name: (name != "baseline", name))


def clamp(value: float, bounds: tuple[float, float]) -> Any:
    """``value`` forced into ``bounds`` (inclusive), keeping its type."""
    low, high = bounds
    return type(value)(min(max(value, low), high))


@dataclass(frozen=True)
class Settings:
    """What the user has chosen on the page.

    Attributes:
        preset: Name of the preset the settings started from.
        base: The preset's resolved config as plain data.
        levers: Lever key to ``{"enabled": bool, parameter: value, ...}``.
        seed: Random seed of the run.
        n_smes: SMEs at the start.
    """

    preset: str
    base: dict[str, Any]
    levers: dict[str, dict[str, Any]]
    seed: int
    n_smes: int = DEFAULT_SMES
    note: str = field(default="", compare=False)

    @classmethod
    def from_config(cls, config: Config, preset: str, n_smes: int | None = None) -> "Settings":
        """Settings that reproduce ``config`` (optionally with another size)."""
        data = config.to_dict()
        return cls(
            preset=preset,
            base=data,
            levers=copy.deepcopy(data["levers"]),
            seed=config.simulation.seed,
            n_smes=clamp(int(n_smes if n_smes is not None else config.simulation.n_smes), SMES_RANGE),
        )

    def with_lever(self, key: str, name: str, value: Any) -> "Settings":
        """A copy with one lever field (``enabled`` or a parameter) changed.

        Parameter values are clamped to the registry range.
        """
        lever = load_registry().by_key(key)
        if name != "enabled":
            value = clamp(float(value), lever.parameters[name].range)
        else:
            value = bool(value)
        levers = copy.deepcopy(self.levers)
        levers[key][name] = value
        return replace(self, levers=levers)

    def with_run(self, seed: int | None = None, n_smes: int | None = None) -> "Settings":
        """A copy with another seed or size (both clamped to their ranges)."""
        return replace(
            self,
            seed=self.seed if seed is None else clamp(int(seed), SEED_RANGE),
            n_smes=self.n_smes if n_smes is None else clamp(int(n_smes), SMES_RANGE),
        )

    def config(self, steps: int | None = None) -> Config:
        """The validated config these settings describe."""
        data = copy.deepcopy(self.base)
        data["levers"] = copy.deepcopy(self.levers)
        data["simulation"]["seed"] = self.seed
        data["simulation"]["n_smes"] = self.n_smes
        if steps is not None:
            data["simulation"]["steps"] = max(int(steps), 1)
        return load_config(data, origin=f"dashboard ({self.preset})")


def load_preset(name: str, n_smes: int | None = None, folder: Path | None = None) -> Settings:
    """Settings from preset ``name`` under the configs folder.

    Raises:
        ConfigError: The file is missing, unreadable or invalid.
    """
    folder = folder or configs_dir()
    path = folder / f"{name}.toml"
    config = load_config(path)
    return Settings.from_config(config, preset=name, n_smes=n_smes)


def default_settings() -> Settings:
    """The baseline preset at the dashboard's default size, or the code defaults."""
    try:
        return load_preset("baseline", n_smes=DEFAULT_SMES)
    except ConfigError:
        return Settings.from_config(load_config(None), preset="defaults", n_smes=DEFAULT_SMES)


class Run:
    """A model built from a config, stepped by the page.

    Args:
        config: The config the model is built from.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.model = SMEEconomy(config)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Run":
        return cls(settings.config())

    @property
    def months(self) -> int:
        """Months simulated so far."""
        return len(self.model.recorder.rows) if hasattr(self.model.recorder, "rows") else len(self.timeseries())

    def step(self, n: int = 1) -> None:
        """Advance ``n`` months (bounded by :data:`RUN_STEPS_RANGE`)."""
        for _ in range(clamp(int(n), RUN_STEPS_RANGE)):
            self.model.step()

    def timeseries(self) -> pd.DataFrame:
        """The run's outputs so far (empty before the first step)."""
        try:
            return self.model.timeseries()
        except (ValueError, KeyError, IndexError):
            return pd.DataFrame()

    def export_config(self) -> Config:
        """The config that reproduces this run: the one it was built from,
        with ``simulation.steps`` set to the months run so far."""
        months = self.months
        if months < 1:
            return self.config
        data = self.config.to_dict()
        data["simulation"]["steps"] = months
        return load_config(data, origin="dashboard export")

    def export_toml(self) -> str:
        """:meth:`export_config` as TOML that ``sme-abm run`` accepts."""
        return self.export_config().to_toml()

    def export_csv(self) -> str:
        """The time series so far as CSV."""
        return self.timeseries().to_csv(index=False)

    def banks_table(self) -> pd.DataFrame:
        """One row per bank and guarantor with its balance-sheet figures."""
        banks, guarantors = self.model.banks, self.model.guarantors
        kinds = ("large state bank", "small local bank", "non-deposit lender")
        rows = []
        for i in range(banks.size):
            rows.append({
                "institution": f"bank {i}", "kind": kinds[int(banks.kind[i])] if int(banks.kind[i]) < 3 else "bank",
                "cash": banks.cash[i], "loans": banks.loans[i], "equity": banks.equity[i],
                "capital_ratio": banks.capital_ratio[i], "guarantees": float("nan"),
                "leverage": float("nan"), "leverage_limit": float("nan"),
            })
        leverage, limit = guarantors.leverage(), guarantors.leverage_limit()
        for i in range(guarantors.size):
            fund = bool(guarantors.is_reguarantee_fund[i])
            rows.append({
                "institution": f"guarantor {i}", "kind": "re-guarantee fund" if fund else "guarantor",
                "cash": guarantors.cash[i], "loans": float("nan"), "equity": guarantors.cash[i],
                "capital_ratio": float("nan"), "guarantees": guarantors.outstanding[i],
                "leverage": leverage[i], "leverage_limit": limit[i],
            })
        return pd.DataFrame(rows).round(4)


def baseline_settings(settings: Settings) -> Settings:
    """The comparison's counterpart: the current settings with the baseline
    preset's lever settings (same seed, size, economy and shocks)."""
    try:
        levers = load_config(configs_dir() / "baseline.toml").to_dict()["levers"]
    except ConfigError:
        levers = load_config(None).to_dict()["levers"]
    return replace(settings, levers=levers, preset="baseline")


def compare_with_baseline(current: Run, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The current run's time series and the baseline's over the same months.

    The baseline is built from :func:`baseline_settings` with the same seed,
    so the only difference is the levers.

    Returns:
        The two time series (current, baseline).
    """
    base = Run.from_settings(baseline_settings(settings))
    base.model.run(max(current.months, 1))
    return current.timeseries(), base.timeseries()
