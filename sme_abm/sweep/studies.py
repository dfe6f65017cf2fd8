"""Policy studies over the levers' on/off switches: designs, per-run window metrics and analysis.

Study designs are experiment files (``[design] kind = ...``); this module turns them into
design points (each point sets ``levers.<key>.enabled`` for all 25 levers) and analyses the
finished sweep. Every contrast is *paired*: the runs of replicate ``r`` at every design point
share the seed (and, with ``[start]``, the starting state), so a lever's effect in replicate
``r`` is the difference of two runs that differ only in the policy (common random numbers).

Kinds:

* ``knockout``: the full package (every studied lever on) and, per lever, the package with
  that lever off; the lever's effect is full minus knockout.
* ``knockin``: no policy (every studied lever off) and, per lever, only that lever on; the
  effect is knock-in minus none.
* ``shapley``: ``permutations`` sampled orderings of the levers (with ``antithetic``, each
  followed by its reverse); the points are the coalitions along each ordering (its prefixes,
  deduplicated). Lever ``i``'s Shapley value is its mean marginal contribution
  ``v(prefix + i) - v(prefix)`` over the orderings; the values sum to ``v(full) - v(none)``
  exactly in every ordering and replicate (efficiency).
* ``interactions``: for each pair ``(i, j)`` the 2 x 2 of the two levers with the others at the
  ``reference`` (``full``: on; ``none``: off); the interaction is
  ``v(i, j) - v(i) - v(j) + v(none of the two)`` (positive: complements, negative: substitutes).

Levers not studied (``levers = [...]`` a subset) keep the base config's switch at every point.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..levers import load_registry

if TYPE_CHECKING:  # pragma: no cover
    from .experiment import DesignSpec, SweptParameter

CHANNELS_FILE = Path(__file__).with_name("channels.toml")

HEADLINE = {
    "output": ("study.output_mean", "output (mean monthly sales), CNY m"),
    "employment": ("study.employment_mean", "employment (mean), workers"),
    "smes": ("study.smes_mean", "SMEs (mean count)"),
    "credit_rationed": ("study.credit_rationed_total", "credit rationed (total), CNY m"),
    "net_fiscal_cost": ("study.net_fiscal_cost", "net fiscal cost (primary deficit + interest, total), CNY m"),
}
"""The headline outcomes of every study: name -> (runs-table column, label)."""


def enabled_key(lever: str) -> str:
    return f"levers.{lever}.enabled"


@lru_cache(maxsize=1)
def default_channels() -> dict[str, str]:
    """The shipped lever -> own-channel column map (``sme_abm/sweep/channels.toml``)."""
    return dict(tomllib.loads(CHANNELS_FILE.read_text())["channels"])


def channels_for(design: dict[str, Any] | "DesignSpec") -> dict[str, str]:
    given = design.get("channels") if isinstance(design, dict) else design.channels
    return {**default_channels(), **(given or {})}


def _lever_key(name: str | int, origin: str, where: str) -> str:
    registry = load_registry()
    try:
        if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
            if not 1 <= int(name) <= len(registry.keys):
                raise KeyError(name)
            return registry.by_provision(int(name)).key
        return registry.by_key(name).key
    except (KeyError, ValueError, IndexError):
        raise ConfigError(origin, where, f"{name!r} is not a lever (a provision 1-25 or a key like p13_financing_guarantee)") from None


def studied_levers(design: dict[str, Any] | "DesignSpec", origin: str = "<design>") -> list[str]:
    """The lever keys a study varies, in registry order (default all 25)."""
    names = design.get("levers") if isinstance(design, dict) else design.levers
    registry = load_registry()
    if not names:
        return registry.keys
    keys = {_lever_key(name, origin, "design.levers") for name in names}
    return [key for key in registry.keys if key in keys]


def _pairs(design: dict[str, Any] | "DesignSpec", origin: str = "<design>") -> list[tuple[str, str]]:
    pairs = design.get("pairs") if isinstance(design, dict) else design.pairs
    out = []
    for first, second in pairs or []:
        a, b = _lever_key(first, origin, "design.pairs"), _lever_key(second, origin, "design.pairs")
        if a == b:
            raise ConfigError(origin, "design.pairs", f"pair ({first}, {second}) names one lever twice")
        out.append((a, b))
    return out


def check_study(design: "DesignSpec", origin: str, overrides: dict[str, Any]) -> list["SweptParameter"]:
    """Validate a study design; its swept parameters are the 25 levers' ``enabled`` switches."""
    from .experiment import SweptParameter

    studied_levers(design, origin)
    _pairs(design, origin)
    registry = load_registry()
    for lever, column in design.channels.items():
        _lever_key(lever, origin, f"design.channels.{lever}")
        if not isinstance(column, str) or not column:
            raise ConfigError(origin, f"design.channels.{lever}", "must name a time-series column")
    for key in registry.keys:
        if enabled_key(key) in overrides:
            raise ConfigError(origin, f"overrides.{enabled_key(key)}", f"a {design.kind} study sets every lever's "
                              "enabled switch itself; leave it out of [overrides]")
    return [SweptParameter(key=enabled_key(key), values=(False, True), bounds=None, integer=False) for key in registry.keys]


