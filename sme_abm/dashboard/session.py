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
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..agents.bank import BANK_KINDS
from ..config import Config, load_config
from ..errors import ConfigError
from ..levers import load_registry
from ..model import SMEEconomy

SEED_RANGE = (0, 2**31 - 1)
SMES_RANGE = (100, 50_000)
RUN_STEPS_RANGE = (1, 240)
#: Size used only when no preset can be read (a preset's own ``n_smes`` wins).
DEFAULT_SMES = 2_000
#: What a preset name may look like: a file stem, never a path.
PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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

        Parameter values are clamped to the registry range. Setting a field
        to the value it already has returns ``self`` unchanged (so a widget
        echoing a value back never counts as a change).
        """
        lever = load_registry().by_key(key)
        if name != "enabled":
            value = clamp(float(value), lever.parameters[name].range)
        else:
            value = bool(value)
        if self.levers[key].get(name) == value:
            return self
        levers = copy.deepcopy(self.levers)
        levers[key][name] = value
        return replace(self, levers=levers)

    def reset_lever(self, key: str) -> "Settings":
        """A copy with lever ``key`` back at the preset's settings."""
        levers = copy.deepcopy(self.levers)
        levers[key] = copy.deepcopy(self.base["levers"][key])
        return replace(self, levers=levers)

    def reset_all(self) -> "Settings":
        """The preset's settings (levers, seed and size)."""
        return replace(self, levers=copy.deepcopy(self.base["levers"]), seed=self.base["simulation"]["seed"],
                       n_smes=clamp(int(self.base["simulation"]["n_smes"]), SMES_RANGE))

    def changes(self) -> list["Change"]:
        """What differs from the preset, in provision order (seed and size last)."""
        registry = load_registry()
        out: list[Change] = []
        for lever in registry.levers:
            mine, theirs = self.levers[lever.key], self.base["levers"][lever.key]
            if bool(mine["enabled"]) != bool(theirs["enabled"]):
                out.append(Change(lever.key, "enabled", theirs["enabled"], mine["enabled"], lever.provision))
            for name in lever.parameters:
                if mine.get(name) != theirs.get(name):
                    out.append(Change(lever.key, name, theirs.get(name), mine.get(name), lever.provision))
        simulation = self.base["simulation"]
        if self.seed != simulation["seed"]:
            out.append(Change("", "seed", simulation["seed"], self.seed))
        if self.n_smes != simulation["n_smes"]:
            out.append(Change("", "n_smes", simulation["n_smes"], self.n_smes))
        return out

    def changes_text(self) -> str:
        """The changes in one line, e.g. ``levers 7 and 13 off; lever 9 relending_share 0.8 (preset 0.6)``."""
        return describe_changes(self.changes())

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


@dataclass(frozen=True)
class Change:
    """One setting that differs from the preset.

    Attributes:
        key: Lever key, or ``""`` for the run's seed and size.
        name: ``enabled``, a parameter name, ``seed`` or ``n_smes``.
        preset: The preset's value.
        value: The current value.
        provision: The lever's number (0 for seed and size).
    """

    key: str
    name: str
    preset: Any
    value: Any
    provision: int = 0

    @property
    def text(self) -> str:
        if self.name == "enabled":
            return f"lever {self.provision} {'on' if self.value else 'off'}"
        if self.name == "seed":
            return f"seed {self.value} (preset {self.preset})"
        if self.name == "n_smes":
            return f"{self.value:,} SMEs (preset {self.preset:,})"
        return f"lever {self.provision} {self.name} {format_value(self.value)} (preset {format_value(self.preset)})"


def format_value(value: Any) -> str:
    """A number as a person writes it: ``0.0005``, ``60``, ``0.8`` (never ``0.054000000000000006``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return f"{float(value):.6g}"


def _join(numbers: list[str]) -> str:
    return numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]


def describe_changes(changes: list[Change]) -> str:
    """``levers 7 and 13 off; lever 9 relending_share 0.8 (preset 0.6); seed 3 (preset 42)``."""
    parts = []
    for state_word in ("off", "on"):
        numbers = [str(c.provision) for c in changes if c.name == "enabled" and (c.value is (state_word == "on"))]
        if numbers:
            parts.append(f"{'levers' if len(numbers) > 1 else 'lever'} {_join(numbers)} {state_word}")
    parts += [c.text for c in changes if c.name != "enabled"]
    return "; ".join(parts)


def safe_preset_name(name: str) -> bool:
    """True if ``name`` looks like a preset's file stem (no path, no dots at the start)."""
    return isinstance(name, str) and bool(PRESET_NAME.fullmatch(name)) and ".." not in name


def load_preset(name: str, n_smes: int | None = None, folder: Path | None = None) -> Settings:
    """Settings from preset ``name``: one of :func:`list_presets`, never a path.

    Raises:
        ConfigError: ``name`` is not one of the presets, or the file is
            unreadable or invalid.
    """
    folder = folder or configs_dir()
    if not safe_preset_name(name) or name not in list_presets(folder):
        raise ConfigError("preset", "", f"no preset named {name!r}; the presets are: "
                          f"{', '.join(list_presets(folder)) or 'none'}")
    path = folder / f"{name}.toml"
    config = load_config(path)
    return Settings.from_config(config, preset=name, n_smes=n_smes)


