"""Estimation of free parameters by the simulated method of moments on a surrogate (issue 17).

The model is too slow to sit inside an optimiser's loop at the sizes where its moments
settle, so the estimation follows the surrogate route of Lamperti, Roventini and Sani
(2018, JEDC 90): simulate a space-filling design once, learn the map from parameters to
moments, and search the learnt map. Every simulation goes through the sweep machinery, so
each stage is an ordinary, resumable, reproducible sweep folder (``sme-abm reproduce``).

Stages, in ``out``:

1. ``design/``: a Latin hypercube over the parameters' ranges (one replicate a point,
   common random numbers).
2. The surrogate: for each moment, a quadratic response surface in the parameters (scaled
   to [0, 1]) fitted by least squares (Box and Wilson 1951); its R^2 is reported.
3. Identification: the Jacobian of the moments (each divided by its ``scale``) with respect
   to the parameters (each over its range), from the surrogate at the estimate; its
   singular values, rank and condition number. A rank below the number of parameters means
   some combination of them moves no moment.
4. The estimate: the parameters that minimise the loss
   ``sum(((m(theta) - target) / scale)^2)`` on the surrogate, found by differential evolution
   (``scipy.optimize.differential_evolution``) within the ranges.
5. ``verify/``: the estimate simulated with ``verify_replicates`` replicates; the moments and
   the loss reported are these simulated ones, not the surrogate's.
6. Uncertainty: each ``scale`` is read as the standard error of its real figure; with the
   simulation noise of the verification runs added (divided by the replicates), the moments'
   covariance is ``Omega``, the weighting ``W = Omega^-1`` and the parameters' covariance the
   minimum-distance sandwich ``(J' W J)^-1`` (Gourieroux and Monfort 1996; for agent-based
   models, Grazzini and Richiardi 2015, JEDC 51). A parameter the moments do not identify
   gets an infinite standard error, not a number.

:func:`recover` checks the estimator itself: moments simulated at known parameter values
replace the real figures, and the estimate should come back to those values.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from .config import load_config
from .errors import ConfigError
from .jsonio import dumps

ROOT = Path(__file__).resolve().parent.parent


def _late(series: pd.DataFrame) -> pd.DataFrame:
    return series.iloc[len(series) // 3:]  # the first third is left out, as in validation


#: Moment name -> (time-series columns it needs, how it is computed from a run's summary row
#: and its time series after the first third). ``sme-abm validate`` reads its runs with the
#: same functions.
MOMENTS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any], pd.DataFrame], float]]] = {
    "annual_exit_rate": ((), lambda run, late: float(run["annual_exit_rate"])),
    # the upper-tail exponent of employment at the run's end (MLE, upper 10%)
    "employment_tail_exponent": ((), lambda run, late: float(run["employment_tail_exponent"])),
    "high_growth_share": ((), lambda run, late: float(run["high_growth_share"])),
    "small_micro_new_loan_rate": (("new_loan_rate_small_micro",),
                                  lambda run, late: float(late["new_loan_rate_small_micro"].mean())),
    "sme_spread_bp": (("spread_vs_large_firms",), lambda run, late: float(late["spread_vs_large_firms"].mean() * 1e4)),
    "npl_ratio": (("npl_ratio",), lambda run, late: float(late["npl_ratio"].mean())),
    "bank_capital_ratio": (("bank_capital_ratio",), lambda run, late: float(late["bank_capital_ratio"].mean())),
    "sme_revenue_share": (("sme_output_share",), lambda run, late: float(late["sme_output_share"].mean())),
    # SMEs' profit before income tax and period expenses per yuan of revenue net of VAT (NBS)
    "sme_profit_margin": (("sme_profit_margin",), lambda run, late: float(late["sme_profit_margin"].mean())),
    "sme_expense_ratio": (("sme_expense_ratio",), lambda run, late: float(late["sme_expense_ratio"].mean())),
    # new guarantees a year per yuan of SME loans outstanding
    "guarantees_per_loan": (("credit_guaranteed", "loans_outstanding"),
                            lambda run, late: float(12.0 * late["credit_guaranteed"].mean()
                                                    / max(float(late["loans_outstanding"].mean()), 1e-12))),
    # the count at the end over the count at set-up: a burn-in that ends below the set-up and a
    # run that climbs back reads as 1, so it says nothing of stationarity after the burn-in
    "sme_count_ratio": ((), lambda run, late: float(run["sme_count_ratio"])),
    # the SME count's drift over the late window: its last 12 months' mean over its first 12's
    "sme_count_drift": (("smes_active",), lambda run, late: _drift(late["smes_active"])),
    # entrants' employment in their first month of production, and the survivors' a year on
    "entrant_employment": (("first_month_employment", "first_month_firms"),
                           lambda run, late: _cohort_mean(late, "first_month")),
    "entrant_first_year_growth": (("first_month_employment", "first_month_firms", "first_year_employment",
                                   "first_year_firms"),
                                  lambda run, late: _cohort_mean(late, "first_year") / _cohort_mean(late, "first_month")
                                  - 1.0),
    # the share of a cohort that exits between its first month of production and a year on
    "entrant_first_year_exit": (("first_month_firms", "first_year_firms"),
                                lambda run, late: 1.0 - float(late["first_year_firms"].sum())
                                / max(float(late["first_month_firms"].sum()), 1.0)),
}


def _drift(series: pd.Series, months: int = 12) -> float:
    """Mean of the last ``months`` of ``series`` over the mean of its first ``months``."""
    return float(series.iloc[-months:].mean() / series.iloc[:months].mean())


def _cohort_mean(late: pd.DataFrame, cohort: str) -> float:
    """Mean employment of the firms in ``cohort`` (``first_month`` or ``first_year``) over the
    months of ``late``, each month weighted by how many firms the cohort had."""
    firms = late[f"{cohort}_firms"].to_numpy(dtype=float)
    if firms.sum() <= 0:
        return math.nan
    return float(np.average(late[f"{cohort}_employment"].fillna(0.0).to_numpy(dtype=float), weights=firms))


@dataclass
class MomentSpec:
    target: float
    scale: float
    source: str


@dataclass
class EstimationSpec:
    """What to estimate, against what, at which size (an estimation TOML file)."""

    source: str
    base_config: str
    parameters: dict[str, tuple[float, float]]
    moments: dict[str, MomentSpec]
    n_smes: int = 10_000
    steps: int = 120
    entropy: int = 1729
    design_points: int = 120
    verify_replicates: int = 8
    overrides: dict[str, Any] = field(default_factory=dict)
    recovery: dict[str, float] = field(default_factory=dict)  # known values for the recovery check


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> EstimationSpec:
    """Read and check an estimation file; bad input raises :class:`ConfigError` naming the key."""
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(source, "", "no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, "", f"not valid TOML: {error}") from None
    data.update(overrides or {})
    known = {"base_config", "parameters", "moments", "n_smes", "steps", "entropy", "design_points",
             "verify_replicates", "overrides", "recovery"}
    for key in data:
        if key not in known:
            raise ConfigError(source, key, f"unknown key; expected one of {', '.join(sorted(known))}")
    for key in ("base_config", "parameters", "moments"):
        if key not in data:
            raise ConfigError(source, key, "is required")
    base = Path(data["base_config"])
    base = base if base.is_absolute() else ROOT / base
    if not base.is_file():
        raise ConfigError(source, "base_config", f"{base} is not a file")
    parameters: dict[str, tuple[float, float]] = {}
    for name, bounds in data["parameters"].items():
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)
                and bounds[0] < bounds[1]):
            raise ConfigError(source, f"parameters.{name}", "must be [low, high] with low < high")
        try:
            for bound in bounds:
                load_config(str(base), {**data.get("overrides", {}), name: float(bound)})
        except ConfigError as error:
            raise ConfigError(source, f"parameters.{name}", error.reason) from None
        parameters[name] = (float(bounds[0]), float(bounds[1]))
    moments: dict[str, MomentSpec] = {}
    for name, spec in data["moments"].items():
        if name not in MOMENTS:
            raise ConfigError(source, f"moments.{name}", f"unknown moment; known: {', '.join(MOMENTS)}")
        if not isinstance(spec, dict) or set(spec) - {"target", "scale", "source"} or "target" not in spec \
                or "scale" not in spec:
            raise ConfigError(source, f"moments.{name}", "needs target and scale (and a source)")
        if not spec["scale"] > 0:
            raise ConfigError(source, f"moments.{name}.scale", "must be positive")
        moments[name] = MomentSpec(float(spec["target"]), float(spec["scale"]), str(spec.get("source", "")))
    if len(moments) < len(parameters):
        raise ConfigError(source, "moments", f"{len(moments)} moments cannot identify {len(parameters)} parameters")
    sizes = {key: data.get(key) for key in ("n_smes", "steps", "entropy", "design_points", "verify_replicates")}
    for key, value in sizes.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(source, key, "must be a positive integer")
    if (data.get("design_points") or 120) < 2 * _terms(len(parameters)):
        raise ConfigError(source, "design_points", f"at least {2 * _terms(len(parameters))} points are needed to fit "
                          f"a quadratic surface in {len(parameters)} parameters")
    recovery = data.get("recovery", {})
    for name, value in recovery.items():
        if name not in parameters:
            raise ConfigError(source, f"recovery.{name}", "is not an estimated parameter")
        low, high = parameters[name]
        if not (isinstance(value, (int, float)) and low <= value <= high):
            raise ConfigError(source, f"recovery.{name}", f"must be a number in [{low}, {high}]")
    if recovery and set(recovery) != set(parameters):
        missing = sorted(set(parameters) - set(recovery))
        raise ConfigError(source, "recovery", f"gives no value for {', '.join(missing)}")
    return EstimationSpec(source, str(base), parameters, moments,
                          **{k: v for k, v in sizes.items() if v is not None},
                          overrides=dict(data.get("overrides", {})),
                          recovery={k: float(v) for k, v in recovery.items()})


# -- the surrogate ----------------------------------------------------------------------

def _terms(k: int) -> int:
    return 1 + k + k * (k + 1) // 2


def quadratic_features(x: np.ndarray) -> np.ndarray:
    """1, x_i and x_i x_j (i <= j) of each row of ``x``."""
    x = np.atleast_2d(x)
    k = x.shape[1]
    pairs = [x[:, i] * x[:, j] for i in range(k) for j in range(i, k)]
    return np.column_stack([np.ones(len(x)), x, *pairs])


@dataclass
class Surrogate:
    """Quadratic response surfaces of every moment in the unit-scaled parameters."""

    coefficients: np.ndarray  # terms x moments
    r2: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> "Surrogate":
        features = quadratic_features(x)
        coefficients, *_ = np.linalg.lstsq(features, y, rcond=None)
        residual = y - features @ coefficients
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = 1.0 - (residual ** 2).sum(axis=0) / np.where(total > 0, total, np.nan)
        return cls(coefficients, r2)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return quadratic_features(x) @ self.coefficients

    def jacobian(self, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
        """d moments / d unit-scaled parameters at ``x`` (moments x parameters), central differences."""
        x = np.asarray(x, dtype=float)
        columns = []
        for i in range(x.size):
            up, down = x.copy(), x.copy()
            up[i] += step
            down[i] -= step
            columns.append((self.predict(up)[0] - self.predict(down)[0]) / (2 * step))
        return np.column_stack(columns)


# -- the stages -------------------------------------------------------------------------

def _experiment(spec: EstimationSpec, name: str, design: dict[str, Any], replicates: int,
                entropy: int) -> dict[str, Any]:
    outputs = sorted({column for moment in spec.moments for column in MOMENTS[moment][0]})
    return {
        "name": name,
        "base": spec.base_config,
        "replicates": replicates,
        "entropy": entropy,
        "outputs": outputs or ["smes_active"],
        "metrics": ["annual_exit_rate", "sme_count_ratio"],
        "overrides": {"simulation.n_smes": spec.n_smes, "simulation.steps": spec.steps, **spec.overrides},
        "design": design,
    }


def _run_stage(folder: Path, experiment: dict[str, Any], workers: int, progress: bool) -> pd.DataFrame:
    from .sweep import sweep

    resume = (folder / "manifest.json").exists()
    runs = sweep(experiment, workers=workers, out=folder, resume=resume, progress=progress)
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        raise RuntimeError(f"{len(failed)} runs failed in {folder}: {failed['error'].iloc[0]}")
    return runs


def stage_moments(folder: Path, runs: pd.DataFrame, spec: EstimationSpec) -> pd.DataFrame:
    """Each run's parameters and moments."""
    rows = []
    for _, run in runs.iterrows():
        late = _late(pd.read_parquet(folder / "timeseries" / f"{run['run_id']}.parquet"))
        rows.append({"run_id": run["run_id"], "seed": int(run["seed"]),
                     **{name: float(run[name]) for name in spec.parameters},
                     **{name: MOMENTS[name][1](run, late) for name in spec.moments}})
    return pd.DataFrame(rows)


