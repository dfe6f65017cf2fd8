"""Fit the model's free parameters to real figures by the simulated method of moments,
running every simulation through the sweep machinery (``sme_abm.sweep``).

Stage 1 is a Latin-hypercube sweep over the free parameters (one replicate,
common random numbers), followed by a second hypercube sweep in a box of
+-15% of each range around the best point (the zoom). Stage 2 re-runs the
best candidates of both, each as a one-point sweep with several replicates and
more SMEs, and picks the candidate with the lowest mean loss. Every stage is
an ordinary sweep folder (manifest, runs.parquet, time series), so each can be
checked with ``sme-abm reproduce``.

The loss is the sum of squared, scaled deviations of the model's moments from
their targets (``calibration.toml``).

Usage:
    python experiments/calibration/calibrate.py [calibration.toml] [--workers N] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import sme_abm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run_moments(folder: Path, runs: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The calibration moments of every run of a sweep folder."""
    rows = []
    for _, run in runs.iterrows():
        series = pd.read_parquet(folder / "timeseries" / f"{run['run_id']}.parquet")
        late = series.iloc[len(series) // 3:]
        rows.append({
            **{name: float(run[name]) for name in names},
            "run_id": run["run_id"], "seed": int(run["seed"]),
            "annual_exit_rate": float(run["annual_exit_rate"]),
            "small_micro_new_loan_rate": float(late["new_loan_rate_small_micro"].mean()),
            "sme_count_ratio": float(run["sme_count_ratio"]),
        })
    return pd.DataFrame(rows)


def loss(frame: pd.DataFrame, moments: dict[str, dict[str, Any]]) -> pd.Series:
    return sum(((frame[name] - spec["target"]) / spec["scale"]) ** 2 for name, spec in moments.items())


def experiment(name: str, spec: dict[str, Any], design: dict[str, Any], replicates: int, n_smes: int,
               entropy: int) -> dict[str, Any]:
    return {
        "name": name,
        "base": str((ROOT / spec["base_config"]).resolve()),
        "replicates": replicates,
        "entropy": entropy,
        "outputs": ["smes_active", "new_loan_rate_small_micro"],
        "metrics": ["annual_exit_rate", "sme_count_ratio"],
        "overrides": {"simulation.n_smes": n_smes, "simulation.steps": spec["steps"]},
        "design": design,
    }


def sweep_stage(folder: Path, exp: dict[str, Any], workers: int, names: list[str]) -> pd.DataFrame:
    runs = sme_abm.sweep(exp, workers=workers, out=folder, progress=sys.stderr.isatty())
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        raise RuntimeError(f"{len(failed)} calibration runs failed in {folder}: {failed['error'].iloc[0]}")
    return run_moments(folder, runs, names)


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
    entropies = [int(s.generate_state(1, dtype=np.uint32)[0]) for s in np.random.SeedSequence(spec["entropy"]).spawn(3)]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else ROOT / spec["out"] / stamp
    out.mkdir(parents=True, exist_ok=True)

    def lhs(box: np.ndarray) -> dict[str, Any]:
        return {"kind": "lhs", "samples": spec["stage1_points"],
                "parameters": {n: {"range": [float(lo), float(hi)]} for n, (lo, hi) in zip(names, box)}}

    stage1 = sweep_stage(out / "stage1-hypercube",
                         experiment("calibration-hypercube", spec, lhs(bounds), 1, spec["n_smes"], entropies[0]),
                         args.workers, names)
    stage1["loss"] = loss(stage1, spec["moments"])
    centre = stage1.nsmallest(1, "loss")[names].to_numpy()[0]
    half = 0.15 * (bounds[:, 1] - bounds[:, 0])
    zoom_box = np.column_stack([np.maximum(centre - half, bounds[:, 0]), np.minimum(centre + half, bounds[:, 1])])
    zoom = sweep_stage(out / "stage1-zoom",
                       experiment("calibration-zoom", spec, lhs(zoom_box), 1, spec["n_smes"], entropies[0]),
                       args.workers, names)
    zoom["loss"] = loss(zoom, spec["moments"])
    candidates = pd.concat([stage1.assign(phase="hypercube"), zoom.assign(phase="zoom")], ignore_index=True)
    best = candidates.nsmallest(spec["stage2_candidates"], "loss")

    stage2_parts = []
    for index, (_, row) in enumerate(best.iterrows()):
        point = {"kind": "grid", "parameters": {n: {"values": [float(row[n])]} for n in names}}
        part = sweep_stage(out / f"stage2-candidate-{index + 1}",
                           experiment(f"calibration-candidate-{index + 1}", spec, point, spec["stage2_replicates"],
                                      spec["stage2_n_smes"], entropies[1]), args.workers, names)
        stage2_parts.append(part.assign(candidate=index + 1))
    stage2 = pd.concat(stage2_parts, ignore_index=True)
    stage2["loss"] = loss(stage2, spec["moments"])
    summary = stage2.groupby(["candidate", *names], as_index=False).agg(
        {**{m: "mean" for m in spec["moments"]}, "loss": "mean"})
    winner = summary.nsmallest(1, "loss").iloc[0]

    candidates.to_csv(out / "stage1.csv", index=False)
    stage2.to_csv(out / "stage2.csv", index=False)
    fitted = {
        "run": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
        "parameters": {n: float(winner[n]) for n in names},
        "moments": {m: {"model": float(winner[m]), **spec["moments"][m]} for m in spec["moments"]},
        "loss": float(winner["loss"]),
        "stage1_best_loss": {phase: float(group["loss"].min()) for phase, group in candidates.groupby("phase")},
    }
    (out / "fitted.json").write_text(json.dumps(fitted, indent=2) + "\n")
    print(json.dumps(fitted, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
