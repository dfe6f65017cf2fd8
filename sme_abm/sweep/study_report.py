"""The report of a finished study sweep: ``sme-abm study report DIR`` (also written by the sweep).

Writes ``DIR/study/``: ``report.md`` (Markdown tables), ``effects.csv`` (knockout/knockin:
every lever x outcome, with CIs and MDEs), ``cost_effectiveness.csv``, ``shapley.csv``,
``interactions.csv`` and figures (``*.png``), all from the runs table and the manifest's
study plan, so the one command regenerates everything on whatever model produced the runs.

Every effect is a mean of per-replicate paired differences (policy on minus off, same seed
and starting state) with a 95% t confidence interval across replicates. The power section
gives, per lever and outcome, the minimal detectable effect (80% power, 5% two-sided) at the
study's replicates; an effect whose CI includes 0 is "not distinguishable at this power".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .store import SweepStore, atomic_write_bytes
from .studies import (HEADLINE, contrast_effects, cost_effectiveness, interaction_effects, shapley_values,
                      value_matrix)

STUDY_DIR = "study"
CE_COLUMNS = {"job_years": "study.job_years", "output": "study.output_total", "net_cost": "study.net_fiscal_cost"}
NOT_DISTINGUISHABLE = "not distinguishable at this power"


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}g}"


def _cell(mean: float, ci: float) -> str:
    return f"{_fmt(mean)} ± {_fmt(abs(ci)).lstrip('+')}" if np.isfinite(ci) else _fmt(mean)


def _short(lever: str) -> str:
    return lever.split("_", 1)[0][1:].lstrip("0") + " " + lever.split("_", 1)[1].replace("_", " ")


def load_study(folder: str | Path) -> tuple[SweepStore, dict[str, Any], pd.DataFrame]:
    """The store, manifest and runs table of a study sweep (ConfigError if it is not one)."""
    from .core import checked_manifest

    store = SweepStore(folder)
    manifest = checked_manifest(store)
    if manifest is None:
        raise ConfigError(str(folder), "manifest.json", "not found; not a sweep results folder")
    if "study" not in manifest:
        raise ConfigError(str(folder), "design.kind", f"is {manifest['design_kind']!r}, not a study design "
                          "(knockout, knockin, shapley, interactions)")
    path = store.root / "runs.parquet"
    table = pd.read_parquet(path) if path.exists() else store.build_runs_table(manifest["runs"])
    return store, manifest, table


def _outcomes(study: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return dict(HEADLINE)


def effects_table(manifest: dict[str, Any], table: pd.DataFrame) -> pd.DataFrame:
    """Knockout/knockin: per lever, its effect on its own channel and on each headline outcome."""
    study = manifest["study"]
    points, reps = len(study["labels"]), len(manifest["replicate_seeds"])
    frames = []
    for name, (column, label) in _outcomes(study).items():
        found = contrast_effects(value_matrix(table, column, points, reps), study["contrasts"])
        found.insert(1, "outcome", name)
        found.insert(2, "label", label)
        frames.append(found)
    rows = []
    for lever, (on, off) in study["contrasts"].items():
        column = f"study.channel.{lever}"
        found = contrast_effects(value_matrix(table, column, points, reps), {lever: [on, off]})
        found.insert(1, "outcome", "own_channel")
        found.insert(2, "label", f"own channel: {study['channels'].get(lever, '?')} (mean)")
        rows.append(found)
    frames.extend(rows)
    return pd.concat(frames, ignore_index=True)


def ce_table(manifest: dict[str, Any], table: pd.DataFrame) -> pd.DataFrame:
    """Knockout/knockin: per lever, job-years and output per CNY m of net fiscal cost."""
    study = manifest["study"]
    points, reps = len(study["labels"]), len(manifest["replicate_seeds"])
    matrices = {name: value_matrix(table, column, points, reps) for name, column in CE_COLUMNS.items()}
    rows = []
    for lever, (on, off) in study["contrasts"].items():
        diffs = {name: matrix[on] - matrix[off] for name, matrix in matrices.items()}
        rows.append({"lever": lever, **cost_effectiveness(diffs["job_years"], diffs["output"], diffs["net_cost"])})
    return pd.DataFrame(rows)


def _pyplot() -> Any:
    from .report import _pyplot as pyplot

    return pyplot()


def _bar_figure(frame: pd.DataFrame, value: str, error: str, title: str, xlabel: str, path: Path) -> None:
    plt = _pyplot()
    labels = [" x ".join(_short(part) if part.startswith("p") and part[1:3].isdigit() else part
                         for part in str(lever).split(" x ")) for lever in frame["lever"]]
    figure, axis = plt.subplots(figsize=(8, max(3.0, 0.28 * len(frame) + 1.2)))
    y = np.arange(len(frame))
    errors = np.nan_to_num(frame[error].to_numpy(float))
    axis.barh(y, np.nan_to_num(frame[value].to_numpy(float)), xerr=errors, color="tab:blue", alpha=0.8)
    axis.axvline(0, color="black", lw=0.8)
    axis.set_yticks(y, labels, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel(xlabel)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _header(manifest: dict[str, Any], table: pd.DataFrame) -> list[str]:
    study, spec = manifest["study"], manifest["experiment"]
    sim = manifest["base_config"]["simulation"]
    start = manifest.get("start")
    counts = table["status"].value_counts().to_dict() if "status" in table else {}
    if start is None:
        where = "cold start (month 0, built under the baseline policy); every month is evaluated"
    elif start["kind"] == "state":
        where = (f"saved state `{start['from_state']}` (month {start['state_month']}, sha256 `{start['sha256'][:12]}`), "
                 "reseeded per replicate")
    else:
        where = (f"burn-in of {start['months']} months run by the sweep ({'one state per replicate' if start['per_replicate'] else 'one shared state, reseeded per replicate'}"
                 f"; burn-in policy: {start.get('policy', 'base')}"
                 f"{', burn-in overrides ' + str(start['overrides']) if start['overrides'] else ''}; states in `states/`)")
    return [
        f"# Study `{manifest['name']}`: {study['kind']}",
        "",
        *( [spec["description"], ""] if spec.get("description") else []),
        f"- {len(study['levers'])} levers studied, {len(study['labels'])} design points x {len(manifest['replicate_seeds'])} "
        f"replicates = {len(table)} runs ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})",
        f"- {sim['n_smes']:,} SMEs (at the cold start), {sim['steps']} evaluated months per run; start: {where}",
        f"- entropy `{manifest['entropy']}`, git commit `{manifest['git_commit']}`; regenerate this report with "
        f"`sme-abm study report {manifest.get('folder', 'DIR')}`",
        "- every effect is policy on minus policy off, paired by replicate (same seed and starting state), mean ± half "
        "width of the 95% CI (t) across replicates",
        "",
    ]


def write_study_report(folder: str | Path) -> Path:
    """Write ``DIR/study/`` (report.md, CSVs, figures) for a finished study sweep; returns report.md."""
    store, manifest, table = load_study(folder)
    manifest = {**manifest, "folder": str(folder)}
    out = store.root / STUDY_DIR
    out.mkdir(parents=True, exist_ok=True)
    study = manifest["study"]
    lines = _header(manifest, table)
    kind = study["kind"]
    if kind in ("knockout", "knockin"):
        lines += _contrast_sections(manifest, table, out)
    elif kind == "shapley":
        lines += _shapley_section(manifest, table, out)
    elif kind == "interactions":
        lines += _interactions_section(manifest, table, out)
    path = out / "report.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def _contrast_sections(manifest: dict[str, Any], table: pd.DataFrame, out: Path) -> list[str]:
    study = manifest["study"]
    effects = effects_table(manifest, table)
    effects.to_csv(out / "effects.csv", index=False)
    ce = ce_table(manifest, table)
    ce.to_csv(out / "cost_effectiveness.csv", index=False)
    what = "full package minus the package without the lever" if study["kind"] == "knockout" else "the lever alone minus no policy"
    outcomes = ["own_channel", *HEADLINE]
    lines = [f"## Effects ({what})", "",
             "| lever | own channel | " + " | ".join(HEADLINE[o][1] for o in HEADLINE) + " |",
             "|---|---|" + "---|" * len(HEADLINE)]
    for lever in study["contrasts"]:
        cells = []
        for outcome in outcomes:
            row = effects[(effects.lever == lever) & (effects.outcome == outcome)].iloc[0]
            cell = _cell(row["mean"], row["ci"])
            cells.append(cell if row["distinguishable"] else f"{cell} (n.d.)")
        channel = study["channels"].get(lever, "?")
        lines.append(f"| {_short(lever)} | `{channel}`: {cells[0]} | " + " | ".join(cells[1:]) + " |")
    lines += ["", "(n.d.): the 95% CI includes 0, " + NOT_DISTINGUISHABLE + " (see Power).", ""]
    for outcome in ("output", "employment", "net_fiscal_cost"):
        part = effects[effects.outcome == outcome]
        name = f"effects_{outcome}.png"
        _bar_figure(part, "mean", "ci", f"{HEADLINE[outcome][1]}: effect and 95% CI ({study['kind']})",
                    HEADLINE[outcome][1], out / name)
        lines += [f"![{outcome}]({name})", ""]

    own = effects[effects.outcome == "own_channel"]
    reps = len(manifest["replicate_seeds"])
    lines += ["## Power", "",
              f"Minimal detectable effect (MDE) at {reps} replicates: the true effect a two-sided 5% test detects with "
              "80% probability, `(t(0.975, n-1) + t(0.8, n-1)) x sd / sqrt(n)` with `sd` the standard deviation of the "
              "paired differences. *Seeds needed*: replicates for the observed effect to be detected (normal "
              "approximation).", "",
              "| lever | own channel: effect | MDE | verdict | seeds needed | output MDE | employment MDE |",
              "|---|---|---|---|---|---|---|"]
    for row in own.itertuples():
        verdict = "distinguished from 0" if row.distinguishable else NOT_DISTINGUISHABLE
        o = effects[(effects.lever == row.lever) & (effects.outcome == "output")].iloc[0]
        e = effects[(effects.lever == row.lever) & (effects.outcome == "employment")].iloc[0]
        needed = "n/a" if not math.isfinite(row.seeds_needed) else f"{row.seeds_needed:.0f}"
        lines.append(f"| {_short(row.lever)} | {_cell(row.mean, row.ci)} | {_fmt(row.mde).lstrip('+')} | {verdict} | "
                     f"{needed} | {_fmt(o['mde']).lstrip('+')} | {_fmt(e['mde']).lstrip('+')} |")
    distinguished = [_short(r.lever) for r in own.itertuples() if r.distinguishable]
    lines += ["", f"Distinguished from 0 on their own channel: {', '.join(distinguished) or 'none'}.", ""]

    lines += ["## Cost-effectiveness", "",
              "Net fiscal cost = the change in the government's primary deficit plus bond interest over the evaluated "
              "months against the paired counterfactual run, before the fiscal closure answers it (the "
              "debt-stabilising rule's extra spending or cuts and the budget-neutral levy left out; dynamic scoring: "
              "taxes the economy pays back are netted). "
              "Job-years = change in the sum of monthly employment / 12; output = change in total sales (CNY m). "
              "Ratios are of the means, with delta-method 95% CIs; *undefined* where the net cost's CI includes 0.", "",
              "| lever | net fiscal cost, CNY m | job-years | output, CNY m | job-years per CNY m | output per CNY m |",
              "|---|---|---|---|---|---|"]
    for row in ce.itertuples():
        jobs = _cell(row.job_years_per_cny_m, row.job_years_per_cny_m_ci) if row.cost_distinguishable else "undefined"
        outp = _cell(row.output_per_cny_m, row.output_per_cny_m_ci) if row.cost_distinguishable else "undefined"
        lines.append(f"| {_short(row.lever)} | {_cell(row.net_cost, row.net_cost_ci)} | {_fmt(row.job_years)} | "
                     f"{_fmt(row.output)} | {jobs} | {outp} |")
    lines.append("")
    defined = ce[ce.cost_distinguishable]
    if not defined.empty:
        _bar_figure(defined, "job_years_per_cny_m", "job_years_per_cny_m_ci",
                    "job-years per CNY m of net fiscal cost (95% CI)", "job-years per CNY m", out / "cost_effectiveness.png")
        lines += ["![cost-effectiveness](cost_effectiveness.png)", ""]
    return lines


def shapley_table(manifest: dict[str, Any], table: pd.DataFrame) -> pd.DataFrame:
    study = manifest["study"]
    points, reps = len(study["labels"]), len(manifest["replicate_seeds"])
    frames = []
    for name, (column, label) in HEADLINE.items():
        found = shapley_values(value_matrix(table, column, points, reps), study["chains"], study["orderings"],
                               study["levers"])
        found.insert(1, "outcome", name)
        frames.append(found)
    return pd.concat(frames, ignore_index=True)


def _shapley_section(manifest: dict[str, Any], table: pd.DataFrame, out: Path) -> list[str]:
    study = manifest["study"]
    values = shapley_table(manifest, table)
    values.to_csv(out / "shapley.csv", index=False)
    lines = ["## Shapley decomposition of the full package's effect (full package minus no policy)", "",
             f"{len(study['orderings'])} sampled orderings of the {len(study['levers'])} levers"
             f"{' (antithetic pairs)' if manifest['experiment']['design'].get('antithetic', True) else ''}, common random "
             "numbers across coalitions. Each cell: Shapley value ± 1.96 x the combined standard error "
             "(sampling of orderings and of seeds; columns *se perm.* / *se seed* in `shapley.csv`). The values sum to "
             "the total in every ordering and replicate.", "",
             "| lever | " + " | ".join(HEADLINE[o][1] for o in HEADLINE) + " |", "|---|" + "---|" * len(HEADLINE)]
    for lever in [*study["levers"], "total"]:
        cells = []
        for outcome in HEADLINE:
            row = values[(values.lever == lever) & (values.outcome == outcome)].iloc[0]
            cells.append(_cell(row["phi"], row["ci"]))
        lines.append(f"| {_short(lever) if lever != 'total' else '**total**'} | " + " | ".join(cells) + " |")
    lines.append("")
    for outcome in ("output", "employment", "net_fiscal_cost"):
        part = values[(values.outcome == outcome) & (values.lever != "total")]
        name = f"shapley_{outcome}.png"
        _bar_figure(part, "phi", "ci", f"Shapley values: {HEADLINE[outcome][1]} (± 1.96 se)", HEADLINE[outcome][1], out / name)
        lines += [f"![shapley {outcome}]({name})", ""]
    return lines


def _interactions_section(manifest: dict[str, Any], table: pd.DataFrame, out: Path) -> list[str]:
    study = manifest["study"]
    points, reps = len(study["labels"]), len(manifest["replicate_seeds"])
    frames = []
    for name, (column, label) in HEADLINE.items():
        found = interaction_effects(value_matrix(table, column, points, reps), study["pairs"])
        found.insert(1, "outcome", name)
        frames.append(found)
    values = pd.concat(frames, ignore_index=True)
    values.to_csv(out / "interactions.csv", index=False)
    reference = "the full package" if study["reference"] == "full" else "no policy"
    lines = ["## Pairwise interactions", "",
             f"Other levers as in {reference}. Interaction = v(both on) - v(first only) - v(second only) + v(neither), "
             "paired by replicate: positive = complements (together they add more than apart), negative = substitutes.",
             "", "| pair | " + " | ".join(HEADLINE[o][1] for o in HEADLINE) + " |", "|---|" + "---|" * len(HEADLINE)]
    for pair in values["pair"].unique():
        cells = []
        for outcome in HEADLINE:
            row = values[(values.pair == pair) & (values.outcome == outcome)].iloc[0]
            cell = _cell(row["mean"], row["ci"])
            cells.append(cell if row["distinguishable"] else f"{cell} (n.d.)")
        a, b = pair.split(" x ")
        lines.append(f"| {_short(a)} x {_short(b)} | " + " | ".join(cells) + " |")
    lines += ["", "(n.d.): " + NOT_DISTINGUISHABLE + ".", ""]
    for outcome in ("output", "employment"):
        part = values[values.outcome == outcome].rename(columns={"pair": "lever"})
        name = f"interactions_{outcome}.png"
        _bar_figure(part, "mean", "ci", f"Interactions: {HEADLINE[outcome][1]} (95% CI)", HEADLINE[outcome][1], out / name)
        lines += [f"![interactions {outcome}]({name})", ""]
    return lines