def _unit(spec: EstimationSpec, values: np.ndarray) -> np.ndarray:
    bounds = np.array(list(spec.parameters.values()))
    return (values - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])


def _natural(spec: EstimationSpec, unit: np.ndarray) -> np.ndarray:
    bounds = np.array(list(spec.parameters.values()))
    return bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0])


@dataclass
class Estimate:
    """What :func:`estimate` found (also written to ``estimate.json``)."""

    parameters: dict[str, float]
    standard_errors: dict[str, float]
    moments: dict[str, dict[str, float]]  # name -> target, scale, model, model_sd, surrogate
    loss: float
    surrogate_loss: float
    surrogate_r2: dict[str, float]
    jacobian: list[list[float]]  # moments (over scale) x parameters (over range), at the estimate
    singular_values: list[float]
    rank: int
    condition_number: float
    folder: str


def identification(scaled_jacobian: np.ndarray, tolerance: float = 1e-3) -> tuple[np.ndarray, int, float]:
    """Singular values of the Jacobian (moments over their scales x parameters over their
    ranges), its numerical rank (singular values above ``tolerance`` times the largest) and
    its condition number (infinite when rank-deficient)."""
    singular = np.linalg.svd(np.asarray(scaled_jacobian, dtype=float), compute_uv=False)
    if singular.size == 0 or singular[0] <= 0:
        return singular, 0, math.inf
    rank = int(np.sum(singular > tolerance * singular[0]))
    columns = np.asarray(scaled_jacobian).shape[1]
    return singular, rank, float(singular[0] / singular[-1]) if rank == columns else math.inf


