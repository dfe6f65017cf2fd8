"""Kill a sweep at random moments, resume it, and check nothing is lost, doubled or torn.

Each trial starts ``sme-abm sweep`` on a small grid experiment (1,000 SMEs x
72 months per run), waits a random delay, sends SIGINT or SIGKILL (chosen at
random), checks that every file already written is intact and that no worker
process outlives the sweep, then runs ``sme-abm sweep ... --resume`` and checks
the finished folder: every planned run present exactly once, all ``ok``, every
``runs/*.json`` parseable, every ``timeseries/*.parquet`` readable with the
right run id and length, no temporary files, no lock.

    python benchmarks/fault_trials.py --trials 20 --seed 1     # ~4 minutes on 2 cores
    python benchmarks/fault_trials.py --trials 3 --runs 8      # ~1 minute

Prints a Markdown table of the trials and their outcomes; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "configs" / "baseline.toml"
STEPS = 72  # long enough that a random signal usually lands mid-sweep (runs got ~2x faster)

# fee_cap values x bank_share values x 2 replicates
GRIDS = {8: ([0.0, 0.02], [0.1, 0.3]), 12: ([0.0, 0.01, 0.02], [0.1, 0.3]), 18: ([0.0, 0.01, 0.02], [0.1, 0.2, 0.3])}


def write_experiment(folder: Path, runs: int) -> Path:
    fee_caps, bank_shares = GRIDS[runs]
    path = folder / f"trial-grid-{runs}.toml"
    path.write_text(f"""name = "trial-grid"
