"""The ``sme-abm`` command line: a thin layer over the Python API.

Every user error (bad config, bad override, unreadable file) ends with one
line on stderr naming the file and key, and exit status 2.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .config import load_config, parse_override
from .errors import ConfigError
from .levers import SECTION_TITLES, load_registry

class _OneLineErrors(typer.core.TyperGroup):
    """Usage errors (``--smes 1e3``, an unknown option) as one line and exit status 2, like every user error."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # typer's (vendored) click errors: bad option values, unknown options
            if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
                exc.show()  # type: ignore[attr-defined]
                sys.exit(getattr(exc, "exit_code", 2))
            where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
            error_console.print(f"error: {where}{' '.join(exc.format_message().split())}", markup=False)
            sys.exit(2)
        except typer.Abort:
            error_console.print("error: aborted", markup=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_OneLineErrors,
                  help="sme-abm: an agent-based model of a national SME support system.")
console = Console()
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, status: int = 2) -> None:
    error_console.print(f"error: {message}", markup=False)
    raise typer.Exit(status)


def os_reason(exc: OSError) -> str:
    """One line saying what went wrong with a file operation, e.g. ``No space left on device: /x``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename and str(exc.filename) not in reason:
        reason = f"{reason}: {exc.filename}"
    return " ".join(reason.split())


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc))
        except (FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            fail(str(exc))
        except OSError as exc:
            fail(os_reason(exc))

    return wrapper


def check_out_dir(out: Path, *, empty: bool = True) -> None:
    """Refuse an ``--out`` that could not be written (or, with ``empty``, that holds files),
    before any work starts; nothing is created."""
    if out.exists() and (not out.is_dir() or (empty and any(out.iterdir()))):
        raise ConfigError("--out", str(out), "already exists and is not an empty folder" if empty else "is not a folder")
    ancestor = out if out.exists() else out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError("--out", str(out), f"{ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError("--out", str(out), f"{ancestor} is not writable")


def parse_overrides(values: Optional[List[str]]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for text in values or []:
        keys, value = parse_override(text)
        overrides[".".join(keys)] = value
    return overrides


@app.command("run")
@handle_errors
def run_command(
    config: Path = typer.Argument(..., help="A TOML config, e.g. configs/baseline.toml."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Months to simulate."),
    smes: Optional[int] = typer.Option(None, "--smes", help="SMEs at the start."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (default results/runs/<name>-<time>/)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key: --set levers.p13_financing_guarantee.enabled=false"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or table."),
    from_state: Optional[Path] = typer.Option(None, "--from-state", help="Continue from a saved state (sme-abm burn-in, --save-state): --steps more months."),
    save_state: Optional[Path] = typer.Option(None, "--save-state", help="Also write the final state to this folder."),
    applications: bool = typer.Option(False, "--applications", help="Also write applications.parquet, one row per "
                                      "credit application (what sme_abm.quasi_experiments reads)."),
) -> None:
    """Run one config and write its results."""
    from .runner import default_out_dir, run, write_results
    from .state import check_compatible, read_header

    overrides = parse_overrides(set_)
    for key, value in (("simulation.steps", steps), ("simulation.n_smes", smes), ("simulation.seed", seed)):
        if value is not None:
            overrides[key] = value
    resolved = load_config(config, overrides)
    target = out or default_out_dir(resolved)
    check_out_dir(target)
    if save_state is not None:
        _require_empty("--save-state", save_state)
    start = 0
    if from_state is not None:
        header = read_header(from_state)
        check_compatible(header, resolved, from_state)
        start = int(header["month"]) + 1
    total = resolved.simulation.steps
    # the firm panel streams to a scratch file during the run (memory does not grow with it)
    scratch = Path(tempfile.mkdtemp(prefix=".sme-abm-panel-"))
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("months"),
                      TimeRemainingColumn(), console=console, transient=True, disable=quiet) as bar:
            burn_in = 0 if from_state is not None else resolved.simulation.burn_in_months
            warm = bar.add_task("burn-in (baseline policy)", total=burn_in, visible=burn_in > 0)
            task = bar.add_task(f"{resolved.name} ({resolved.simulation.n_smes:,} SMEs)", total=total)

            def advance(month: int) -> None:
                if month < 0:  # burn-in months are numbered -burn_in .. -1
                    bar.update(warm, completed=burn_in + month + 1)
                else:
                    bar.update(task, completed=month + 1 - start)

            result = run(resolved, progress=advance, panel_file=scratch / "firm_panel.parquet",
                         from_state=from_state, save_state=save_state, record_applications=applications)
        try:
            path = write_results(result, target)
        except OSError as exc:  # not writable, disk full: write_results left nothing behind
            fail(f"{target}: cannot write results ({os_reason(exc)}); nothing was written")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not quiet:
        console.print(summary_table(result.summary, resolved.name))
    console.print(f"results written to {path}/")
    warn_population_edges(result.summary)


def warn_population_edges(summary: dict[str, Any]) -> None:
    """One warning line when the SME population died out or grew past the documented bound."""
    from .invariants import POPULATION_BOUND

    if summary.get("extinct"):
        error_console.print(f"warning: every SME had exited by month {summary['extinct_month']} "
                            "(summary.json: extinct = true); firm averages are null from then on", markup=False)
    elif summary.get("sme_count_ratio_max", 0) > POPULATION_BOUND:
        error_console.print(f"warning: the SME population grew to {summary['sme_count_ratio_max']:.1f}x its start, "
                            f"past the {POPULATION_BOUND:g}x bound (summary.json: sme_count_ratio_max)", markup=False)


def _require_empty(option: str, target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(option, str(target), "already exists and is not an empty folder")


@app.command("burn-in")
@handle_errors
def burn_in_command(
    config: Path = typer.Argument(..., help="A TOML config, e.g. configs/baseline.toml."),
    months: int = typer.Option(..., "--months", min=1, help="Months to run before saving."),
    out: Path = typer.Option(..., "--out", help="Folder for the saved state."),
    smes: Optional[int] = typer.Option(None, "--smes", help="SMEs at the start."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Run a config for --months and save the state studies start from (--from-state)."""
    from .model import SMEEconomy

    overrides = parse_overrides(set_)
    for key, value in (("simulation.n_smes", smes), ("simulation.seed", seed)):
        if value is not None:
            overrides[key] = value
    resolved = load_config(config, overrides)
    check_out_dir(out)
    model = SMEEconomy(resolved)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("months"),
                  TimeRemainingColumn(), console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"burn-in {resolved.name} ({resolved.simulation.n_smes:,} SMEs)", total=months)
        model.run(months, progress=lambda month: bar.update(task, completed=month + 1))
    try:
        path = model.save_state(out)
    except OSError as exc:
        fail(f"{out}: cannot write the state ({os_reason(exc)}); nothing was written")
    console.print(f"state after {months} months written to {path}/")


