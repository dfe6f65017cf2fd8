"""EMA Workbench drives sme-abm: exploratory modelling and PRIM scenario discovery.

The model is wrapped as a plain function of named inputs (EMA's ``Model``):
two deep uncertainties about the economy and two policy levers. EMA draws a
Latin hypercube over both, runs every (scenario, policy) pair, and PRIM then
looks for the region of the input space where SMEs do worst (the lowest
``sme_count_ratio`` quartile by default): the scenario that makes the policy
fail.

Run ``python experiments/interop/ema_prim.py --help`` for the options; the test
suite runs it at a tiny size. It uses the EMA Workbench 2.5 API (the project pins
``ema_workbench>=2.5,<3``; 3.x needs Python 3.12 and changed sampling and PRIM).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

with warnings.catch_warnings():  # EMA warns that its optional ipyparallel backend is missing
    warnings.simplefilter("ignore")
    from ema_workbench import Constant, Model, RealParameter, Samplers, ScalarOutcome, perform_experiments
    from ema_workbench.analysis import prim

import sme_abm  # noqa: E402

#: EMA name -> (config key, low, high) of the deep uncertainties.
UNCERTAINTIES: dict[str, tuple[str, float, float]] = {
    "demand_volatility": ("economy.demand_volatility", 0.03, 0.12),
    "growth_drift": ("economy.growth_drift", -0.01, 0.005),
}
#: EMA name -> (config key, low, high) of the policy levers.
LEVERS: dict[str, tuple[str, float, float]] = {
    "guarantee_fee_cap": ("levers.p13_financing_guarantee.fee_cap", 0.0, 0.05),
    "payment_days": ("levers.p21_payment_arrears.payment_days", 30.0, 120.0),
}
OUTCOMES = ("sme_count_ratio", "output_mean", "credit_rationed_share", "fiscal_cost_total")


def sme_economy(n_smes: int = 2_000, steps: int = 24, seed: int = 1, **inputs: float) -> dict[str, float]:
    """sme-abm as a function of named inputs, the form EMA Workbench calls.

    Args:
        n_smes: SMEs at the start.
        steps: Months to simulate.
        seed: Seed of the run (the same for every experiment: common random numbers).
        **inputs: Values of the names in :data:`UNCERTAINTIES` and :data:`LEVERS`.

    Returns:
        The summary figures in :data:`OUTCOMES`.
    """
    keys = {name: key for name, (key, _, _) in {**UNCERTAINTIES, **LEVERS}.items()}
    overrides = {keys[name]: float(value) for name, value in inputs.items()}
    summary = sme_abm.run(None, overrides, n_smes=n_smes, steps=steps, seed=seed).summary
    return {name: float(summary[name]) for name in OUTCOMES}


def ema_model(n_smes: int, steps: int, seed: int) -> Model:
    """The EMA ``Model``: uncertainties, levers, constants and outcomes."""
    model = Model("smeabm", function=sme_economy)
    model.uncertainties = [RealParameter(name, low, high) for name, (_, low, high) in UNCERTAINTIES.items()]
    model.levers = [RealParameter(name, low, high) for name, (_, low, high) in LEVERS.items()]
    model.constants = [Constant("n_smes", n_smes), Constant("steps", steps), Constant("seed", seed)]
    model.outcomes = [ScalarOutcome(name) for name in OUTCOMES]
    return model


def explore(scenarios: int, policies: int, *, n_smes: int, steps: int, seed: int) -> pd.DataFrame:
    """Latin-hypercube experiments over uncertainties x levers, run one after another.

    Returns:
        One row per experiment: the inputs, EMA's bookkeeping columns and the outcomes.
    """
    experiments, outcomes = perform_experiments(
        ema_model(n_smes, steps, seed), scenarios=scenarios, policies=policies,
        uncertainty_sampling=Samplers.LHS, lever_sampling=Samplers.LHS,
    )
    return pd.concat([experiments.reset_index(drop=True), pd.DataFrame(outcomes)], axis=1)


def discover(results: pd.DataFrame, outcome: str = "sme_count_ratio", quantile: float = 0.25,
             threshold: float = 0.5) -> tuple[Any, pd.DataFrame]:
    """PRIM: the box of inputs where ``outcome`` falls in its lowest ``quantile``.

    Returns:
        ``(box, limits)``: EMA's PRIM box and its limits (one column per
        restricted input; rows ``low`` and ``high``).
    """
    inputs = results[list(UNCERTAINTIES) + list(LEVERS)]
    cases_of_interest = (results[outcome] <= results[outcome].quantile(quantile)).to_numpy()
    box = prim.Prim(inputs, cases_of_interest, threshold=threshold).find_box()
    limits = box.box_lims[-1].copy()
    limits.index = ["low", "high"]
    return box, limits


def plot_scenarios(results: pd.DataFrame, limits: pd.DataFrame, outcome: str, path: Path) -> Path:
    """Scatter of the two uncertainties coloured by ``outcome``, with the PRIM box on top."""
    x_name, y_name = list(UNCERTAINTIES)
    figure, axis = plt.subplots(figsize=(5.5, 4.2))
    points = axis.scatter(results[x_name], results[y_name], c=results[outcome], cmap="viridis", s=28)
    figure.colorbar(points, ax=axis, label=outcome)
    low_x, high_x = limits[x_name] if x_name in limits else (results[x_name].min(), results[x_name].max())
    low_y, high_y = limits[y_name] if y_name in limits else (results[y_name].min(), results[y_name].max())
    axis.add_patch(plt.Rectangle((low_x, low_y), high_x - low_x, high_y - low_y, fill=False, ec="red", lw=2,
                                 label="PRIM box"))
    axis.set_xlabel(x_name)
    axis.set_ylabel(y_name)
    axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=50, help="Latin-hypercube draws of the uncertainties.")
    parser.add_argument("--policies", type=int, default=4, help="Latin-hypercube draws of the levers.")
    parser.add_argument("--smes", type=int, default=2_000)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--outcome", default="sme_count_ratio", choices=OUTCOMES)
    parser.add_argument("--out", type=Path, default=Path("results/interop/ema-prim"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = explore(args.scenarios, args.policies, n_smes=args.smes, steps=args.steps, seed=args.seed)
    box, limits = discover(results, args.outcome)
    results.to_csv(args.out / "experiments.csv", index=False)
    limits.to_csv(args.out / "prim_box.csv")
    plot_scenarios(results, limits, args.outcome, args.out / "prim_box.png")
    stats = box.peeling_trajectory.iloc[-1]
    print(f"PRIM box for the lowest quarter of {args.outcome}: coverage {stats['coverage']:.2f}, "
          f"density {stats['density']:.2f}")
    print(limits.to_string())
    print(f"written to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
