"""Knock out each of the 25 levers in turn and measure what it adds.

Runs the baseline and 25 variants (one lever off each) over the same
replicate seeds, pairs each variant with the baseline run of the same seed,
and reports each lever's effect (baseline minus knockout) on output,
employment, SME count, credit rationed and fiscal cost, with 95% confidence
intervals across replicates. Writes a CSV, a bar chart and the Markdown table
that docs/levers.md embeds.

Usage:
    python experiments/knockout/run_knockout.py [experiments/knockout/knockout.toml] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress
from scipy import stats

import sme_abm
from sme_abm.levers import load_registry

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
METRICS = {
    "output": "output (mean monthly sales), %",
    "employment": "employment (mean), %",
    "smes": "SMEs at the end, %",
    "credit_rationed": "credit rationed (total), %",
    "fiscal_cost": "fiscal cost (total), CNY m",
}


def replicate_seeds(entropy: int, replicates: int) -> list[int]:
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in np.random.SeedSequence(entropy).spawn(replicates)]


def one_run(task: tuple[str, str | None, int, int, int]) -> dict[str, float | str | int]:
    config, lever, seed, n_smes, steps = task
    overrides = {f"levers.{lever}.enabled": False} if lever else {}
    result = sme_abm.run(ROOT / config, n_smes=n_smes, steps=steps, seed=seed, **overrides)
    ts = result.timeseries
    return {
        "variant": lever or "baseline", "seed": seed,
        "output": float(ts["output"].mean()), "employment": float(ts["employment"].mean()),
        "smes": float(ts["smes_active"].iloc[-1]), "credit_rationed": float(ts["credit_rationed"].sum()),
        "fiscal_cost": float(ts["fiscal_cost_total"].sum()),
    }


def effects(runs: pd.DataFrame) -> pd.DataFrame:
    """Each lever's effect (baseline minus knockout), paired by seed, with 95% CIs."""
    base = runs[runs.variant == "baseline"].set_index("seed")
    rows = []
    for lever in load_registry().levers:
        variant = runs[runs.variant == lever.key].set_index("seed").loc[base.index]
        row: dict[str, float | str | int] = {"provision": lever.provision, "key": lever.key, "title": lever.title}
        for metric in METRICS:
            diff = base[metric] - variant[metric]
            if metric != "fiscal_cost":
                diff = 100.0 * diff / base[metric]
            half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
            row[metric] = diff.mean()
            row[f"{metric}_ci"] = half
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    header = "| # | lever | " + " | ".join(METRICS.values()) + " |"
    lines = [header, "|" + "---|" * (2 + len(METRICS))]
    for _, row in table.iterrows():
        cells = [f"{row[m]:+.2f} ± {row[m + '_ci']:.2f}" if m != "fiscal_cost" else f"{row[m]:+,.0f} ± {row[m + '_ci']:,.0f}"
                 for m in METRICS]
        lines.append(f"| {row['provision']} | {row['title']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 8), sharey=True)
    labels = [f"{p}. {t}" for p, t in zip(table.provision, table.title)]
    y = np.arange(len(table))
    for ax, metric, colour in zip(axes, ("output", "employment", "smes"), ("tab:blue", "tab:green", "tab:orange")):
        ax.barh(y, table[metric], xerr=table[f"{metric}_ci"], color=colour, alpha=0.8)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(METRICS[metric])
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle("What each lever adds (baseline minus knockout), mean and 95% CI over replicates")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default=str(HERE / "knockout.toml"))
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--replicates", type=int, help="override the file's replicates")
    parser.add_argument("--smes", type=int, help="override the file's n_smes")
    parser.add_argument("--steps", type=int, help="override the file's steps")
    parser.add_argument("--out", help="override the file's output folder")
    args = parser.parse_args(argv)
    spec = tomllib.loads(Path(args.experiment).read_text())
    replicates = args.replicates or spec["replicates"]
    n_smes, steps = args.smes or spec["n_smes"], args.steps or spec["steps"]
    out = ROOT / (args.out or spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    seeds = replicate_seeds(spec["entropy"], replicates)
    variants: list[str | None] = [None] + load_registry().keys
    tasks = [(spec["base_config"], lever, seed, n_smes, steps) for lever in variants for seed in seeds]
    rows = []
    with Progress() as bar:
        task = bar.add_task("knockout runs", total=len(tasks))
        if args.workers <= 1:
            results = map(one_run, tasks)
            for row in results:
                rows.append(row)
                bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                for row in pool.map(one_run, tasks, chunksize=2):
                    rows.append(row)
                    bar.advance(task)
    runs = pd.DataFrame(rows)
    runs.to_parquet(out / "runs.parquet", index=False)
    table = effects(runs)
    table.to_csv(out / "knockout.csv", index=False)
    (out / "knockout.md").write_text(markdown_table(table))
    bar_chart(table, out / "knockout.png")
    print(f"wrote {out / 'knockout.csv'}, {out / 'knockout.md'} and {out / 'knockout.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