def sample_permutations(players: int, permutations: int, seed: int, antithetic: bool = True) -> list[list[int]]:
    """``permutations`` orderings of ``range(players)`` drawn with ``numpy.random.default_rng(seed)``;
    with ``antithetic`` every odd one is the reverse of the one before."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = []
    while len(out) < permutations:
        order = [int(i) for i in rng.permutation(players)]
        out.append(order)
        if antithetic and len(out) < permutations:
            out.append(order[::-1])
    return out


def study_plan(design: dict[str, Any], base_config: dict[str, Any]) -> dict[str, Any]:
    """The design points of a study and how they pair up, as plain data (kept in the manifest).

    Returns:
        ``kind``, ``levers`` (studied keys), ``labels`` (one per point), ``points`` (each the
        25 ``levers.<key>.enabled`` values), and per kind: ``contrasts`` (knockout/knockin:
        lever -> [point with the lever on, point with it off]), ``chains`` (shapley: per
        ordering, the point of each prefix, empty first), ``orderings`` (shapley),
        ``pairs`` (interactions: [i, j, point both on, i on only, j on only, both off]).
    """
    kind = design["kind"]
    registry = load_registry()
    players = studied_levers(design)
    base_on = {key: bool(base_config["levers"][key]["enabled"]) for key in registry.keys}
    points: list[dict[str, bool]] = []
    labels: list[str] = []
    index: dict[frozenset[str], int] = {}

    def point(on: Iterable[str], label: str | None = None) -> int:
        coalition = frozenset(on)
        if coalition not in index:
            values = {enabled_key(key): (key in coalition) if key in players else base_on[key] for key in registry.keys}
            index[coalition] = len(points)
            points.append(values)
            labels.append(label if label is not None else _coalition_label(coalition, players))
        return index[coalition]

    plan: dict[str, Any] = {"kind": kind, "levers": players}
    if kind == "knockout":
        full = point(players, "full package")
        plan["contrasts"] = {key: [full, point(set(players) - {key}, f"full without {key}")] for key in players}
    elif kind == "knockin":
        none = point((), "no policy")
        plan["contrasts"] = {key: [point({key}, f"only {key}"), none] for key in players}
    elif kind == "shapley":
        orderings = sample_permutations(len(players), int(design["permutations"]), int(design["seed"]),
                                        bool(design.get("antithetic", True)))
        point((), "no policy")
        point(players, "full package")
        chains = []
        for order in orderings:
            prefix: list[str] = []
            chain = [point(())]
            for position in order:
                prefix.append(players[position])
                chain.append(point(prefix))
            chains.append(chain)
        plan["orderings"] = [[players[i] for i in order] for order in orderings]
        plan["chains"] = chains
    elif kind == "interactions":
        reference = design.get("reference") or "full"
        plan["reference"] = reference
        pairs = []
        for a, b in _pairs(design):
            others = (set(players) if reference == "full" else set()) - {a, b}
            pairs.append([a, b, point(others | {a, b}), point(others | {a}), point(others | {b}), point(others)])
        plan["pairs"] = pairs
    else:
        raise ValueError(f"{kind!r} is not a study design")
    plan["labels"] = labels
    plan["points"] = points
    return plan


def _coalition_label(coalition: frozenset[str], players: list[str]) -> str:
    if len(coalition) == len(players):
        return "full package"
    if not coalition:
        return "no policy"
    if len(coalition) > len(players) / 2:
        return "full without " + "+".join(key[:3] for key in players if key not in coalition)
    return "only " + "+".join(key[:3] for key in players if key in coalition)


def study_size(design: "DesignSpec") -> int:
    """Design points of a study (computed by building its plan: cheap, no runs)."""
    from ..config import load_config

    return len(study_plan(design.model_dump(mode="json"), load_config(None).to_dict())["points"])


# -- per-run window metrics (computed in the worker) -------------------------------------
def _column(ts: pd.DataFrame, name: str) -> np.ndarray:
    return ts[name].to_numpy(dtype=float) if name in ts else np.full(len(ts), np.nan)


def window_metrics(ts: pd.DataFrame, channels: dict[str, str] | None = None) -> dict[str, Any]:
    """A run's study metrics over the months in ``ts`` (the evaluated months).

    Money in CNY m (flows are monthly), employment in workers; ``job_years`` is the sum of
    monthly employment / 12; ``net_fiscal_cost`` the sum of the primary deficit plus bond
    interest (the government's total deficit before bond finance) before the fiscal closure
    answers it: less the other spending the debt-stabilising rule adds to the plan
    (``closure_spending``) and plus the budget-neutral levy. Its difference against the
    counterfactual run is a lever's dynamically scored net cost: the lever's spending and
    revenue forgone, less the taxes the economy it changes pays back, and not the financing
    the closure then provides (as a budget office scores a measure apart from how it is
    financed). Scored after the closure, a lever that raised output lowered debt to output,
    and the rule's extra spending counted against it: fair competition's net saving in the
    knockout of 2026-12-06 (commit 53f1886) was 2,310 CNY m while the rule spent about
    4,080 more with it than without. Runs recorded without these series (deficit-financed,
    or before they existed) read them as 0.
    """
    if ts.empty:
        return {"months": 0}
    employment, output = _column(ts, "employment"), _column(ts, "output")
    deficit, interest = _column(ts, "primary_deficit"), _column(ts, "bond_interest")
    closure = np.nan_to_num(_column(ts, "closure_spending")) - np.nan_to_num(_column(ts, "budget_neutral_levy"))
    # rationing per applicant episode: requests refused over requests of the episodes that ended
    rationed, demanded = _column(ts, "credit_rationed"), _column(ts, "credit_demanded_episodes")
    metrics: dict[str, Any] = {
        "months": int(len(ts)),
        "first_month": int(ts["step"].iloc[0]),
        "output_mean": float(np.mean(output)),
        "output_total": float(np.sum(output)),
        "real_output_mean": float(np.mean(_column(ts, "real_output"))),
        "employment_mean": float(np.mean(employment)),
        "job_years": float(np.sum(employment) / 12.0),
        "smes_mean": float(np.mean(_column(ts, "smes_active"))),
        "smes_end": float(_column(ts, "smes_active")[-1]),
        "credit_rationed_total": float(np.sum(rationed)),
        "credit_rationed_share": float(np.sum(rationed) / max(float(np.sum(demanded)), 1e-12)),
        "fiscal_cost_gross": float(np.sum(_column(ts, "fiscal_cost_total"))),
        "primary_deficit_total": float(np.sum(deficit)),
        "interest_total": float(np.sum(interest)),
        "closure_total": float(np.sum(closure)),
        "net_fiscal_cost": float(np.sum(deficit) + np.sum(interest) - np.sum(closure)),
        "government_debt_end": float(_column(ts, "government_debt")[-1]),
    }
    channel = {}
    for lever, column in (channels or {}).items():
        values = _column(ts, column)
        channel[lever] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    if channel:
        metrics["channel"] = channel
    return metrics


def reseed(model: Any, seed: int) -> None:
    """Give a model loaded from a shared state fresh random streams from ``seed`` (numpy's
    ``default_rng(seed)`` state into its generator, and Python's ``random.seed(seed)``)."""
    fresh = np.random.default_rng(seed).bit_generator
    if type(model.rng.bit_generator) is not type(fresh):  # pragma: no cover - Mesa always uses PCG64
        raise TypeError(f"cannot reseed a {type(model.rng.bit_generator).__name__} generator")
    model.rng.bit_generator.state = fresh.state
    model.random.seed(seed)


def state_digest(path: str | Path) -> str:
    """SHA-256 over a saved state folder: every file's name and bytes, in name order."""
    folder = Path(path)
    total = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise FileNotFoundError(f"{folder} holds no saved state")
    for file in files:
        total.update(file.name.encode() + b"\0")
        total.update(hashlib.sha256(file.read_bytes()).digest())
    return total.hexdigest()


# -- analysis ----------------------------------------------------------------------------
def t_quantile(q: float, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(q, df)) if df > 0 else float("nan")


def mde(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimal detectable effect of a paired mean difference: the true effect a two-sided test at
    level ``alpha`` detects with probability ``power`` given ``n`` pairs whose differences have
    standard deviation ``sd``: ``(t(1 - alpha/2, n-1) + t(power, n-1)) * sd / sqrt(n)``."""
    if n < 2 or not math.isfinite(sd):
        return float("nan")
    return (t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def seeds_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Replicates for an effect of this size to be detected (normal approximation, at least 2)."""
    from scipy import stats

    if not math.isfinite(effect) or not math.isfinite(sd) or effect == 0:
        return float("inf")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return max(2.0, math.ceil((z * sd / abs(effect)) ** 2))


def paired_summary(diffs: np.ndarray, alpha: float = 0.05, power: float = 0.8) -> dict[str, float]:
    """Mean of paired differences with its ``1 - alpha`` CI (t), sd, n and MDE; ``distinguishable``
    is 1 when the CI excludes 0."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    half = t_quantile(1 - alpha / 2, n - 1) * sd / math.sqrt(n) if n > 1 else float("nan")
    distinguishable = bool(n > 1 and math.isfinite(half) and abs(mean) > half)
    return {"mean": mean, "ci": half, "low": mean - half, "high": mean + half, "sd": sd, "n": n,
            "mde": mde(sd, n, alpha, power), "distinguishable": distinguishable,
            "seeds_needed": seeds_needed(mean, sd, alpha, power)}


def value_matrix(table: pd.DataFrame, column: str, points: int, replicates: int) -> np.ndarray:
    """``column`` of the runs table as a points x replicates array (NaN where a run is missing or failed)."""
    out = np.full((points, replicates), np.nan)
    ok = table[table["status"] == "ok"] if "status" in table else table
    if column in ok:
        out[ok["point"].to_numpy(int), ok["replicate"].to_numpy(int)] = ok[column].to_numpy(float)
    return out


def contrast_effects(values: np.ndarray, contrasts: dict[str, list[int]], **options: float) -> pd.DataFrame:
    """Per lever: paired differences ``values[on] - values[off]`` across replicates, summarised,
    with the counterfactual's mean level and the effect and CI in % of it (``mean_pct``, ``ci_pct``)."""
    rows = []
    for lever, (on, off) in contrasts.items():
        found = paired_summary(values[on] - values[off], **options)
        level = float(np.nanmean(values[off])) if np.isfinite(values[off]).any() else float("nan")
        relative = 100.0 / abs(level) if level and math.isfinite(level) else float("nan")
        rows.append({"lever": lever, **found, "counterfactual": level, "mean_pct": found["mean"] * relative,
                     "ci_pct": found["ci"] * relative})
    return pd.DataFrame(rows)


def shapley_values(values: np.ndarray, chains: list[list[int]], orderings: list[list[str]],
                   players: list[str]) -> pd.DataFrame:
    """Shapley values of ``players`` from sampled orderings with common random numbers.

    Args:
        values: points x replicates (the outcome of each coalition in each replicate).
        chains: Per ordering, the point of each prefix (empty coalition first).
        orderings: Per ordering, the players in the order they join.
        players: The players.

    Returns:
        One row per player: ``phi`` (mean marginal contribution over orderings and replicates),
        ``se_permutation`` (sampling error over orderings: sd across orderings of the
        replicate-mean contribution / sqrt(orderings); antithetic pairs are averaged first
        and count as one draw), ``se_seed`` (sd across replicates of the ordering-mean
        contribution / sqrt(replicates)), ``se`` (both combined, sqrt of the sum of squares),
        ``ci`` (1.96 se), and a last row ``total`` = v(full) - v(none), whose ``phi`` equals the
        sum of the players' (efficiency).
    """
    position = {player: i for i, player in enumerate(players)}
    m, reps = len(chains), values.shape[1]
    contributions = np.zeros((len(players), m, reps))
    for k, (chain, order) in enumerate(zip(chains, orderings)):
        steps = values[chain[1:]] - values[chain[:-1]]
        for player, step in zip(order, steps):
            contributions[position[player], k] = step
    by_ordering = np.nanmean(contributions, axis=2)  # players x orderings
    antithetic = m % 2 == 0 and m > 1 and all(orderings[i] == orderings[i + 1][::-1] for i in range(0, m, 2))
    draws = 0.5 * (by_ordering[:, 0::2] + by_ordering[:, 1::2]) if antithetic else by_ordering
    by_replicate = np.nanmean(contributions, axis=1)  # players x replicates
    phi = np.nanmean(by_ordering, axis=1)
    se_perm = draws.std(axis=1, ddof=1) / math.sqrt(draws.shape[1]) if draws.shape[1] > 1 else np.full(len(players), np.nan)
    se_seed = by_replicate.std(axis=1, ddof=1) / math.sqrt(reps) if reps > 1 else np.full(len(players), np.nan)
    se = np.sqrt(np.nan_to_num(se_perm) ** 2 + np.nan_to_num(se_seed) ** 2)
    frame = pd.DataFrame({"lever": players, "phi": phi, "se_permutation": se_perm, "se_seed": se_seed,
                          "se": se, "ci": 1.96 * se})
    first, last = chains[0][0], chains[0][-1]
    total = values[last] - values[first]
    total_se = float(np.nanstd(total, ddof=1) / math.sqrt(reps)) if reps > 1 else float("nan")
    frame.loc[len(frame)] = {"lever": "total", "phi": float(np.nanmean(total)), "se_permutation": 0.0,
                             "se_seed": total_se, "se": total_se, "ci": 1.96 * total_se}
    return frame


def interaction_effects(values: np.ndarray, pairs: list[list[Any]], **options: float) -> pd.DataFrame:
    """Per pair: ``v(both on) - v(i only) - v(j only) + v(both off)``, paired by replicate."""
    rows = []
    for a, b, both, only_a, only_b, neither in pairs:
        diff = values[both] - values[only_a] - values[only_b] + values[neither]
        rows.append({"pair": f"{a} x {b}", "first": a, "second": b, **paired_summary(diff, **options)})
    return pd.DataFrame(rows)


def ratio_summary(numerator: np.ndarray, denominator: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """Ratio of means ``mean(num) / mean(den)`` of paired per-replicate differences, with a
    delta-method ``1 - alpha`` CI; NaN (undefined) when the denominator's CI includes 0."""
    num, den = np.asarray(numerator, float), np.asarray(denominator, float)
    keep = np.isfinite(num) & np.isfinite(den)
    num, den = num[keep], den[keep]
    n = int(num.size)
    if n == 0:
        return {"ratio": float("nan"), "ci": float("nan"), "defined": False}
    mn, md = float(num.mean()), float(den.mean())
    if md == 0:
        return {"ratio": float("nan"), "ci": float("nan"), "defined": False}
    ratio = mn / md
    if n < 2:
        return {"ratio": ratio, "ci": float("nan"), "defined": True}
    cov = np.cov(num, den, ddof=1)
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio ** 2 * cov[1, 1]) / (n * md ** 2)
    t = t_quantile(1 - alpha / 2, n - 1)
    den_half = t * math.sqrt(cov[1, 1] / n)
    defined = abs(md) > den_half
    return {"ratio": ratio, "ci": t * math.sqrt(max(var, 0.0)), "defined": bool(defined)}


def cost_effectiveness(job_years: np.ndarray, output: np.ndarray, net_cost: np.ndarray) -> dict[str, float]:
    """Job-years and output (CNY m) per CNY m of net fiscal cost, from paired per-replicate
    differences (policy on minus off) of job-years, total output and net fiscal cost."""
    jobs, out = ratio_summary(job_years, net_cost), ratio_summary(output, net_cost)
    cost = paired_summary(net_cost)
    return {"net_cost": cost["mean"], "net_cost_ci": cost["ci"],
            "job_years": float(np.nanmean(job_years)), "output": float(np.nanmean(output)),
            "job_years_per_cny_m": jobs["ratio"], "job_years_per_cny_m_ci": jobs["ci"],
            "output_per_cny_m": out["ratio"], "output_per_cny_m_ci": out["ci"],
            "cost_distinguishable": jobs["defined"]}
