"""``sme-abm sweep`` and ``sme-abm reproduce``: thin commands over :mod:`sme_abm.sweep`.

Exit status: 0 when every run is ok (or reproduces), 1 when any run failed or
was lost (or does not reproduce), 2 on a user error (bad experiment file,
locked or occupied results folder) or when the results cannot be written (folder
not writable, disk full: finished runs are kept for ``--resume``), 130 when
interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli import console, error_console, fail, handle_errors, os_reason


def sweep_command(
    experiment: Path = typer.Argument(..., help="An experiment file, e.g. configs/experiments/smoke.toml."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes (default: all cores)."),
    backend: str = typer.Option("local", "--backend", help="local (process pool) or dask."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler tcp://HOST:PORT (default: a LocalCluster)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (default results/sweeps/<experiment name>/)."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted sweep in --out without redoing finished runs."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    max_runs: int = typer.Option(100_000, "--max-runs", min=1, help="Refuse designs with more runs than this."),
) -> None:
    """Run a parameter sweep (grid, random, LHS, Sobol or Morris design) and write its results."""
    from .sweep import SweepLockedError, sweep, sweep_failed
    from .sweep.experiment import load_experiment

    loaded = load_experiment(experiment)
    target = out or Path("results/sweeps") / loaded.name
    try:
        table = sweep(loaded, workers=workers, backend=backend, scheduler=scheduler, out=target, resume=resume,
                      progress=not quiet, max_runs=max_runs, report=lambda line: error_console.print(f"warning: {line}", markup=False))
    except SweepLockedError as exc:
        fail(str(exc))
    except OSError as exc:  # folder not writable, disk full: the user must fix it, like a bad argument
        if not (target / "manifest.json").exists():
            fail(f"{target}: cannot write results ({os_reason(exc)}); no sweep was started")
        fail(f"{target}: cannot write results ({os_reason(exc)}); finished runs are kept; "
             f"fix it and resume with: sme-abm sweep {experiment} --out {target} --resume")
    except MemoryError:
        fail(f"{experiment}: the design does not fit in memory; shrink it (see --max-runs)")
    except KeyboardInterrupt:
        console.print(f"interrupted; finished runs are kept. Resume with: sme-abm sweep {experiment} --out {target} --resume")
        raise typer.Exit(130)
    counts = table["status"].value_counts().to_dict()
    console.print(f"{len(table)} runs: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                  + f"; results in {target}/")
    if sweep_failed(table):
        raise typer.Exit(1)


def reproduce_command(
    folder: Path = typer.Argument(..., help="A sweep's results folder."),
    runs: Optional[int] = typer.Option(None, "--runs", help="Rerun only K sampled runs (default all)."),
) -> None:
    """Rerun a sweep's runs from its manifest and check every result they published matches bit for bit."""
    from .sweep import reproduce

    def show(run_id: str, matches: bool, verdict: str) -> None:
        console.print(f"{run_id}: {'OK' if matches else 'MISMATCH'} ({verdict})", markup=False)

    verdicts = reproduce(folder, runs, report=show)
    bad = sum(not matches for _, matches, _ in verdicts)
    console.print(f"{len(verdicts) - bad}/{len(verdicts)} runs reproduced bit for bit")
    if bad:
        raise typer.Exit(1)


def study_report_command(
    folder: Path = typer.Argument(..., help="The results folder of a study sweep (knockout, knockin, shapley, interactions)."),
) -> None:
    """Write the study's report (effects with 95% CIs, power, Shapley values, interactions,
    cost-effectiveness; Markdown tables and figures) into FOLDER/study/."""
    from .sweep.study_report import write_study_report

    path = write_study_report(folder)
    console.print(f"study report written to {path}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the experiment commands to the ``sme-abm`` app."""
    app.command("sweep")(handle_errors(sweep_command))
    app.command("reproduce")(handle_errors(reproduce_command))
    study = typer.Typer(no_args_is_help=True, help="Policy studies run by `sme-abm sweep` (see docs/sweeps.md).")
    study.command("report")(handle_errors(study_report_command))
    app.add_typer(study, name="study")
