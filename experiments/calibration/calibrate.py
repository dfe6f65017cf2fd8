"""Fit the model's free parameters to real figures by the simulated method of moments.

Stage 1 runs a Latin hypercube (scipy.stats.qmc) over the free parameters,
one replicate each, then a second hypercube in a box around the best point
(a zoom: +-15% of each range); stage 2 re-runs the best candidates of both
with more replicates and SMEs and picks the one with the lowest mean loss. The loss is the sum of
squared, scaled deviations of the model's moments from their targets.

Usage:
    python experiments/calibration/calibrate.py [calibration.toml] [--workers N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress
from scipy.stats import qmc

import sme_abm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def moments_of(task: tuple[str, dict[str, float], int, int, int]) -> dict[str, Any]:
    config, params, seed, n_smes, steps = task
    result = sme_abm.run(ROOT / config, n_smes=n_smes, steps=steps, seed=seed, **params)
    ts = result.timeseries
    late = ts.iloc[len(ts) // 3:]
    return {
        **params, "seed": seed,
        "annual_exit_rate": result.summary["annual_exit_rate"],
        "small_micro_new_loan_rate": float(late["new_loan_rate_small_micro"].mean()),
        "sme_count_ratio": result.summary["sme_count_ratio"],
    }


def loss(frame: pd.DataFrame, moments: dict[str, dict[str, Any]]) -> pd.Series:
    return sum(((frame[name] - spec["target"]) / spec["scale"]) ** 2 for name, spec in moments.items())


def _run_all(tasks: list, workers: int, label: str) -> pd.DataFrame:
    rows = []
    with Progress() as bar:
        task = bar.add_task(label, total=len(tasks))
        if workers <= 1:
            for row in map(moments_of, tasks):
                rows.append(row)
                bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for row in pool.map(moments_of, tasks):
                    rows.append(row)
                    bar.advance(task)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(HERE / "calibration.toml"))
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="a tiny version for tests")
    parser.add_argument("--out", help="override the output folder")
    args = parser.parse_args(argv)
    spec = tomllib.loads(Path(args.spec).read_text())
    if args.quick:
        spec.update(stage1_points=4, stage2_candidates=1, stage2_replicates=2, n_smes=300, stage2_n_smes=300, steps=24)
    names = list(spec["parameters"])
    bounds = np.array([spec["parameters"][n] for n in names], dtype=float)
    seeds = np.random.SeedSequence(spec["entropy"])
    sampler = qmc.LatinHypercube(d=len(names), seed=np.random.default_rng(seeds.spawn(1)[0]))
    points = qmc.scale(sampler.random(spec["stage1_points"]), bounds[:, 0], bounds[:, 1])
    run_seed = int(seeds.generate_state(1, dtype=np.uint32)[0])
    stage1 = _run_all([(spec["base_config"], dict(zip(names, map(float, p))), run_seed, spec["n_smes"], spec["steps"])
                       for p in points], args.workers, "calibration stage 1")
    stage1["loss"] = loss(stage1, spec["moments"])
    centre = stage1.nsmallest(1, "loss")[names].to_numpy()[0]
    half = 0.15 * (bounds[:, 1] - bounds[:, 0])
    zoom_bounds = np.column_stack([np.maximum(centre - half, bounds[:, 0]), np.minimum(centre + half, bounds[:, 1])])
    zoom = qmc.scale(sampler.random(spec["stage1_points"]), zoom_bounds[:, 0], zoom_bounds[:, 1])
    zoomed = _run_all([(spec["base_config"], dict(zip(names, map(float, p))), run_seed, spec["n_smes"], spec["steps"])
                       for p in zoom], args.workers, "calibration stage 1 (zoom)")
    zoomed["loss"] = loss(zoomed, spec["moments"])
    stage1 = pd.concat([stage1.assign(phase="hypercube"), zoomed.assign(phase="zoom")], ignore_index=True)
    best = stage1.nsmallest(spec["stage2_candidates"], "loss")
    rep_seeds = [int(s.generate_state(1, dtype=np.uint32)[0]) for s in seeds.spawn(spec["stage2_replicates"] + 1)[1:]]
    stage2 = _run_all([(spec["base_config"], {n: float(row[n]) for n in names}, seed, spec["stage2_n_smes"], spec["steps"])
                       for _, row in best.iterrows() for seed in rep_seeds], args.workers, "calibration stage 2")
    stage2["loss"] = loss(stage2, spec["moments"])
    summary = stage2.groupby(names, as_index=False).agg({**{m: "mean" for m in spec["moments"]}, "loss": "mean"})
    summary["loss_of_means"] = loss(summary, spec["moments"])
    winner = summary.nsmallest(1, "loss").iloc[0]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = ROOT / (args.out or spec["out"]) / stamp
    out.mkdir(parents=True, exist_ok=True)
    stage1.to_csv(out / "stage1.csv", index=False)
    stage2.to_csv(out / "stage2.csv", index=False)
    fitted = {
        "run": f"{spec.get('out', 'results/calibration')}/{stamp}",
        "parameters": {n: float(winner[n]) for n in names},
        "moments": {m: {"model": float(winner[m]), **spec["moments"][m]} for m in spec["moments"]},
        "loss": float(winner["loss"]),
    }
    (out / "fitted.json").write_text(json.dumps(fitted, indent=2) + "\n")
    print(json.dumps(fitted, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