def parameter_errors(jacobian: np.ndarray, scale: np.ndarray, noise: np.ndarray, replicates: int,
                     spans: np.ndarray) -> np.ndarray:
    """Standard errors of the parameters (in their own units): the minimum-distance
    covariance ``(J' W J)^-1`` with ``W = Omega^-1``, ``Omega = diag(scale^2) + noise /
    replicates``, ``J`` the Jacobian in unit-scaled parameters, rescaled by the ranges
    ``spans``; infinite for every parameter when ``J`` is rank-deficient."""
    jacobian = np.asarray(jacobian, dtype=float)
    if identification(jacobian / scale[:, None])[1] < jacobian.shape[1]:
        return np.full(jacobian.shape[1], np.inf)
    weight = np.linalg.inv(np.diag(scale ** 2) + noise / max(replicates, 1))
    covariance = np.linalg.inv(jacobian.T @ weight @ jacobian)
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None)) * spans


def _loss(values: np.ndarray, targets: np.ndarray, scales: np.ndarray) -> float:
    return float((((values - targets) / scales) ** 2).sum())


def estimate(spec: EstimationSpec, out: str | Path, *, workers: int = 2, progress: bool = False,
             targets: dict[str, float] | None = None) -> Estimate:
    """Run (or resume) the estimation into ``out``; ``targets`` replace the real figures
    (the parameter-recovery check)."""
    from scipy.optimize import differential_evolution

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names, moment_names = list(spec.parameters), list(spec.moments)
    target = np.array([(targets or {}).get(m, spec.moments[m].target) for m in moment_names])
    scale = np.array([spec.moments[m].scale for m in moment_names])
    entropies = [int(s.generate_state(1, dtype=np.uint32)[0]) for s in np.random.SeedSequence(spec.entropy).spawn(3)]

    lhs = {"kind": "lhs", "samples": spec.design_points,
           "parameters": {n: {"range": list(b)} for n, b in spec.parameters.items()}}
    design = stage_moments(out / "design", _run_stage(out / "design", _experiment(spec, "estimation-design", lhs, 1,
                                                                                entropies[0]), workers, progress), spec)
    design.to_csv(out / "design.csv", index=False)
    x = _unit(spec, design[names].to_numpy())
    y = design[moment_names].to_numpy()
    surrogate = Surrogate.fit(x, y)

    def surrogate_loss(point: np.ndarray) -> float:
        return _loss(surrogate.predict(point)[0], target, scale)

    found = differential_evolution(surrogate_loss, [(0.0, 1.0)] * len(names), seed=entropies[2], tol=1e-10,
                                   polish=True)
    unit = np.clip(found.x, 0.0, 1.0)
    theta = _natural(spec, unit)

    point = {"kind": "grid", "parameters": {n: {"values": [float(v)]} for n, v in zip(names, theta)}}
    verify = stage_moments(out / "verify", _run_stage(
        out / "verify", _experiment(spec, "estimation-verify", point, spec.verify_replicates, entropies[1]),
        workers, progress), spec)
    verify.to_csv(out / "verify.csv", index=False)
    simulated = verify[moment_names].to_numpy()
    mean = simulated.mean(axis=0)
    noise = np.atleast_2d(np.cov(simulated, rowvar=False)) if len(simulated) > 1 else np.zeros((len(scale),) * 2)

    # identification and uncertainty, in moments over scale and parameters over range
    jac_unit = surrogate.jacobian(unit)
    scaled = jac_unit / scale[:, None]
    singular, rank, condition = identification(scaled)
    spans = np.array([hi - lo for lo, hi in spec.parameters.values()])
    errors = parameter_errors(jac_unit, scale, noise, len(simulated), spans)
    result = Estimate(
        parameters={n: float(v) for n, v in zip(names, theta)},
        standard_errors={n: float(e) for n, e in zip(names, errors)},
        moments={m: {"target": float(t), "scale": float(s), "model": float(v), "model_sd": float(math.sqrt(noise[i, i])),
                     "surrogate": float(p)}
                 for i, (m, t, s, v, p) in enumerate(zip(moment_names, target, scale, mean, surrogate.predict(unit)[0]))},
        loss=_loss(mean, target, scale),
        surrogate_loss=float(found.fun),
        surrogate_r2={m: float(r) for m, r in zip(moment_names, surrogate.r2)},
        jacobian=scaled.tolist(),
        singular_values=[float(s) for s in singular],
        rank=rank,
        condition_number=condition,
        folder=str(out),
    )
    (out / "estimate.json").write_text(dumps(asdict(result), indent=2) + "\n")
    return result


