"""Parameter sweeps: experiment files, designs, local or Dask execution, results and reproduction.

Usage::

    from sme_abm.sweep import sweep, reproduce
    runs = sweep("configs/experiments/smoke.toml", workers=2)
    verdicts = reproduce("results/sweeps/smoke", runs=3)

See ``docs/sweeps.md``.
"""

from .core import frames_identical, reproduce, sweep, sweep_failed
from .design import analyze_sensitivity, replicate_seeds, salib_problem, sample_matrix
from .experiment import Experiment, load_experiment
from .store import SweepLockedError

__all__ = [
    "Experiment",
    "SweepLockedError",
    "analyze_sensitivity",
    "frames_identical",
    "load_experiment",
    "replicate_seeds",
    "reproduce",
    "salib_problem",
    "sample_matrix",
    "sweep",
    "sweep_failed",
]
