"""SALib drives sme-abm directly: a Morris screening of lever parameters.

SALib draws Morris trajectories over a few lever parameters; each sample row is
one ``sme_abm.run`` with those values as dotted-key overrides; SALib's Morris
analysis ranks the parameters by their elementary effects on each outcome.

Run ``python experiments/interop/salib_morris.py --help`` for the options; the
test suite runs it at a tiny size.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from SALib.analyze import morris as morris_analysis  # noqa: E402
from SALib.sample import morris as morris_sampling  # noqa: E402

import sme_abm  # noqa: E402

#: Lever parameters screened, as config keys with the range sampled.
SCREENED_PARAMETERS: dict[str, tuple[float, float]] = {
    "levers.p07_tax_relief.small_micro_cit_rate": (0.0, 0.25),
    "levers.p13_financing_guarantee.fee_cap": (0.0, 0.05),
    "levers.p21_payment_arrears.payment_days": (30.0, 120.0),
}
#: Summary figures analysed.
OUTCOMES = ("output_mean", "credit_rationed_share", "sme_count_ratio", "fiscal_cost_total")
LEVELS = 4


def morris_problem(parameters: dict[str, tuple[float, float]] = SCREENED_PARAMETERS) -> dict:
    """The SALib problem definition for the screened parameters."""
    return {"num_vars": len(parameters), "names": list(parameters), "bounds": [list(b) for b in parameters.values()]}


def evaluate(problem: dict, sample: np.ndarray, *, n_smes: int, steps: int, seed: int) -> pd.DataFrame:
    """Run the model once per sample row (same seed: common random numbers).

    Returns:
        One row per sample: the parameter values, then the outcomes.
    """
    records = []
    for values in sample:
        overrides = dict(zip(problem["names"], (float(v) for v in values)))
        summary = sme_abm.run(None, overrides, n_smes=n_smes, steps=steps, seed=seed).summary
        records.append({**overrides, **{name: summary[name] for name in OUTCOMES}})
    return pd.DataFrame.from_records(records)


def screen(trajectories: int, *, n_smes: int, steps: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample, run and analyse.

    Returns:
        ``(runs, indices)``: every run, and one row per (outcome, parameter)
        with Morris ``mu``, ``mu_star``, ``sigma`` and ``mu_star_conf``.
    """
    problem = morris_problem()
    sample = morris_sampling.sample(problem, N=trajectories, num_levels=LEVELS, seed=seed)
    runs = evaluate(problem, sample, n_smes=n_smes, steps=steps, seed=seed)
    tables = []
    for outcome in OUTCOMES:
        result = morris_analysis.analyze(problem, sample, runs[outcome].to_numpy(), num_levels=LEVELS,
                                         seed=seed, print_to_console=False)
        table = pd.DataFrame({key: result[key] for key in ("mu", "mu_star", "sigma", "mu_star_conf")})
        table.insert(0, "parameter", problem["names"])
        table.insert(0, "outcome", outcome)
        tables.append(table)
    return runs, pd.concat(tables, ignore_index=True)


def plot_screen(indices: pd.DataFrame, path: Path) -> Path:
    """One panel per outcome: Morris mu* (bars, with confidence) per parameter."""
    outcomes = list(dict.fromkeys(indices["outcome"]))
    figure, axes = plt.subplots(1, len(outcomes), figsize=(4 * len(outcomes), 3.2), squeeze=False)
    for axis, outcome in zip(axes[0], outcomes):
        rows = indices[indices["outcome"] == outcome]
        labels = [name.split(".", 1)[1] for name in rows["parameter"]]
        axis.barh(labels, rows["mu_star"], xerr=rows["mu_star_conf"], color="tab:blue")
        axis.set_title(outcome)
        axis.set_xlabel("Morris mu*")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=10, help="Morris trajectories (runs = trajectories x 4).")
    parser.add_argument("--smes", type=int, default=5_000)
    parser.add_argument("--steps", type=int, default=36)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/interop/salib-morris"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs, indices = screen(args.trajectories, n_smes=args.smes, steps=args.steps, seed=args.seed)
    runs.to_csv(args.out / "runs.csv", index=False)
    indices.to_csv(args.out / "morris.csv", index=False)
    plot_screen(indices, args.out / "morris.png")
    print(indices.to_string(index=False))
    print(f"written to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
