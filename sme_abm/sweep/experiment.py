"""Experiment files: a base config plus a design over config keys.

An experiment file is TOML (see ``docs/sweeps.md``)::

    name = "smoke"
    base = "../baseline.toml"        # relative to the experiment file; omit for defaults
    replicates = 2
    entropy = 20240601               # seeds of the replicates; omit to draw one (it is recorded)
    outputs = ["smes_active", "output"]          # time series to plot
    metrics = ["annual_exit_rate", "output_mean"] # summary metrics to analyse

    [overrides]                      # fixed for every run
    "simulation.n_smes" = 1000

    [design]
    kind = "grid"                    # grid | random | lhs | sobol | morris
    [design.parameters."levers.p13_financing_guarantee.fee_cap"]
    values = [0.005, 0.02]

    [start]                          # optional: every run starts from a saved state
    burn_in_months = 120             # the sweep burns in one state per replicate (DIR/states/)
    # from_state = "results/states/baseline"   # or: one saved state (sme-abm burn-in)

Study designs (``kind = "knockout" | "knockin" | "shapley" | "interactions"``) vary
the levers' ``enabled`` switches; see :mod:`sme_abm.sweep.studies`.

Everything is validated with pydantic (unknown keys are refused) and every
swept key is checked by building a config with its extreme values, so a bad
file fails before anything is written, with a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import GUARANTEE_SHARE_TOLERANCE, NAME_PATTERN, Config, config_keys, load_config, read_toml
from ..errors import ConfigError
from ..levers import load_registry


SEED_KEY = "simulation.seed"
SEED_REASON = ("cannot be set by an experiment: each run's seed comes from the entropy and its replicate "
               "(set entropy and replicates instead)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class ParameterSpec(_Strict):
    """How one config key varies: explicit ``values`` or a ``range`` (with ``levels`` for grids)."""

    values: list[float | int | bool | str] | None = Field(None, min_length=1)
    range: tuple[float, float] | None = None
    levels: int | None = Field(None, ge=2, le=1000)

    @model_validator(mode="after")
    def _values_or_range(self) -> "ParameterSpec":
        if self.values is not None and self.range is not None:
            raise ValueError("give either values or range, not both")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(self.range)}")
        if self.levels is not None and self.range is None:
            raise ValueError("levels needs a range")
        return self


STUDY_KINDS = ("knockout", "knockin", "shapley", "interactions")
"""Design kinds over the levers' on/off switches (:mod:`sme_abm.sweep.studies`)."""