base = "{BASELINE}"
replicates = 2
entropy = 4242
[overrides]
"simulation.n_smes" = 1000
"simulation.steps" = {STEPS}
[design]
kind = "grid"
[design.parameters."levers.p13_financing_guarantee.fee_cap"]
values = {fee_caps}
[design.parameters."levers.p13_financing_guarantee.bank_share"]
values = {bank_shares}
""")
    return path


def _environment() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def _children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    """Children, grandchildren, ... of ``pid`` (the forkserver, its workers, the resource tracker)."""
    found, frontier = set(), {pid}
    while frontier:
        children = set().union(*(_children(p) for p in frontier)) - found
        found |= children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def intact_files(folder: Path) -> tuple[int, list[str]]:
    """Count finished runs and list problems: unparseable JSON, unreadable Parquet, ok runs without series."""
    problems = []
    finished = 0
    for path in sorted((folder / "runs").glob("*.json")) if (folder / "runs").exists() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        finished += 1
        if record.get("run_id") != path.stem:
            problems.append(f"{path.name}: run_id {record.get('run_id')}")
        if record.get("status") == "ok" and not (folder / "timeseries" / f"{path.stem}.parquet").exists():
            problems.append(f"{path.name}: ok but no time series")
    for path in sorted((folder / "timeseries").glob("*.parquet")) if (folder / "timeseries").exists() else []:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        if len(frame) != STEPS or not (frame["run_id"] == path.stem).all():
            problems.append(f"{path.name}: {len(frame)} rows")
    if (folder / "manifest.json").exists():
        try:
            json.loads((folder / "manifest.json").read_text())
        except ValueError as exc:
            problems.append(f"manifest.json: {exc}")
    return finished, problems


def check_complete(folder: Path, expected: int) -> list[str]:
    """Problems with a finished sweep folder (empty when it is complete and clean)."""
    problems = []
    try:
        table = pd.read_parquet(folder / "runs.parquet")
    except Exception as exc:  # noqa: BLE001
        return [f"runs.parquet unreadable: {exc}"]
    if len(table) != expected:
        problems.append(f"{len(table)} rows in runs.parquet, expected {expected}")
    if not table["run_id"].is_unique:
        problems.append("duplicate run ids in runs.parquet")
    if not (table["status"] == "ok").all():
        problems.append(f"not ok: {table.loc[table['status'] != 'ok', 'run_id'].tolist()}")
    records = sorted(p.stem for p in (folder / "runs").glob("*.json"))
    series = sorted(p.stem for p in (folder / "timeseries").glob("*.parquet"))
    if not records == series == sorted(table["run_id"]) == [f"{i:06d}" for i in range(expected)]:
        problems.append(f"{len(records)} records / {len(series)} series do not match the plan")
    problems += intact_files(folder)[1]
    if list(folder.rglob(".*.tmp")):
        problems.append("temporary files left")
    if (folder / ".lock").exists():
        problems.append("lock left")
    return problems


def trial(number: int, rng: random.Random, workdir: Path, experiment: Path, runs: int, max_delay: float) -> dict[str, Any]:
    """One kill-and-resume trial; returns its row of the table."""
    out = workdir / f"trial-{number:02d}"
    sig = rng.choice([signal.SIGINT, signal.SIGKILL])
    delay = round(rng.uniform(0.3, max_delay), 2)
    workers = rng.choice([1, 2])
    command = [sys.executable, "-m", "sme_abm", "sweep", str(experiment), "--out", str(out), "--quiet"]
    log = workdir / f"trial-{number:02d}.log"
    with open(log, "w") as stream:
        # a shell's background jobs inherit an ignored SIGINT; give the sweep the default
        # so that Ctrl-C reaches it as it would from a terminal
        process = subprocess.Popen(command + ["--workers", str(workers)], cwd=ROOT, env=_environment(),
                                   stdout=stream, stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    workers_seen = _descendants(process.pid)
    ended_before = process.poll() is not None
    if not ended_before:
        process.send_signal(sig)
    hung = False
    try:
        status = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        hung = True  # still running 120 s after the signal: kill it, report it
        process.kill()
        status = process.wait()
    deadline = time.monotonic() + 15  # orphaned workers notice a dead parent within 0.5 s (slower under load)
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers_seen):
        time.sleep(0.2)
    orphans = [pid for pid in workers_seen if _alive(pid)]
    done_at_kill, problems = intact_files(out)
    lock_at_kill = (out / ".lock").exists()
    expected_status = {signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}[sig]
    # Ctrl-C while Python is still importing (before the sweep has written anything) is
    # Python's own KeyboardInterrupt: status -2 and a traceback, nothing to resume.
    during_startup = sig == signal.SIGINT and status == -signal.SIGINT and not out.exists()
    # Ctrl-C after the sweep has printed its summary lands in Python's own shutdown (half a
    # second of freeing modules, with the default SIGINT action restored): the process dies by
    # SIGINT, which a shell reports as 130 too. Everything was written; resume has nothing to do.
    summary_printed = " runs: " in log.read_text() and "results in" in log.read_text()
    during_shutdown = sig == signal.SIGINT and status == -signal.SIGINT and summary_printed
    # A signal sent while the finished sweep is already inside its final exit (the kernel
    # freeing its memory) changes nothing: status 0, everything written. Seen in a
    # clean-clone run with SIGKILL 3.07 s into a 3-second sweep.
    ended_before = ended_before or (status == 0 and summary_printed)
    if hung:
        problems.append(f"still running 120 s after {sig.name} (hung); SIGKILLed; log {log}")
    elif not ended_before and status != expected_status and not (during_startup or during_shutdown):
        problems.append(f"killed sweep exited {status}, expected {expected_status}")
    if sig == signal.SIGINT and (out / ".lock").exists():
        problems.append("SIGINT left the lock behind")
    if orphans:
        problems.append(f"orphaned workers {orphans}")
    clock = time.perf_counter()
    resumed = subprocess.run(command + ["--workers", "2", "--resume"], cwd=ROOT, env=_environment(),
                             capture_output=True, text=True, timeout=600)
    resume_seconds = time.perf_counter() - clock
    if resumed.returncode != 0:
        problems.append(f"resume exited {resumed.returncode}: {resumed.stderr.strip()[-200:]}")
    problems += check_complete(out, runs)
    sessions = json.loads((out / "manifest.json").read_text())["sessions"] if (out / "manifest.json").exists() else []
    rerun = sessions[-1]["to_run"] if sessions else None
    return {"trial": number, "signal": sig.name, "delay_s": delay, "workers": workers,
            "finished_before_kill": ended_before, "during_startup": during_startup, "during_shutdown": during_shutdown, "exit_status": status, "runs_done_at_kill": done_at_kill,
            "lock_left_by_kill": lock_at_kill, "resume_status": resumed.returncode,
            "runs_rerun": rerun, "sessions": len(sessions), "resume_s": round(resume_seconds, 1),
            "outcome": "pass" if not problems else "FAIL: " + "; ".join(problems)}


def run_trials(trials: int, seed: int, runs: int = 18, max_delay: float = 5.0,
               workdir: Path | None = None) -> list[dict[str, Any]]:
    """Run ``trials`` kill-and-resume trials; returns one row per trial."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="fault-trials-") as scratch:
        folder = workdir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        experiment = write_experiment(folder, runs)
        return [trial(i + 1, rng, folder, experiment, runs, max_delay) for i in range(trials)]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    columns = ["trial", "signal", "delay_s", "workers", "exit_status", "runs_done_at_kill", "lock_left_by_kill", "runs_rerun",
               "resume_status", "resume_s", "outcome"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        shown = dict(row)
        if row["finished_before_kill"]:
            shown["exit_status"] = f"{row['exit_status']} (done before the signal)"
        elif row["during_startup"]:
            shown["exit_status"] = f"{row['exit_status']} (still importing; nothing written)"
        elif row.get("during_shutdown"):
            shown["exit_status"] = f"{row['exit_status']} (sweep done; Python shutting down)"
        lines.append("| " + " | ".join(str(shown[c]) for c in columns) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=18, choices=sorted(GRIDS))
    parser.add_argument("--max-delay", type=float, default=5.0, help="Longest wait before the signal (s).")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the trial folders here (default: a temp dir).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows as JSON here.")
    args = parser.parse_args()
    clock = time.perf_counter()
    rows = run_trials(args.trials, args.seed, args.runs, args.max_delay, args.workdir)
    print(markdown_table(rows))
    failed = sum(row["outcome"] != "pass" for row in rows)
    by_signal = {name: sum(r["signal"] == name for r in rows) for name in ("SIGINT", "SIGKILL")}
    print(f"\n{len(rows)} trials ({by_signal['SIGINT']} SIGINT, {by_signal['SIGKILL']} SIGKILL), "
          f"{len(rows) - failed} passed, {failed} failed, {time.perf_counter() - clock:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