def summary_table(summary: dict[str, Any], name: str) -> Table:
    table = Table(title=f"sme-abm run: {name}", show_header=True, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("SMEs at start / end", f"{summary['smes_start']:,} / {summary['smes_end']:,}"),
        ("annual exit rate", f"{summary['annual_exit_rate']:.1%}"),
        ("annual entry rate", f"{summary['annual_entry_rate']:.1%}"),
        ("mean employment", f"{summary['employment_mean']:,.0f}"),
        ("mean monthly output (CNY m)", f"{summary['output_mean']:,.1f}"),
        ("credit granted, total (CNY m)", f"{summary['credit_granted_total']:,.1f}"),
        ("credit rationed (value refused / demanded, per episode)", f"{summary['credit_rationed_share']:.1%}"),
        ("creditworthy applicants refused (per episode)", f"{summary['creditworthy_refused_episode_share']:.1%}"),
        ("new-loan rate, mean", f"{summary['new_loan_rate_mean']:.2%}"),
        ("loan-rate spread over LPR, end", f"{summary['loan_rate_spread_end'] * 1e4:,.0f} bp"),
        ("non-performing loan ratio, mean", f"{summary['npl_ratio_mean']:.2%}"),
        ("guarantees outstanding, end (CNY m)", f"{summary['guarantees_outstanding_end']:,.1f}"),
        ("max guarantor leverage", f"{summary['guarantor_leverage_max']:.1f}x"),
        ("SME share of procurement", f"{summary['procurement_sme_share']:.1%}"),
        ("fiscal cost of levers, total (CNY m)", f"{summary['fiscal_cost_total']:,.1f}"),
        ("tax revenue, total (CNY m)", f"{summary['tax_revenue_total']:,.1f}"),
        ("max accounting residual", f"{summary['accounting_residual_max']:.1e}"),
        ("run time", f"{summary.get('run_seconds', 0):.2f} s"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


@app.command("levers")
@handle_errors
def levers_command(
    config: Optional[Path] = typer.Argument(None, help="Show on/off and values in this config (default: all defaults)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key before showing."),
) -> None:
    """List the 25 policy levers."""
    resolved = load_config(config, parse_overrides(set_))
    registry = load_registry()
    records = []
    for lever in registry.levers:
        settings = resolved.lever(lever.key)
        records.append({
            "provision": lever.provision,
            "section": lever.section,
            "section_title": SECTION_TITLES[lever.section],
            "key": lever.key,
            "title": lever.title,
            "enabled": bool(settings.enabled),
            "parameters": {name: getattr(settings, name) for name in lever.parameters},
            "units": {name: p.unit for name, p in lever.parameters.items()},
        })
    if as_json:
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return
    table = Table(title=f"policy levers{' in ' + str(config) if config else ''}", header_style="bold")
    for column in ("#", "sec", "key", "title", "on", "main parameters"):
        table.add_column(column)
    for record in records:
        params = ", ".join(f"{k}={v:g}" for k, v in list(record["parameters"].items())[:3])
        table.add_row(str(record["provision"]), str(record["section"]), record["key"], record["title"],
                      "[green]on[/]" if record["enabled"] else "[red]off[/]", params)
    console.print(table)


@app.command("dynamics")
@handle_errors
def dynamics_command(
    run_dir: Path = typer.Argument(..., help="A results folder written by `sme-abm run`."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default RUN_DIR/firm_dynamics/)."),
) -> None:
    """Report the firm population's dynamics: size distribution and tail exponent, size by age,
    growth rates, exit rates by age and size class, size-class transitions."""
    import pandas as pd

    from .atomic import staged_folder
    from .firm_dynamics import firm_dynamics, write_report
    from .size_distribution import VARIANCE_RATIO_YEARS

    panel_file, exits_file = run_dir / "firm_panel.parquet", run_dir / "exits.parquet"
    for path in (panel_file, exits_file):
        if not path.is_file():
            raise ConfigError(str(run_dir), path.name, "not found: give a folder written by `sme-abm run`")
    target = out or run_dir / "firm_dynamics"
    check_out_dir(target)
    try:
        dynamics = firm_dynamics(pd.read_parquet(panel_file), pd.read_parquet(exits_file))
    except ValueError as exc:
        raise ConfigError(str(run_dir), panel_file.name, str(exc)) from None
    with staged_folder(target) as staging:
        write_report(dynamics, staging)
    head = dynamics.headline()
    table = Table(title=f"firm dynamics, month {dynamics.snapshot} ({dynamics.firms:,} firms)", header_style="bold")
    table.add_column("figure")
    table.add_column("value")
    table.add_row("upper-tail exponent of employment (MLE)", f"{head['tail_exponent']:.3f}")
    table.add_row("tail exponent implied by the tail's growth and exits", f"{head['implied_tail_exponent']:.3f}")
    table.add_row("annual exit rate of firms in the upper tail", f"{head['tail_exit_rate']:.1%}")
    table.add_row(f"variance ratio of growth, {VARIANCE_RATIO_YEARS} years over 1 (1: Gibrat)",
                  f"{head['growth_variance_ratio']:.3f}")
    table.add_row("employment in firms younger than 5 years", f"{head['young_employment_share']:.1%}")
    table.add_row("annual growth rate sd", f"{head['growth_sd']:.3f}")
    table.add_row("mean size, 10+ years over under 2", f"{head['size_ratio_10y_to_young']:.2f}")
    table.add_row("high-growth firms (10+ employees, >20% a year for 3 years)", f"{head['high_growth_share']:.1%}")
    console.print(table)
    console.print(f"report written to {target}/report.md")


@app.command("validate")
@handle_errors
def validate_command(
    config: Optional[Path] = typer.Argument(None, help="Config to validate (default configs/baseline.toml)."),
    replicates: int = typer.Option(5, "--replicates", min=1, max=1000, help="Replicate seeds."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default results/validation/<name>-<time>/)."),
    smes: Optional[int] = typer.Option(None, "--smes", help="SMEs per run."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Months per run."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes (default: cores, at most 4)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Compare the model with real figures and write a report."""
    from dataclasses import asdict

    from .runner import default_out_dir
    from .validation import default_workers, validate

    overrides = {k: v for k, v in (("simulation.n_smes", smes), ("simulation.steps", steps)) if v is not None}
    resolved = load_config(config or Path("configs/baseline.toml"), overrides)
    target = out or default_out_dir(resolved, Path("results/validation"))
    check_out_dir(target, empty=False)
    with Progress(TextColumn("[bold]validation runs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task("runs", total=2 * replicates)
        results = validate(resolved, replicates=replicates, out=target, workers=workers or default_workers(),
                           progress=lambda: bar.advance(task))
    if as_json:
        sys.stdout.write(json.dumps([asdict(r) for r in results], indent=2, default=float) + "\n")
        return
    table = Table(title=f"validation of {resolved.name}", header_style="bold")
    for column in ("target", "role", "real figure", "model", "pass"):
        table.add_column(column)
    for r in results:
        table.add_row(r.name, r.role, r.target, f"{r.model:.4g} ± {r.ci:.2g} {r.unit}", "[green]yes[/]" if r.passed else "[red]no[/]")
    console.print(table)
    console.print(f"report written to {target}/report.md")


@app.command("estimate")
@handle_errors
def estimate_command(
    spec: Path = typer.Argument(..., help="An estimation file, e.g. experiments/estimation/estimation.toml."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder (default results/estimation/<name>/); an "
                                       "unfinished estimation there is resumed."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes (default: cores, at most 4)."),
    recover_truth: bool = typer.Option(False, "--recover", help="Instead of the real figures, estimate from moments "
                                       "simulated at the file's [recovery] values (the parameter-recovery check)."),
    smes: Optional[int] = typer.Option(None, "--smes", min=10, help="SMEs per run (default: the file's n_smes)."),
) -> None:
    """Estimate free parameters by the simulated method of moments on a surrogate."""
    from .estimation import load_spec, recover, recovered, estimate, write_report
    from .validation import default_workers

    loaded = load_spec(spec, {"n_smes": smes} if smes is not None else None)
    if recover_truth and not loaded.recovery:
        raise ConfigError(str(spec), "recovery", "--recover needs a [recovery] table of known parameter values")
    target = out or Path("results/estimation") / (spec.stem + ("-recovery" if recover_truth else ""))
    n = workers or default_workers()
    if recover_truth:
        _, found = recover(loaded, loaded.recovery, target, workers=n, progress=True)
        report = write_report(target / "estimate", loaded, found, truth=loaded.recovery)
        ok = recovered(loaded.recovery, found, loaded.parameters)
    else:
        found = estimate(loaded, target, workers=n, progress=True)
        report = write_report(target, loaded, found)
        ok = {}
    table = Table(title=f"estimate ({spec.name})", header_style="bold")
    for column in ("parameter", "estimate", "s.e.", *(["truth", "recovered"] if ok else [])):
        table.add_column(column)
    for name, value in found.parameters.items():
        extra = [f"{loaded.recovery[name]:.4g}", "[green]yes[/]" if ok[name] else "[red]no[/]"] if ok else []
        table.add_row(name, f"{value:.4g}", f"{found.standard_errors[name]:.3g}", *extra)
    console.print(table)
    console.print(f"loss {found.loss:.3g}; Jacobian rank {found.rank} of {len(found.parameters)}, condition number "
                  f"{found.condition_number:.3g}; report written to {report}")


@app.command("bench")
def bench_command(quick: bool = typer.Option(False, "--quick", help="Only 10^4 and 10^5 SMEs."),
                  as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Measure SME-steps/s, scaling and memory per SME against Mesa's BoltzmannWealth."""
    from .bench import main as bench_main

    bench_main(quick=quick, as_json=as_json)

from .experiments_cli import register as _register_experiment_commands  # noqa: E402

_register_experiment_commands(app)

@app.command("dashboard")
def dashboard_command(host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
                      port: int = typer.Option(8765, help="TCP port."),
                      allow_origin: list[str] = typer.Option(
                          [], "--allow-origin", help="Another origin (scheme://host:port) whose pages may drive "
                          "the dashboard; repeat for more."),
                      allow_host: list[str] = typer.Option(
                          [], "--allow-host", help="Another Host name the server answers to (e.g. the machine's "
                          "name when --host 0.0.0.0); repeat for more."),
                      results_root: list[str] = typer.Option(
                          [], "--results-root", help="A folder the results browser may open sweeps under "
                          "(default: the project's results/); repeat for more."),
                      max_sessions: int = typer.Option(10, help="Most sessions (open or recently closed pages) "
                                                       "at once.")) -> None:
    """Start the dashboard (a Solara app); open http://HOST:PORT in a browser."""
    from .dashboard.server import serve

    raise typer.Exit(serve(host, port, allow_origin, allow_host, results_root, max_sessions))


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