class DesignSpec(_Strict):
    """The design: its kind, sample size and the parameters it varies."""

    kind: Literal["grid", "random", "lhs", "sobol", "morris", "knockout", "knockin", "shapley", "interactions"]
    samples: int | None = Field(None, ge=1, le=1_000_000, description="Points (random, lhs), base samples N (sobol) or trajectories (morris).")
    seed: int = Field(12345, ge=0, le=2**32 - 1, description="Seed of the sampler (not of the model).")
    levels: int = Field(4, ge=2, le=100, description="Morris grid levels.")
    second_order: bool = Field(False, description="Sobol: also compute second-order indices.")
    registry_main_parameters: bool = Field(False, description="Add every lever's main parameter with its registry range.")
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    # -- study designs (kinds in STUDY_KINDS) --
    levers: list[str | int] | None = Field(None, min_length=1, description="Study: the levers studied (keys or provision numbers); default all 25.")
    permutations: int | None = Field(None, ge=1, le=100_000, description="Shapley: sampled permutations of the levers.")
    antithetic: bool = Field(True, description="Shapley: each sampled permutation is followed by its reverse.")
    pairs: list[tuple[str | int, str | int]] | None = Field(None, min_length=1, description="Interactions: the lever pairs.")
    reference: Literal["full", "none"] | None = Field(None, description="Interactions: the other levers on (full package) or off (no policy).")
    channels: dict[str, str] = Field(default_factory=dict, description="Study: lever key -> time-series column of its own channel (adds to / replaces the shipped map).")

    @model_validator(mode="after")
    def _consistent(self) -> "DesignSpec":
        study_only = {"levers": self.levers, "permutations": self.permutations, "pairs": self.pairs,
                      "reference": self.reference, "channels": self.channels or None}
        if self.kind in STUDY_KINDS:
            if self.parameters or self.registry_main_parameters:
                raise ValueError(f"a {self.kind} study varies the levers' enabled switches; give no parameters")
            if self.kind == "shapley" and self.permutations is None:
                raise ValueError("a shapley design needs permutations")
            if self.kind == "interactions" and not self.pairs:
                raise ValueError("an interactions design needs pairs = [[11, 13], ...]")
            if self.kind != "shapley" and self.permutations is not None:
                raise ValueError("permutations is for shapley designs")
            if self.kind != "interactions" and (self.pairs is not None or self.reference is not None):
                raise ValueError("pairs and reference are for interactions designs")
            return self
        given = [name for name, value in study_only.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only for study designs ({', '.join(STUDY_KINDS)})")
        if not self.parameters and not self.registry_main_parameters:
            raise ValueError("the design varies no parameter; add [design.parameters.\"KEY\"] tables")
        if self.kind != "grid" and self.samples is None:
            raise ValueError(f"a {self.kind} design needs samples")
        return self


class StartSpec(_Strict):
    """Where every run of the experiment starts: a saved state, or a burn-in the sweep runs first.

    With a state, each run loads it and runs ``simulation.steps`` more months under its own
    config (the design point's levers apply from the first evaluated month); only those months
    are kept and summarised. ``from_state``: one state for every run, whose random streams each
    replicate reseeds from its own seed (else all replicates would be one). ``burn_in_months``:
    the sweep runs the base config (plus ``overrides``, e.g. the policy in force before the study)
    for that many months and saves the state in ``DIR/states/`` before any run; with
    ``per_replicate`` (the default) one state per replicate seed, which the replicate's runs
    continue bit for bit (common random numbers across design points, independent replicates),
    else one state (seeded by the first replicate's seed), reseeded per replicate.
    """

    from_state: str | None = Field(None, description="A saved state folder (sme-abm burn-in), relative to the experiment file.")
    burn_in_months: int | None = Field(None, ge=1, le=100_000, description="Months of the burn-in the sweep runs first.")
    per_replicate: bool = Field(True, description="Burn-in: one state per replicate seed.")
    policy: Literal["base", "full", "none"] = Field("base", description="Burn-in: the levers as in the base config, all on, or all off.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Burn-in only: more config keys (after policy).")

    @model_validator(mode="after")
    def _one_source(self) -> "StartSpec":
        if (self.from_state is None) == (self.burn_in_months is None):
            raise ValueError("give either from_state or burn_in_months")
        if self.from_state is not None and (self.overrides or not self.per_replicate or self.policy != "base"):
            raise ValueError("policy, overrides and per_replicate are for burn_in_months")
        return self


class ExperimentFile(_Strict):
    """The contents of an experiment file, as validated."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field("", max_length=4000)
    base: str | None = None
    replicates: int = Field(1, ge=1, le=10_000)
    entropy: int | None = Field(None, ge=0, description="Root entropy of the replicate seeds.")
    outputs: list[str] = Field(default_factory=lambda: ["smes_active", "output", "credit_granted", "npl_ratio"])
    metrics: list[str] = Field(default_factory=lambda: ["annual_exit_rate", "output_mean", "credit_rationed_share", "fiscal_cost_total"])
    overrides: dict[str, Any] = Field(default_factory=dict)
    design: DesignSpec
    start: StartSpec | None = None


@dataclass(frozen=True)
class SweptParameter:
    """One resolved swept key.

    Attributes:
        key: Dotted config key.
        values: Grid values (grid designs) or None.
        bounds: ``(low, high)`` for sampled designs, or None.
        integer: True when the config field holds an int (sampled values are rounded).
    """

    key: str
    values: tuple[Any, ...] | None
    bounds: tuple[float, float] | None
    integer: bool


@dataclass
class Experiment:
    """A validated experiment, ready to be turned into runs.

    Attributes:
        source: The file it came from (or ``"<dict>"``).
        spec: The validated file contents.
        text: The file as given (empty when built from a dict).
        base_config: The resolved base config (base file plus fixed overrides), as plain data.
        parameters: The swept keys, in design order.
        state_path: Absolute path of the ``[start] from_state`` state, or None.
    """

    source: str
    spec: ExperimentFile
    text: str
    base_config: dict[str, Any]
    parameters: list[SweptParameter] = field(default_factory=list)
    state_path: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def _get_dotted(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node


def _pydantic_error(exc: ValidationError, source: str) -> ConfigError:
    error = exc.errors(include_url=False)[0]
    key = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
    if error["type"] == "extra_forbidden":
        return ConfigError(source, key, "unknown key")
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r:.60})"
    return ConfigError(source, key, message + shown)


def load_experiment(source: str | Path | dict[str, Any]) -> Experiment:
    """Read and validate an experiment file (or a mapping with the same structure).

    Args:
        source: Path of a TOML experiment file, or a dict.

    Returns:
        The validated :class:`Experiment`.

    Raises:
        ConfigError: On any problem, naming the file and the key.
    """
    if isinstance(source, dict):
        origin, data, text, folder = "<dict>", copy.deepcopy(source), "", Path.cwd()
    else:
        path = Path(source)
        origin = str(path)
        data = read_toml(path)
        text = path.read_text(encoding="utf-8-sig")
        folder = path.resolve().parent
    try:
        spec = ExperimentFile.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(exc, origin) from None

    base_path: Path | None = None
    if spec.base is not None:
        base_path = Path(spec.base)
        if not base_path.is_absolute():
            base_path = folder / base_path
        if not base_path.is_file():
            raise ConfigError(origin, "base", f"config file {spec.base!r} not found (looked for {base_path})")
    known_keys = set(config_keys())
    if SEED_KEY in spec.overrides:
        raise ConfigError(origin, f"overrides.{SEED_KEY}", SEED_REASON)
    for key in spec.overrides:
        if key not in known_keys:
            raise ConfigError(origin, f"overrides.{key}", "not a config key (see `sme-abm levers` and configs/baseline.toml)")
    try:
        base = load_config(base_path, spec.overrides)
    except ConfigError as exc:
        raise ConfigError(origin, f"overrides.{exc.key}" if exc.key else "base", f"{exc.source}: {exc.reason}") from None
    base_data = base.to_dict()
    base_data["name"] = spec.name

    parameters = _resolve_parameters(spec, origin, base_data, known_keys)
    state_path = _check_start(spec, origin, folder, base, known_keys)
    if spec.start is not None:
        from ..state import POLICY_KEYS, RUN_KEYS

        allowed = tuple(f"{key}." for key in POLICY_KEYS) + tuple(f"simulation.{key}" for key in RUN_KEYS)
        for param in parameters:
            if not param.key.startswith(allowed):
                raise ConfigError(origin, f"design.parameters.{param.key}", "runs from a saved state ([start]) may "
                                  "vary only the policy (levers, shocks) and run settings, not the economy")
    return Experiment(source=origin, spec=spec, text=text, base_config=base_data, parameters=parameters,
                      state_path=state_path)


def burn_in_overrides(policy: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The config keys of a burn-in: every lever on (``full``) or off (``none``), then ``overrides``."""
    switches = {} if policy == "base" else {f"levers.{key}.enabled": policy == "full" for key in load_registry().keys}
    return {**switches, **overrides}


def _check_start(spec: ExperimentFile, origin: str, folder: Path, base: Config, known_keys: set[str]) -> str | None:
    """Check ``[start]`` against the base config; the absolute path of ``from_state`` (or None)."""
    from ..state import check_compatible, read_header, structural_hash

    start = spec.start
    if start is None:
        return None
    for key in start.overrides:
        if key not in known_keys:
            raise ConfigError(origin, f"start.overrides.{key}", "not a config key")
        if key == SEED_KEY:
            raise ConfigError(origin, f"start.overrides.{key}", SEED_REASON)
    if start.burn_in_months is not None:
        try:
            burn_in = load_config(base.to_dict(), burn_in_overrides(start.policy, start.overrides))
        except ConfigError as exc:
            raise ConfigError(origin, f"start.overrides.{exc.key}", exc.reason) from None
        if structural_hash(burn_in) != structural_hash(base):
            raise ConfigError(origin, "start.overrides", "may change only the policy (levers, shocks) and run settings; "
                              "the runs could not continue a burn-in of another economy")
        return None
    path = Path(start.from_state)  # type: ignore[arg-type]
    if not path.is_absolute():
        path = folder / path
    try:
        check_compatible(read_header(path), base, path)
    except ConfigError as exc:
        raise ConfigError(origin, "start.from_state", f"{path}: {exc.key}: {exc.reason}") from None
    return str(path.resolve())


def _resolve_parameters(spec: ExperimentFile, origin: str, base: dict[str, Any], known_keys: set[str]) -> list[SweptParameter]:
    design = spec.design
    if design.kind in STUDY_KINDS:
        from .studies import check_study

        return check_study(design, origin, spec.overrides)
    requested: dict[str, ParameterSpec] = {}
    if design.registry_main_parameters:
        for lever in load_registry().levers:
            requested[f"levers.{lever.key}.{lever.main_parameter}"] = ParameterSpec()
    requested.update(design.parameters)

    resolved: list[SweptParameter] = []
    for key, param in requested.items():
        where = f"design.parameters.{key}"
        if key not in known_keys:
            raise ConfigError(origin, where, "not a config key (see `sme-abm levers` and configs/baseline.toml)")
        if key in spec.overrides:
            raise ConfigError(origin, where, "is also fixed in [overrides]; a key is either fixed or swept")
        if key == SEED_KEY:
            raise ConfigError(origin, where, SEED_REASON)
        current = _get_dotted(base, key)
        integer = isinstance(current, int) and not isinstance(current, bool)
        values: tuple[Any, ...] | None = None
        bounds: tuple[float, float] | None = None
        if design.kind == "grid":
            if param.values is not None:
                values = tuple(param.values)
            elif param.range is not None and param.levels is not None:
                low, high = param.range
                step = (high - low) / (param.levels - 1)
                values = tuple(low + i * step for i in range(param.levels))
                if integer:
                    values = tuple(dict.fromkeys(int(round(v)) for v in values))
            else:
                raise ConfigError(origin, where, "a grid needs values = [...] or range = [low, high] with levels = n")
            probes = list(values)
        else:
            if param.values is not None:
                raise ConfigError(origin, where, f"a {design.kind} design samples a range; give range = [low, high], not values")
            bounds = param.range or _registry_range(key)
            if bounds is None:
                raise ConfigError(origin, where, "needs range = [low, high] (only lever parameters have a default range)")
            probes = [bounds[0], bounds[1]]
            if integer:
                probes = [int(round(v)) for v in probes]
        for value in probes:
            _check_value(origin, where, base, key, value)
        resolved.append(SweptParameter(key=key, values=values, bounds=bounds, integer=integer))
    _check_guarantee_shares_jointly(origin, base, resolved)
    return resolved


GUARANTEE_SHARES = tuple(f"levers.p13_financing_guarantee.{name}"
                         for name in ("bank_share", "reguarantee_share", "government_share"))


def _check_guarantee_shares_jointly(origin: str, base: dict[str, Any], resolved: list[SweptParameter]) -> None:
    """Each value was checked alone; lever 13's three loss shares must also stay within one
    together (the guarantor bears the rest), at the largest value the design can give each."""
    swept = {param.key: param for param in resolved if param.key in GUARANTEE_SHARES}
    if len(swept) == 0:
        return
    highest = {}
    for key in GUARANTEE_SHARES:
        param = swept.get(key)
        if param is None:
            highest[key] = float(_get_dotted(base, key))
        else:
            highest[key] = float(max(param.values) if param.values is not None else param.bounds[1])  # type: ignore[index]
    total = sum(highest.values())
    if total > 1.0 + GUARANTEE_SHARE_TOLERANCE:
        first = next(iter(swept))
        raise ConfigError(origin, f"design.parameters.{first}",
                          f"the design lets bank_share + reguarantee_share + government_share reach {total:.6g}, "
                          "more than 1 (the guarantor bears 1 minus their sum); narrow the ranges")


def _registry_range(key: str) -> tuple[float, float] | None:
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "levers":
        return None
    lever = load_registry().by_key(parts[1])
    param = lever.parameters.get(parts[2])
    return tuple(param.range) if param else None  # type: ignore[return-value]


def _check_value(origin: str, where: str, base: dict[str, Any], key: str, value: Any) -> None:
    """Build a config with ``key = value`` to prove the value is acceptable."""
    try:
        load_config(base, {key: value})
    except ConfigError as exc:
        raise ConfigError(origin, where, f"value {value!r} is not allowed: {exc.reason}") from None


def config_for(base_config: dict[str, Any], values: dict[str, Any], seed: int) -> Config:
    """The config of one run: the base with the design point's values and the run's seed."""
    return load_config(base_config, {**values, "simulation.seed": seed})
