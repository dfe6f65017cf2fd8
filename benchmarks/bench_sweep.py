"""Benchmark of the sweep machinery (see docs/sweeps.md, "Speed").

Measures, on one 40-run grid experiment (5 x 4 points x 2 replicates):

1. a plain in-process loop over the same runs (model only, nothing written),
2. ``sweep(..., workers=1)`` (process pool, per-run Parquet/JSON files, runs.parquet, figures, report),
3. ``sweep(..., workers=2)``.

Each is repeated ``--repeats`` times and the fastest is kept (the machine is shared).

Usage: python benchmarks/bench_sweep.py [--smes 10000] [--steps 24] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from sme_abm.sweep import load_experiment, sweep
from sme_abm.sweep import report as report_module
from sme_abm.sweep.core import _new_manifest
from sme_abm.sweep.design import RunSpec
from sme_abm.sweep.executor import simulate

ROOT = Path(__file__).resolve().parent.parent


def experiment_dict(smes: int, steps: int) -> dict:
    return {
        "name": "bench",
        "base": str(ROOT / "configs" / "baseline.toml"),
        "replicates": 2,
        "entropy": 4040,
        "overrides": {"simulation.n_smes": smes, "simulation.steps": steps},
        "design": {"kind": "grid", "parameters": {
            "levers.p13_financing_guarantee.fee_cap": {"values": [0.0, 0.005, 0.01, 0.02, 0.03]},
            "levers.p13_financing_guarantee.bank_share": {"values": [0.1, 0.2, 0.3, 0.4]},
        }},
    }


def plain_loop(experiment) -> float:
    manifest = _new_manifest(experiment)
    clock = time.perf_counter()
    for data in manifest["runs"]:
        spec = RunSpec.from_dict(data)
        simulate(manifest["base_config"], spec.values, spec.seed)
    return time.perf_counter() - clock


REPORT_SECONDS: list[float] = []


def _timed_report(*args, **kwargs) -> None:
    clock = time.perf_counter()
    _write_report(*args, **kwargs)
    REPORT_SECONDS.append(time.perf_counter() - clock)


_write_report = report_module.write_report
report_module.write_report = _timed_report


def timed_sweep(experiment, workers: int) -> tuple[float, float, float]:
    """Wall time of a sweep, the sum of its runs' own durations, and the time spent on figures + report."""
    out = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    shutil.rmtree(out)
    clock = time.perf_counter()
    table = sweep(experiment, workers=workers, out=out, progress=False)
    elapsed = time.perf_counter() - clock
    assert (table["status"] == "ok").all() and len(table) == 40
    shutil.rmtree(out)
    return elapsed, float(table["duration"].sum()), REPORT_SECONDS[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smes", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    experiment = load_experiment(experiment_dict(args.smes, args.steps))
    loop = min(plain_loop(experiment) for _ in range(args.repeats))
    one, one_runs, one_report = min(timed_sweep(experiment, 1) for _ in range(args.repeats))
    two, _, two_report = min(timed_sweep(experiment, 2) for _ in range(args.repeats))
    print(f"40 runs of {args.smes:,} SMEs x {args.steps} months (best of {args.repeats}); load average {os.getloadavg()}")
    print(f"plain loop:          {loop:7.2f} s  ({loop / 40:.3f} s per run)")
    print(f"sweep, 1 worker:     {one:7.2f} s  overhead {100 * (one / loop - 1):+.1f}% "
          f"(runs inside workers {one_runs:.2f} s, figures+report {one_report:.2f} s, "
          f"machinery without report {100 * ((one - one_report) / loop - 1):+.1f}%)")
    print(f"sweep, 2 workers:    {two:7.2f} s  speed-up vs 1 worker {one / two:.2f}x "
          f"(without report {(one - one_report) / (two - two_report):.2f}x)")


if __name__ == "__main__":
    main()