def recover(spec: EstimationSpec, truth: dict[str, float], out: str | Path, *, workers: int = 2,
            progress: bool = False) -> tuple[dict[str, float], Estimate]:
    """The parameter-recovery check: simulate ``verify_replicates`` runs at ``truth``, use
    their mean moments as the targets, estimate, and return the pseudo-data and the estimate."""
    out = Path(out)
    entropy = int(np.random.SeedSequence([spec.entropy, 7]).generate_state(1, dtype=np.uint32)[0])
    point = {"kind": "grid", "parameters": {n: {"values": [float(truth[n])]} for n in spec.parameters}}
    truth_runs = stage_moments(out / "truth", _run_stage(
        out / "truth", _experiment(spec, "estimation-truth", point, spec.verify_replicates, entropy), workers,
        progress), spec)
    pseudo = {m: float(truth_runs[m].mean()) for m in spec.moments}
    (out / "truth.json").write_text(json.dumps({"truth": truth, "pseudo_data": pseudo}, indent=2) + "\n")
    return pseudo, estimate(spec, out / "estimate", workers=workers, progress=progress, targets=pseudo)


def recovered(truth: dict[str, float], found: Estimate, spans: dict[str, tuple[float, float]],
              within: float = 2.0) -> dict[str, bool]:
    """Whether each parameter came back within ``within`` standard errors of the truth (and
    its standard error is finite)."""
    return {name: bool(np.isfinite(found.standard_errors[name])
                       and abs(found.parameters[name] - value) <= within * found.standard_errors[name])
            for name, value in truth.items()}