def default_settings() -> Settings:
    """The baseline preset exactly as configured (its own size), or the code defaults."""
    try:
        return load_preset("baseline")
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

    def step_to(self, month: int, progress: Any = None) -> None:
        """Step until ``month`` months have run; ``progress(done, total)`` after each."""
        total = max(int(month) - self.months, 0)
        for done in range(1, total + 1):
            self.model.step()
            if progress is not None:
                progress(done, total)

    def timeseries(self) -> pd.DataFrame:
        """The run's outputs so far (empty before the first step)."""
        try:
            return self.model.timeseries()
        except (ValueError, KeyError, IndexError):
            return pd.DataFrame()

    def export_config(self, settings: Settings | None = None) -> Config:
        """The config that reproduces this run: the one it was built from,
        with ``simulation.steps`` set to the months run so far.

        With ``settings`` that differ from their preset, the name and
        description say so (``baseline-modified``, "From preset baseline:
        levers 7 and 13 off"); untouched, the config is the preset's.
        """
        months = self.months
        changed = settings.changes_text() if settings is not None else ""
        if months < 1 and not changed:
            return self.config
        data = self.config.to_dict()
        if months >= 1:
            data["simulation"]["steps"] = months
        if changed:
            data["name"] = export_name(settings.preset)
            data["description"] = f"Dashboard settings from preset {settings.preset}: {changed}."[:2000]
        return load_config(data, origin="dashboard export")

    def export_toml(self, settings: Settings | None = None) -> str:
        """:meth:`export_config` as TOML that ``sme-abm run`` accepts, with a
        header comment listing what differs from the preset."""
        text = self.export_config(settings).to_toml()
        if settings is None:
            return text
        changes = settings.changes()
        lines = [f"# Exported from the sme-abm dashboard after {self.months} months; preset {settings.preset}."]
        if changes:
            lines.append("# Differences from the preset:")
            lines += [f"#   {change.text}" for change in changes]
        else:
            lines.append("# No differences from the preset.")
        return "\n".join(lines) + "\n" + text

    def export_csv(self) -> str:
        """The time series so far as CSV."""
        return self.timeseries().to_csv(index=False)

    def banks_table(self) -> pd.DataFrame:
        """One row per bank and guarantor with its balance-sheet figures."""
        banks, guarantors = self.model.banks, self.model.guarantors
        # a bank's money is its reserves (its ledger account is reserves less the deposits it owes)
        reserves, equity, capital_ratio = banks.reserves, banks.equity, banks.capital_ratio
        rows = []
        for i in range(banks.size):
            rows.append({
                "institution": f"bank {i}", "kind": BANK_KINDS[int(banks.kind[i])],
                "cash": reserves[i], "loans": banks.loans[i], "equity": equity[i],
                "capital_ratio": capital_ratio[i], "guarantees": float("nan"),
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


def export_name(preset: str) -> str:
    """The name of an export whose settings differ from ``preset``."""
    return f"{preset[:55]}-modified"


def export_stem(settings: Settings) -> str:
    """File name stem of the exports: the preset, or ``<preset>-modified``."""
    return export_name(settings.preset) if settings.changes() else settings.preset


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
    base.step_to(max(current.months, 1))
    return current.timeseries(), base.timeseries()


class Comparison:
    """A baseline run beside the current one, kept at the same month.

    Args:
        current: The run being compared.
        settings: Its settings (the baseline gets the same seed, size,
            economy and shocks, with the baseline preset's levers).
    """

    def __init__(self, current: Run, settings: Settings) -> None:
        self.current = current
        self.baseline = Run.from_settings(baseline_settings(settings))

    def catch_up(self, progress: Any = None) -> None:
        """Step the baseline to the current run's month."""
        self.baseline.step_to(self.current.months, progress)

    @property
    def in_step(self) -> bool:
        return self.baseline.months == self.current.months

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.current.timeseries(), self.baseline.timeseries()


#: The headline figures: (label, how it is computed, unit, kind). ``kind`` is
#: "level" (percent change is meaningful away from zero) or "share" (differences
#: in percentage points).
HEADLINES: list[tuple[str, str, str, str]] = [
    ("SMEs", "smes_active", "firms", "level"),
    ("Employment", "employment", "workers", "level"),
    ("Output", "output", "CNY m / month", "level"),
    ("Credit rationed", "credit_rationed", "CNY m / month", "level"),
    ("NPL ratio", "npl_ratio", "share", "share"),
    ("Net fiscal cost", "net_fiscal_cost", "CNY m, cumulative", "level"),
]


def headline_values(ts: pd.DataFrame) -> dict[str, float]:
    """The headline figures at the last month of ``ts`` (empty before month 1).

    Net fiscal cost is the levers' spending minus the tax revenue, summed over
    the months run (negative: the state takes in more than it spends on them).
    """
    if ts.empty:
        return {}
    out = {}
    for label, column, _, _ in HEADLINES:
        if column == "net_fiscal_cost":
            if "fiscal_cost_total" in ts and "tax_revenue" in ts:
                out[label] = float((ts["fiscal_cost_total"] - ts["tax_revenue"]).sum())
        elif column in ts:
            out[label] = float(ts[column].iloc[-1])
    return out


#: Below this share of the larger magnitude, a baseline counts as near zero and
#: the change is shown as an absolute difference, not a percentage.
NEAR_ZERO = 0.05


def relative_change(current: float, baseline: float, kind: str = "level") -> str:
    """The change as people read it: ``+1.2%``, ``+0.35 pp`` for shares, ``0``.

    A baseline near zero (within :data:`NEAR_ZERO` of the larger magnitude)
    gets the absolute difference instead of a percentage.
    """
    diff = current - baseline
    if diff == 0:
        return "0"
    if kind == "share":
        return f"{diff * 100:+.3g} pp"
    scale = max(abs(current), abs(baseline))
    if baseline == 0 or abs(baseline) < NEAR_ZERO * scale:
        return f"{diff:+,.4g} (baseline near 0)"
    return f"{diff / abs(baseline) * 100:+.3g}%"
