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

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

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


class _IndexedPoints(Sequence[dict[str, Any]]):
    """Design points made from their index when asked for (a slice gives a list)."""

    def _point(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._point(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._point(index)


class GridPoints(_IndexedPoints):
    """The points of a grid design, decoded from their index (the order of
    ``itertools.product``: the last parameter varies fastest), never held as a list."""

    def __init__(self, keys: list[str], values: list[tuple[Any, ...]]) -> None:
        self.keys, self.values = list(keys), [tuple(v) for v in values]
        self._size = math.prod(len(v) for v in self.values)

    def __len__(self) -> int:
        return self._size

    def _point(self, index: int) -> dict[str, Any]:
        point: dict[str, Any] = {}
        for key, values in zip(reversed(self.keys), reversed(self.values)):
            index, position = divmod(index, len(values))
            point[key] = values[position]
        return {key: point[key] for key in self.keys}


class MatrixPoints(_IndexedPoints):
    """The points of a sampled design: one row of the design matrix each (8 bytes per
    parameter and point), turned into a dict only when asked for."""

    def __init__(self, keys: list[str], integer: list[bool], matrix: np.ndarray) -> None:
        self.keys, self.integer, self.matrix = list(keys), list(integer), np.asarray(matrix, dtype=float)

    def __len__(self) -> int:
        return len(self.matrix)

    def _point(self, index: int) -> dict[str, Any]:
        row = self.matrix[index]
        return {key: int(round(float(value))) if integer else float(value)
                for key, integer, value in zip(self.keys, self.integer, row)}


def design_points(experiment: Experiment) -> Sequence[dict[str, Any]]:
    """Every design point of the experiment, as swept key -> value (a lazy sequence: a grid's
    points are decoded from their index; a sampled design keeps only its matrix)."""
    design = experiment.spec.design
    params = experiment.parameters
    if design.kind in STUDY_KINDS:
        from .studies import study_plan

        return study_plan(design.model_dump(mode="json"), experiment.base_config)["points"]
    keys = [p.key for p in params]
    if design.kind == "grid":
        return GridPoints(keys, [p.values for p in params])  # type: ignore[misc]
    matrix = sample_matrix(design.kind, salib_problem(params), design.samples or 1, design.seed,
                           levels=design.levels, second_order=design.second_order)
    return MatrixPoints(keys, [p.integer for p in params], matrix)


class RunPlan(Sequence[RunSpec]):
    """All runs of a sweep, every design point times every replicate, with deterministic ids.

    Run ``i`` is replicate ``i % replicates`` of point ``i // replicates``; a run is built
    only when it is asked for, so a plan of any size takes the memory of its points
    (see :func:`design_points`) and its replicate seeds.
    """

    def __init__(self, points: Sequence[dict[str, Any]], seeds: list[int]) -> None:
        self.points, self.seeds = points, list(seeds)
        self._size = len(points) * len(self.seeds)
        self.width = max(6, len(str(self._size - 1)))

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> RunSpec: ...
    @overload
    def __getitem__(self, index: slice) -> list[RunSpec]: ...
    def __getitem__(self, index: int | slice) -> RunSpec | list[RunSpec]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(index)
        point, replicate = divmod(index, len(self.seeds))
        return RunSpec(f"{index:0{self.width}d}", point, replicate, self.seeds[replicate], dict(self.points[point]))

    def __iter__(self) -> Iterator[RunSpec]:
        for index in range(self._size):
            yield self[index]


def plan_runs(points: Sequence[dict[str, Any]], seeds: list[int]) -> RunPlan:
    """All runs: every design point times every replicate, with deterministic ids (lazy)."""
    return RunPlan(points, seeds)


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