def write_report(out: str | Path, spec: EstimationSpec, found: Estimate,
                 truth: dict[str, float] | None = None) -> Path:
    """``report.md`` and ``identification.png`` in ``out``: the estimate with its
    uncertainty, the fit, and the identification evidence (and the recovery, if any)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    names, moment_names = list(spec.parameters), list(spec.moments)
    jacobian = np.array(found.jacobian)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names), 1.2 + 0.5 * len(moment_names)))
    limit = float(np.max(np.abs(jacobian))) or 1.0
    image = ax.imshow(jacobian, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(names)), [n.split(".")[-1] for n in names], rotation=30, ha="right")
    ax.set_yticks(range(len(moment_names)), moment_names)
    for (i, j), value in np.ndenumerate(jacobian):
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="d(moment / scale) / d(parameter / range)")
    ax.set_title(f"rank {found.rank} of {len(names)}, condition number {found.condition_number:.3g}")
    fig.tight_layout()
    fig.savefig(out / "identification.png", dpi=110)
    plt.close(fig)

    lines = [f"# Estimation: {Path(spec.source).name}", "",
             f"{spec.design_points} design runs and {spec.verify_replicates} verification runs of "
             f"{spec.n_smes:,} SMEs over {spec.steps} months (base config `{Path(spec.base_config).name}`, entropy "
             f"{spec.entropy}). Loss at the estimate, simulated: **{found.loss:.3g}** (surrogate: "
             f"{found.surrogate_loss:.3g}).", "",
             "| parameter | estimate | standard error | 95% interval | range searched |", "|---|---|---|---|---|"]
    for name in names:
        value, error = found.parameters[name], found.standard_errors[name]
        interval = f"{value - 1.96 * error:.4g} - {value + 1.96 * error:.4g}" if np.isfinite(error) else "not identified"
        low, high = spec.parameters[name]
        lines.append(f"| `{name}` | {value:.4g} | {error:.3g} | {interval} | {low:g} - {high:g} |")
    lines += ["", "| moment | target | model (sd over replicates) | surrogate | surrogate R² | loss term | source |",
              "|---|---|---|---|---|---|---|"]
    for name in moment_names:
        m = found.moments[name]
        term = ((m["model"] - m["target"]) / m["scale"]) ** 2
        lines.append(f"| {name} | {m['target']:.4g} (scale {m['scale']:.2g}) | {m['model']:.4g} ({m['model_sd']:.2g}) | "
                     f"{m['surrogate']:.4g} | {found.surrogate_r2[name]:.2f} | {term:.2f} | "
                     f"{spec.moments[name].source} |")
    lines += ["", "## Identification", "",
              f"Singular values of the scaled Jacobian: {', '.join(f'{s:.3g}' for s in found.singular_values)}; "
              f"rank {found.rank} of {len(names)}; condition number {found.condition_number:.3g}.", "",
              "![identification](identification.png)", ""]
    if truth:
        ok = recovered(truth, found, spec.parameters)
        lines += ["## Parameter recovery", "",
                  "Moments simulated at the known values below replaced the real figures.", "",
                  "| parameter | truth | estimate | standard error | within 2 s.e. |", "|---|---|---|---|---|"]
        for name in names:
            lines.append(f"| `{name}` | {truth[name]:.4g} | {found.parameters[name]:.4g} | "
                         f"{found.standard_errors[name]:.3g} | {'yes' if ok[name] else '**no**'} |")
        lines.append("")
    (out / "report.md").write_text("\n".join(lines))
    return out / "report.md"
