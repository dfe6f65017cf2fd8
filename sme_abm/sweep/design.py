"""Designs (which parameter values to run) and replicate seeds.

Sampled designs use SALib: ``SALib.sample.latin`` (Latin hypercube),
``SALib.sample.sobol`` (Saltelli/Sobol' sequences) and ``SALib.sample.morris``
(elementary-effects trajectories); ``random`` draws independent uniforms with
numpy. Sensitivity indices come from ``SALib.analyze.sobol`` and
``SALib.analyze.morris``.

Replicate seeds: ``numpy.random.SeedSequence(entropy).spawn(replicates)``;
child ``r`` becomes the integer seed ``int(child.generate_state(1, numpy.uint64)[0] >> 1)``
(63 bits, the range the model's config accepts). Replicate ``r`` of every
design point uses the same seed (common random numbers), so differences
between points are due to the parameters, not to the draw.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .experiment import STUDY_KINDS, Experiment, SweptParameter


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
        run_id: Zero-padded index ``point * replicates + replicate``.
        point: Index of the design point.
        replicate: Index of the replicate.
        seed: The model's seed.
        values: Swept key -> value.
    """

    run_id: str
    point: int
    replicate: int
    seed: int
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "point": self.point, "replicate": self.replicate, "seed": self.seed, "values": self.values}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        return cls(data["run_id"], int(data["point"]), int(data["replicate"]), int(data["seed"]), dict(data["values"]))


def new_entropy() -> int:
    """Fresh root entropy (128 bits from the OS) for an experiment that gives none."""
    return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]


def replicate_seeds(entropy: int, replicates: int) -> list[int]:
    """Independent model seeds for ``replicates`` replicates, from one root entropy."""
    children = np.random.SeedSequence(entropy).spawn(replicates)
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children]


def salib_problem(parameters: list[SweptParameter]) -> dict[str, Any]:
    """The SALib problem dict of sampled parameters."""
    return {
        "num_vars": len(parameters),
        "names": [p.key for p in parameters],
        "bounds": [list(p.bounds) for p in parameters],  # type: ignore[arg-type]
    }


def sample_matrix(kind: str, problem: dict[str, Any], samples: int, seed: int, *, levels: int = 4,
                  second_order: bool = False) -> np.ndarray:
    """Unit-free design matrix (rows = points) of a sampled design, via SALib or numpy."""
    if kind == "random":
        rng = np.random.default_rng(seed)
        low, high = np.array(problem["bounds"], dtype=float).T
        return low + (high - low) * rng.random((samples, problem["num_vars"]))
    if kind == "lhs":
        from SALib.sample import latin

        return latin.sample(problem, samples, seed=seed)
    if kind == "sobol":
        from SALib.sample import sobol

        return sobol.sample(problem, samples, calc_second_order=second_order, seed=seed)
    if kind == "morris":
        from SALib.sample import morris

        return morris.sample(problem, samples, num_levels=levels, seed=seed)
    raise ValueError(f"unknown design kind {kind!r}")


def design_size(experiment: Experiment) -> int:
    """Number of runs of the experiment (points x replicates), computed without building the design."""
    design, params = experiment.spec.design, experiment.parameters
    if design.kind in STUDY_KINDS:
        return len(design_points(experiment)) * experiment.spec.replicates
    samples, k = design.samples or 1, len(params)
    points = {"grid": math.prod(len(p.values or ()) for p in params), "random": samples, "lhs": samples,
              "sobol": samples * (2 * k + 2 if design.second_order else k + 2), "morris": samples * (k + 1)}[design.kind]
    return points * experiment.spec.replicates


def design_points(experiment: Experiment) -> list[dict[str, Any]]:
    """Every design point of the experiment, as swept key -> value."""
    design = experiment.spec.design
    params = experiment.parameters
    if design.kind in STUDY_KINDS:
        from .studies import study_plan

        return study_plan(design.model_dump(mode="json"), experiment.base_config)["points"]
    if design.kind == "grid":
        keys = [p.key for p in params]
        return [dict(zip(keys, combo)) for combo in itertools.product(*(p.values for p in params))]  # type: ignore[arg-type]
    matrix = sample_matrix(design.kind, salib_problem(params), design.samples or 1, design.seed,
                           levels=design.levels, second_order=design.second_order)
    points = []
    for row in matrix:
        point = {}
        for param, value in zip(params, row):
            point[param.key] = int(round(float(value))) if param.integer else float(value)
        points.append(point)
    return points


def plan_runs(points: list[dict[str, Any]], seeds: list[int]) -> list[RunSpec]:
    """All runs: every design point times every replicate, with deterministic ids."""
    replicates = len(seeds)
    width = max(6, len(str(len(points) * replicates - 1)))
    runs = []
    for point_index, values in enumerate(points):
        for replicate, seed in enumerate(seeds):
            index = point_index * replicates + replicate
            runs.append(RunSpec(f"{index:0{width}d}", point_index, replicate, seed, dict(values)))
    return runs


def analyze_sensitivity(kind: str, problem: dict[str, Any], inputs: np.ndarray, outputs: np.ndarray, *,
                        levels: int = 4, second_order: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """Sobol or Morris indices of one output over a design, computed with SALib.

    Args:
        kind: ``"sobol"`` or ``"morris"``.
        problem: The SALib problem (see :func:`salib_problem`).
        inputs: The design matrix (rows = points), as sampled.
        outputs: One value per design point (average replicates first).
        levels: Morris levels used to sample.
        second_order: Whether the Sobol design was sampled with second-order terms.
        seed: Seed of the bootstrap confidence intervals.

    Returns:
        For sobol: ``S1``, ``S1_conf``, ``ST``, ``ST_conf``; for morris: ``mu``, ``mu_star``,
        ``mu_star_conf``, ``sigma``.
    """
    outputs = np.asarray(outputs, dtype=float)
    if kind == "sobol":
        from SALib.analyze import sobol

        found = sobol.analyze(problem, outputs, calc_second_order=second_order, seed=seed)
        return {name: np.asarray(found[name]) for name in ("S1", "S1_conf", "ST", "ST_conf")}
    if kind == "morris":
        from SALib.analyze import morris

        found = morris.analyze(problem, np.asarray(inputs, dtype=float), outputs, num_levels=levels, seed=seed)
        return {name: np.asarray(found[name], dtype=float) for name in ("mu", "mu_star", "mu_star_conf", "sigma")}
    raise ValueError(f"no sensitivity analysis for a {kind} design")
