"""Figures and ``report.md`` of a finished sweep (matplotlib with the Agg backend)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .core import design_points_of
from .design import analyze_sensitivity, salib_problem
from .experiment import SweptParameter
from .store import SweepStore

MAX_POINTS_DRAWN_SEPARATELY = 8


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _point_label(values: dict[str, Any]) -> str:
    return ", ".join(f"{key.split('.')[-1]}={value:.4g}" if isinstance(value, float) else f"{key.split('.')[-1]}={value}"
                     for key, value in values.items())


def timeseries_bands(store: SweepStore, table: pd.DataFrame, outputs: list[str]) -> dict[str, pd.DataFrame]:
    """Mean and 95% confidence band across replicates of each output, per design point.

    With more than a few design points the runs are pooled into one band
    (the 5th-95th percentile across all runs around their mean).
    Reads one run's columns at a time, so memory stays small.
    """
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return {}
    separate = ok["point"].nunique() <= MAX_POINTS_DRAWN_SEPARATELY
    groups = ok.groupby("point") if separate else [(-1, ok)]
    bands: dict[str, list[pd.DataFrame]] = {name: [] for name in outputs}
    for point, rows in groups:
        stacks: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
        steps = None
        for run_id in rows["run_id"]:
            frame = store.read_timeseries(run_id)
            steps = frame["step"].to_numpy()
            for name in outputs:
                if name in frame:
                    stacks[name].append(frame[name].to_numpy(dtype=float))
        for name, series in stacks.items():
            if not series:
                continue
            matrix = np.vstack(series)
            mean = matrix.mean(axis=0)
            if separate:
                half = 1.96 * matrix.std(axis=0, ddof=1) / np.sqrt(len(matrix)) if len(matrix) > 1 else np.zeros_like(mean)
                low, high = mean - half, mean + half
            else:
                low, high = np.percentile(matrix, 5, axis=0), np.percentile(matrix, 95, axis=0)
            bands[name].append(pd.DataFrame({"point": point, "step": steps, "mean": mean, "low": low, "high": high}))
    return {name: pd.concat(parts, ignore_index=True) for name, parts in bands.items() if parts}


def sensitivity_tables(store: SweepStore, manifest: dict[str, Any], table: pd.DataFrame, metrics: list[str]) -> dict[str, pd.DataFrame]:
    """SALib indices per metric for sobol and morris designs (replicates averaged per point)."""
    kind = manifest["design_kind"]
    if kind not in ("sobol", "morris"):
        return {}
    params = [SweptParameter(p["key"], p["values"], tuple(p["bounds"]), p["integer"]) for p in manifest["parameters"]]
    problem = salib_problem(params)
    design = manifest["experiment"]["design"]
    points = design_points_of(store, manifest)
    inputs = np.array([[values[p.key] for p in params] for values in points], dtype=float)
    results = {}
    for metric in metrics:
        if metric not in table:
            continue
        means = table[table["status"] == "ok"].groupby("point")[metric].mean()
        if len(means) != len(points):
            continue  # failed points leave holes the estimators cannot take
        indices = analyze_sensitivity(kind, problem, inputs, means.sort_index().to_numpy(),
                                      levels=design["levels"], second_order=design["second_order"])
        results[metric] = pd.DataFrame({"parameter": problem["names"], **indices})
    return results


def write_report(store: SweepStore, manifest: dict[str, Any], table: pd.DataFrame) -> None:
    """Write ``figures/`` and ``report.md`` into the sweep folder."""
    plt = _pyplot()
    store.figures_dir.mkdir(parents=True, exist_ok=True)
    spec = manifest["experiment"]
    points = design_points_of(store, manifest)
    lines = [f"# Sweep `{manifest['name']}`", ""]
    if spec.get("description"):
        lines += [spec["description"], ""]
    counts = table["status"].value_counts().to_dict()
    lines += [
        f"- experiment file: `{manifest['experiment_file']}`; design: **{manifest['design_kind']}** over "
        f"{len(manifest['parameters'])} parameters, {len(points)} points x {spec['replicates']} replicates = {len(table)} runs",
        f"- status: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
        f"- entropy `{manifest['entropy']}`, replicate seeds {manifest['replicate_seeds'][:4]}{' ...' if spec['replicates'] > 4 else ''}",
        f"- git commit `{manifest['git_commit']}`, started {manifest['started']}, finished {manifest['finished']}",
        "- files: `runs.parquet` (one row per run), `timeseries/<run_id>.parquet`, `manifest.json`, `figures/`",
        "",
    ]
    failed = table[table["status"] != "ok"]
    if not failed.empty:
        lines += ["## Runs that did not finish", "", "| run | status | error |", "|---|---|---|"]
        lines += [f"| {r.run_id} | {r.status} | {str(r.error or '').replace('|', '/')[:160]} |" for r in failed.itertuples()]
        lines += ["", "Rerun them with `sme-abm sweep EXPERIMENT --out DIR --resume`.", ""]

    study = manifest.get("study")
    if study is not None:
        labels = study["labels"]
        points = [{"design point": labels[point]} for point in range(len(points))]
        lines += [f"A **{study['kind']}** study: its analysis is in [`study/report.md`](study/report.md) "
                  f"(regenerate with `sme-abm study report {store.root}`).", ""]
    metrics = [m for m in spec["metrics"] if m in table]
    if metrics and len(points) <= 50:
        lines += ["## Summary metrics by design point (mean over replicates)", ""]
        keys = ["design point"] if study is not None else [p["key"] for p in manifest["parameters"]]
        means = table[table["status"] == "ok"].groupby("point")[metrics].mean()
        lines += ["| point | " + " | ".join(k.split(".")[-1] for k in keys) + " | " + " | ".join(metrics) + " |",
                  "|" + "---|" * (1 + len(keys) + len(metrics))]
        for point, row in means.iterrows():
            values = points[point]
            lines.append(f"| {point} | " + " | ".join(f"{values[k]:.4g}" if isinstance(values[k], float) else str(values[k]) for k in keys)
                         + " | " + " | ".join(f"{row[m]:.4g}" for m in metrics) + " |")
        lines.append("")

    bands = timeseries_bands(store, table, spec["outputs"])
    if bands:
        lines += ["## Outcomes over time", ""]
    for name, band in bands.items():
        figure, axis = plt.subplots(figsize=(7, 4))
        for point, part in band.groupby("point"):
            label = _point_label(points[point]) if point >= 0 else "all runs (mean, 5-95%)"
            axis.plot(part["step"], part["mean"], label=label, linewidth=1.2)
            axis.fill_between(part["step"], part["low"], part["high"], alpha=0.2)
        axis.set_xlabel("month")
        axis.set_ylabel(name)
        axis.set_title(f"{name}: mean and 95% CI across replicates" if band["point"].min() >= 0 else name)
        axis.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(store.figures_dir / f"timeseries_{name}.png", dpi=100)
        plt.close(figure)
        lines += [f"![{name}](figures/timeseries_{name}.png)", ""]

    sensitivity = sensitivity_tables(store, manifest, table, metrics)
    if sensitivity:
        lines += [f"## Sensitivity ({manifest['design_kind']}, SALib)", ""]
    for metric, indices in sensitivity.items():
        figure, axis = plt.subplots(figsize=(8, max(3, 0.25 * len(indices) + 1)))
        short = [name.split(".")[1] if name.startswith("levers.") else name for name in indices["parameter"]]
        if manifest["design_kind"] == "sobol":
            positions = np.arange(len(indices))
            axis.barh(positions - 0.2, indices["S1"], height=0.4, xerr=indices["S1_conf"], label="S1")
            axis.barh(positions + 0.2, indices["ST"], height=0.4, xerr=indices["ST_conf"], label="ST")
            axis.set_yticks(positions, short, fontsize=7)
            axis.set_xlabel("Sobol index")
            axis.legend()
            top = indices.sort_values("ST", ascending=False).head(10)
            lines += [f"### {metric}", "", "| parameter | S1 | ST |", "|---|---|---|"]
            lines += [f"| {r.parameter} | {r.S1:.3f} | {r.ST:.3f} |" for r in top.itertuples()]
        else:
            axis.scatter(indices["mu_star"], indices["sigma"])
            for x, y, label in zip(indices["mu_star"], indices["sigma"], short):
                axis.annotate(label, (x, y), fontsize=6)
            axis.set_xlabel("mu* (mean |elementary effect|)")
            axis.set_ylabel("sigma")
            top = indices.sort_values("mu_star", ascending=False).head(10)
            lines += [f"### {metric}", "", "| parameter | mu* | sigma |", "|---|---|---|"]
            lines += [f"| {r.parameter} | {r.mu_star:.4g} | {r.sigma:.4g} |" for r in top.itertuples()]
        axis.set_title(f"{metric}: {manifest['design_kind']} sensitivity")
        figure.tight_layout()
        figure.savefig(store.figures_dir / f"sensitivity_{metric}.png", dpi=100)
        plt.close(figure)
        indices.to_csv(store.figures_dir / f"sensitivity_{metric}.csv", index=False)
        lines += ["", f"![{metric}](figures/sensitivity_{metric}.png)", ""]
    from .store import atomic_write_bytes

    atomic_write_bytes(store.root / "report.md", "\n".join(lines).encode())
    if study is not None and (table["status"] == "ok").any():
        from .study_report import write_study_report

        write_study_report(store.root)
