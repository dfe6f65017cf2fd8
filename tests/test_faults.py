"""Faults: a worker killed mid-run, the sweep killed at random moments, results that cannot be
written (folder not writable, disk full), torn and foreign locks. See docs/reliability.md."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sme_abm.cli import app
from sme_abm.sweep import reproduce
from sme_abm.sweep.store import SweepLockedError, SweepStore

from conftest import CONFIGS, ROOT
from test_sweep import SMOKE, assert_complete, run_cli_env

runner = CliRunner()


def load_fault_trials():
    spec = importlib.util.spec_from_file_location("fault_trials", ROOT / "benchmarks" / "fault_trials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def assert_finished_files_intact(out: Path) -> int:
    """Every run file written so far parses; every time series reads; no temporaries."""
    records = sorted((out / "runs").glob("*.json"))
    for path in records:
        record = json.loads(path.read_text())
        if record["status"] == "ok":
            assert len(pd.read_parquet(out / "timeseries" / f"{path.stem}.parquet")) == 24
    assert not list(out.rglob(".*.tmp"))
    return len(records)


# -- a worker process killed in the middle of a run -------------------------------------------


def test_worker_killed_mid_run_is_rerun_and_sweep_completes(tmp_path: Path) -> None:
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    done = run_cli_env(["sweep", str(SMOKE), "--out", str(out), "--workers", "2", "--quiet"],
                       {"SME_ABM_SWEEP_KILL_RUNS": "000002", "SME_ABM_SWEEP_KILL_MARKERS": str(markers)})
    assert done.returncode == 0, done.stderr
    assert (markers / "kill-000002").exists()  # the worker really was killed once
    assert_complete(out, 8)
    session = json.loads((out / "manifest.json").read_text())["sessions"][0]
    assert session["executor_restarts"] >= 1 and "000002" in session["lost_runs"]
    assert "BrokenProcessPool" in session["lost_runs"]["000002"]
    assert session["ok"] == 8 and session["lost"] == 0


def test_run_that_always_kills_its_worker_is_recorded_failed_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli_env(["sweep", str(SMOKE), "--out", str(out), "--workers", "2", "--quiet"],
                       {"SME_ABM_SWEEP_KILL_RUNS": "000005"})
    assert done.returncode == 1, done.stderr
    table = pd.read_parquet(out / "runs.parquet")
    failed = table[table["status"] != "ok"]
    assert list(failed["run_id"]) == ["000005"]  # the runs lost beside it were rerun and finished
    assert "worker died on each of 3 attempts" in failed["error"].iloc[0]
    done = run_cli_env(["sweep", str(SMOKE), "--out", str(out), "--resume", "--quiet"], {})
    assert done.returncode == 0, done.stderr
    assert_complete(out, 8)


# -- the sweep itself killed at random moments ------------------------------------------------


@pytest.mark.trials
def test_random_kills_then_resume_three_trials(tmp_path: Path) -> None:
    trials = load_fault_trials()
    rows = trials.run_trials(3, seed=11, runs=8, max_delay=3.5, workdir=tmp_path)
    assert [row["outcome"] for row in rows] == ["pass"] * 3, trials.markdown_table(rows)


# -- results that cannot be written ---------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_disk_full_mid_sweep_one_line_exit_2_finished_runs_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                code: int) -> None:
    out = tmp_path / "out"
    real_replace = os.replace
    written: list[str] = []

    def replace(source, target, *args, **kwargs):
        if Path(target).is_relative_to(out):
            if len(written) >= 3:  # after 3 run records the disk is full, for every file
                raise OSError(code, os.strerror(code), str(source))
            if Path(target).parent.name == "runs":
                written.append(Path(target).stem)
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    result = runner.invoke(app, ["sweep", str(SMOKE), "--out", str(out), "--workers", "1", "--quiet"])
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert str(out) in line and os.strerror(code) in line and "--resume" in line
    assert assert_finished_files_intact(out) == 3
    assert not (out / ".lock").exists()
    monkeypatch.setattr(os, "replace", real_replace)  # space freed: resume finishes the sweep
    result = runner.invoke(app, ["sweep", str(SMOKE), "--out", str(out), "--workers", "1", "--quiet", "--resume"])
    assert result.exit_code == 0, result.output
    assert_complete(out, 8)


def test_out_under_a_file_one_line_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "results"):
        result = runner.invoke(app, ["sweep", str(SMOKE), "--out", str(out), "--workers", "1", "--quiet"])
        assert result.exit_code == 2, result.output
        assert str(blocker) in one_line(result.stderr)
    assert blocker.read_text() == "not a folder"


def test_out_not_writable_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "readonly"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root ignores the mode bits: refuse writes under out as the kernel would
        real_open, real_mkstemp = os.open, __import__("tempfile").mkstemp

        def deny_open(path, *args, **kwargs):
            if Path(path).is_relative_to(out):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", deny_open)
    try:
        result = runner.invoke(app, ["sweep", str(SMOKE), "--out", str(out), "--workers", "1", "--quiet"])
    finally:
        out.chmod(0o755)
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert str(out) in line and "Permission denied" in line
    assert list(out.iterdir()) == []


def test_run_command_disk_full_or_not_writable_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["run", str(CONFIGS / "baseline.toml"), "--smes", "30", "--steps", "2", "--quiet"]
    # disk full while the files are written
    out = tmp_path / "full" / "run"
    real_to_parquet = pd.DataFrame.to_parquet
    calls = []

    def full_disk(self, *a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_to_parquet(self, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    result = runner.invoke(app, [*args, "--out", str(out)])
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real_to_parquet)
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert str(out) in line and "No space left on device" in line and "nothing was written" in line
    assert not out.exists() and list(out.parent.iterdir()) == []  # no .partial staging folder either
    # disk full at the final rename
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    result = runner.invoke(app, [*args, "--out", str(out)])
    monkeypatch.setattr(os, "replace", real_replace)
    assert result.exit_code == 2 and "No space left on device" in one_line(result.stderr)
    assert not out.exists() and list(out.parent.iterdir()) == []
    # out below a file
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = runner.invoke(app, [*args, "--out", str(blocker / "run")])
    assert result.exit_code == 2 and str(blocker) in one_line(result.stderr)
    assert blocker.read_text() == "x"


# -- two sweeps into one folder: locks ----------------------------------------------------


def test_lock_of_another_host_is_refused_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": 1, "hostname": "elsewhere.example"}))
    result = runner.invoke(app, ["sweep", str(SMOKE), "--out", str(out), "--workers", "1", "--quiet"])
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "elsewhere.example" in line and "delete" in line
    assert json.loads((out / ".lock").read_text())["hostname"] == "elsewhere.example"  # left alone


def test_live_lock_is_refused_and_release_lets_the_next_sweep_in(tmp_path: Path) -> None:
    first, second = SweepStore(tmp_path / "out"), SweepStore(tmp_path / "out")
    first.acquire_lock()
    holder = json.loads(first.lock_path.read_text())
    assert holder == {"pid": os.getpid(), "hostname": socket.gethostname()}
    with pytest.raises(SweepLockedError, match=f"pid {os.getpid()}"):
        second.acquire_lock()
    first.release_lock()
    assert not first.lock_path.exists()
    # a live process (here: a child that took the lock and sleeps) refuses the next sweep
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from sme_abm.sweep.store import SweepStore; "
                              "SweepStore(sys.argv[1]).acquire_lock(); print('locked', flush=True); time.sleep(60)",
                              str(second.root)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(SweepLockedError, match=f"pid {child.pid}"):
            second.acquire_lock()
    finally:
        child.kill()
        child.wait()
    assert json.loads(second.lock_path.read_text())["pid"] == child.pid  # the killed holder's file stays
    second.acquire_lock()  # but the kernel dropped its lock: taken over at once
    assert json.loads(second.lock_path.read_text())["pid"] == os.getpid()
    second.release_lock()
    assert not second.lock_path.exists()


@pytest.mark.parametrize("content", ["", "{", "5", "\x00\x00", '{"hostname": "h"}'])
def test_torn_lock_file_is_taken_over_at_once(tmp_path: Path, content: str) -> None:
    store = SweepStore(tmp_path / "out")
    store.root.mkdir()
    store.lock_path.write_text(content)  # a sweep killed between creating the lock and writing it
    started = time.monotonic()
    store.acquire_lock()
    assert time.monotonic() - started < 1
    assert json.loads(store.lock_path.read_text())["pid"] == os.getpid()
    store.release_lock()


LOCK_CONTENDER = """
import sys, time
from sme_abm.sweep import reproduce
from sme_abm.sweep.store import SweepLockedError, SweepStore
for line in sys.stdin:
    folder, start = line.split()
    store = SweepStore(folder)
    while time.time() < float(start):  # both contenders start at the same instant
        pass
    try:
        store.acquire_lock()
        print("won", flush=True)
    except SweepLockedError:
        print("lost", flush=True)
    sys.stdin.readline()  # hold the lock until both contenders have answered
    store.release_lock()
    print("released", flush=True)
"""


def test_two_processes_racing_for_a_stale_lock_never_both_win(tmp_path: Path) -> None:
    """400 trials: two real processes take over the same stale lock at once; exactly one may win."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = json.dumps({"pid": int(dead.stdout), "hostname": socket.gethostname()})
    contenders = [subprocess.Popen([sys.executable, "-c", LOCK_CONTENDER], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    winners = []
    try:
        for trial in range(400):
            folder = tmp_path / f"t{trial}"
            folder.mkdir()
            (folder / ".lock").write_text(stale)
            start = time.time() + 0.02
            for process in contenders:
                process.stdin.write(f"{folder} {start}\n")
                process.stdin.flush()
            answers = [process.stdout.readline().strip() for process in contenders]
            winners.append(answers.count("won"))
            for process in contenders:
                process.stdin.write("release\n")
                process.stdin.flush()
            assert [process.stdout.readline().strip() for process in contenders] == ["released"] * 2
            assert set(answers) <= {"won", "lost"}, answers
    finally:
        for process in contenders:
            process.stdin.close()
            process.wait(timeout=30)
    assert len(winners) == 400
    assert winners.count(2) == 0, f"{winners.count(2)} of 400 trials had two holders"
    assert winners.count(0) == 0, f"{winners.count(0)} of 400 trials had no holder"


# -- a killed sweep leaves no process behind, and none holds its pipes --------------------------


def _kill_moments():
    """When to SIGKILL the sweep: at once (still importing), when its manifest appears (pool
    starting), as soon as its forkserver exists (still preloading the model), after its first
    finished run (workers busy). Each moment is an event, not a delay, so a loaded machine
    changes only how long the test waits."""
    return ["start", "manifest", "forkserver", "first-run"]


def command_line(process) -> str:
    """A process's command line, or "" once it has gone (``git`` started by the sweep comes and goes)."""
    import psutil

    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _wait_dead(processes, deadline: float) -> list:
    """Wait until every process has exited (a zombie counts: it has exited and holds no file,
    it only waits for init to reap it) or the deadline passes; returns those still running."""
    import psutil

    def running(process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    alive = [p for p in processes if running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if running(p)]
    return alive


@pytest.mark.parametrize(("backend", "moment"), [("local", moment) for moment in _kill_moments()] + [
    pytest.param("dask", moment, marks=pytest.mark.trials) for moment in ("manifest", "workers", "first-run")])
def test_killed_sweep_leaves_no_process_holding_its_pipes(tmp_path: Path, backend: str, moment: str) -> None:
    """SIGKILL a sweep started with Popen(stdout=PIPE, stderr=PIPE) at an event (issue 19 item 2):
    no helper ever holds its stdout or stderr, communicate() returns within 5 s and every
    process it started is gone within 2 s of the kill.
    With ``--backend dask`` (a LocalCluster): when its manifest appears (cluster starting), as
    soon as a Dask worker process exists, after its first finished run."""
    import subprocess
    import sys

    import psutil

    from test_sweep import SLOW_RUNS, grid_experiment

    experiment = grid_experiment(tmp_path, [0.0, 0.01, 0.02], [0.1, 0.2], replicates=4, **SLOW_RUNS)
    out = tmp_path / "out"
    sweep = subprocess.Popen([sys.executable, "-m", "sme_abm", "sweep", str(experiment), "--out", str(out),
                              "--workers", "2", "--quiet", "--backend", backend],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    descendants: dict[int, psutil.Process] = {}
    lines: dict[int, str] = {}  # command lines, taken while the processes live

    holding: dict[int, str] = {}  # helpers seen with the sweep's stdout or stderr open

    def sweep_pipe(fd: int) -> str:
        with contextlib.suppress(OSError):
            return os.readlink(f"/proc/{sweep.pid}/fd/{fd}")
        return "?"

    pipes = {sweep_pipe(1), sweep_pipe(2)} - {"?"}

    def look() -> None:
        for child in psutil.Process(sweep.pid).children(recursive=True):
            descendants.setdefault(child.pid, child)
            lines[child.pid] = lines.get(child.pid) or command_line(child)
            line = lines[child.pid]
            if "python" not in line.split(" ")[0] or " sme_abm sweep " in line:
                continue  # git, or a child between fork and exec (it still shows the sweep's command line)
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{child.pid}/fd/{fd}") in pipes:
                        holding[child.pid] = line[:90]

    deadline = time.monotonic() + 120
    ready_at = None
    while time.monotonic() < deadline and sweep.poll() is None:
        look()
        if moment == "start":
            break
        if ready_at is None and (out / "manifest.json").exists():
            ready_at = time.monotonic()
        if moment == "manifest" and ready_at is not None:
            break
        if moment == "forkserver" and any("forkserver" in line for line in lines.values()):
            break
        if moment == "workers" and (sum("spawn_main" in line for line in lines.values()) >= 2  # spawned
                                    or sum("forkserver" in line for line in lines.values()) >= 3):  # forked
            break
        if moment == "first-run" and list((out / "runs").glob("*.json")):
            break
        time.sleep(0.01)
    assert sweep.poll() is None, "the sweep ended before it could be killed; the test proved nothing"
    look()
    sweep.kill()
    assert not holding, f"helpers held the sweep's stdout or stderr ({backend}, {moment}): {holding}"
    killed = time.monotonic()
    try:
        sweep.communicate(timeout=5)  # returns once no process holds the sweep's stdout and stderr
    except subprocess.TimeoutExpired:
        holders = [(p.pid, command_line(p)[:90]) for p in descendants.values() if p.is_running()]
        for process in descendants.values():
            with contextlib.suppress(psutil.Error):
                process.kill()
        sweep.communicate()
        pytest.fail(f"communicate() still blocked 5 s after the kill ({backend}, {moment}); alive: {holders}")
    returned = time.monotonic() - killed
    # Python helpers (forkserver, resource tracker, pool or Dask workers; not a passing git) are
    # gone within 2 s. A local sweep killed while its forkserver is still importing sme_abm (its
    # guard runs after the package import: 1-2 s under load) gets 5 s, like every other process.
    helpers = [p for pid, p in descendants.items() if "python" in lines.get(pid, "").split(" ")[0]]
    limit = 5 if backend == "local" and moment in ("manifest", "forkserver") else 2
    alive = _wait_dead(helpers, killed + limit)
    gone_after = time.monotonic() - killed
    names = [(p.pid, lines.get(p.pid, "")[:90]) for p in alive]
    stragglers = _wait_dead(list(descendants.values()), killed + 5)
    for process in stragglers:
        with contextlib.suppress(psutil.Error):
            process.kill()
    assert not alive, f"still alive {limit} s after the kill ({backend}, {moment}): {names}"
    assert not stragglers, f"still alive 5 s after the kill ({backend}, {moment}): {[p.pid for p in stragglers]}"
    print(f"{backend} {moment}: communicate() returned {returned:.2f} s, {len(helpers)} helpers gone "
          f"{gone_after:.2f} s after the kill")
    if moment == "first-run":
        assert len(descendants) >= 3, "the helpers and workers had not started; the test proved nothing"


# -- corrupt or edited results: checksums, resume and reproduce -------------------------------


@pytest.fixture(scope="module")
def finished_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "smoke"
    result = runner.invoke(app, ["sweep", str(SMOKE), "--out", str(out), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def copy_of(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "copy"))


def damage(out: Path) -> dict[str, str]:
    """Five finished runs damaged five ways; returns run id -> what was done."""
    series = out / "timeseries"
    data = (series / "000001.parquet").read_bytes()
    (series / "000001.parquet").write_bytes(data[: len(data) // 2])  # cut in half
    data = bytearray((series / "000002.parquet").read_bytes())
    data[100:160] = bytes(60)  # 60 bytes overwritten
    (series / "000002.parquet").write_bytes(bytes(data))
    frame = pd.read_parquet(series / "000004.parquet")
    frame.iloc[:-1].to_parquet(series / "000004.parquet", index=False)  # last row dropped
    record = json.loads((out / "runs" / "000003.json").read_text())
    record["summary"]["annual_exit_rate"] = 0.999  # a result edited
    (out / "runs" / "000003.json").write_text(json.dumps(record))
    text = (out / "runs" / "000006.json").read_text()
    (out / "runs" / "000006.json").write_text(text[: len(text) // 2])  # record cut short
    return {"000001": "timeseries/000001.parquet", "000002": "timeseries/000002.parquet",
            "000004": "timeseries/000004.parquet", "000003": "000003.json", "000006": "000006.json"}


def test_resume_reruns_every_corrupt_finished_run_and_names_each(finished_smoke: Path, tmp_path: Path) -> None:
    out = copy_of(finished_smoke, tmp_path)
    damaged = damage(out)
    result = runner.invoke(app, ["sweep", str(SMOKE), "--out", str(out), "--resume", "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 5, result.stderr
    for run_id, name in damaged.items():
        assert sum(f"run {run_id} is corrupt" in line and name in line for line in warnings) == 1, (run_id, warnings)
    session = json.loads((out / "manifest.json").read_text())["sessions"][-1]
    assert session["to_run"] == 5 and session["already_done"] == 3
    table = assert_complete(out, 8)
    original = pd.read_parquet(finished_smoke / "runs.parquet")
    columns = [c for c in table.columns if c not in ("duration", "run_seconds")]
    pd.testing.assert_frame_equal(table[columns], original[columns], check_exact=True)  # 0.999 is gone
    for path in sorted((finished_smoke / "timeseries").glob("*.parquet")):
        assert pd.read_parquet(path).equals(pd.read_parquet(out / "timeseries" / path.name))
    assert runner.invoke(app, ["reproduce", str(out)]).exit_code == 0


def test_reproduce_gives_a_verdict_for_every_run_whatever_happened_to_the_others(finished_smoke: Path,
                                                                                 tmp_path: Path) -> None:
    out = copy_of(finished_smoke, tmp_path)
    damaged = damage(out)
    result = runner.invoke(app, ["reproduce", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for run_id in [f"{i:06d}" for i in range(8)]:
        line = one_line("\n".join(x for x in result.stdout.splitlines() if x.startswith(f"{run_id}:")))
        if run_id in damaged:
            assert "MISMATCH (corrupt:" in line and damaged[run_id] in line, line
        else:
            assert "OK (identical)" in line, line
    assert "3/8 runs reproduced" in result.stdout


def forge(out: Path, run_id: str, edit) -> None:
    """Edit a run's results and recompute every checksum, as a careful forger would."""
    from sme_abm.sweep.store import file_sha256, record_digest

    path = out / "runs" / f"{run_id}.json"
    record = json.loads(path.read_text())
    edit(record)
    for name in record["files"]:
        record["files"][name] = file_sha256(out / name)
    record["sha256"] = record_digest(record)
    path.write_text(json.dumps(record))


def test_reproduce_compares_summary_and_config_not_only_the_time_series(finished_smoke: Path, tmp_path: Path) -> None:
    out = copy_of(finished_smoke, tmp_path)
    forge(out, "000003", lambda record: record["summary"].update(annual_exit_rate=0.999))
    forge(out, "000005", lambda record: record.update(config_sha256="0" * 64))
    frame = pd.read_parquet(out / "timeseries" / "000007.parquet")
    frame.loc[3, "output"] = np.nextafter(frame.loc[3, "output"], np.inf)
    frame.to_parquet(out / "timeseries" / "000007.parquet", index=False)
    forge(out, "000007", lambda record: None)
    verdicts = dict((run_id, (ok, verdict)) for run_id, ok, verdict in reproduce(out))
    assert verdicts["000003"] == (False, "1 results differ: summary.annual_exit_rate")
    assert verdicts["000005"] == (False, "1 results differ: config_sha256")
    assert not verdicts["000007"][0] and "time series (1 columns differ: output)" in verdicts["000007"][1]
    assert [run_id for run_id, (ok, _) in verdicts.items() if ok] == ["000000", "000001", "000002", "000004", "000006"]


def test_edited_manifest_is_refused_by_resume_and_reproduce(finished_smoke: Path, tmp_path: Path) -> None:
    out = copy_of(finished_smoke, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["base_config"]["economy"]["wage"] = 0.02
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "runs" / "000003.json").unlink()
    for args in (["sweep", str(SMOKE), "--out", str(out), "--resume", "--workers", "1", "--quiet"], ["reproduce", str(out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        line = one_line(result.stderr)
        assert str(out / "manifest.json") in line and "checksum" in line, line
    assert not (out / "runs" / "000003.json").exists()  # nothing was rerun


def test_resume_with_another_entropy_is_refused(finished_smoke: Path, tmp_path: Path) -> None:
    out = copy_of(finished_smoke, tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "baseline.toml").write_text((CONFIGS / "baseline.toml").read_text())
    experiment = tmp_path / "experiments" / "smoke.toml"
    experiment.write_text(SMOKE.read_text().replace("entropy = 20260101", "entropy = 7"))
    assert "entropy = 7" in experiment.read_text()
    result = runner.invoke(app, ["sweep", str(experiment), "--out", str(out), "--resume", "--quiet"])
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert str(experiment) in line and "entropy" in line and "20260101" in line


@pytest.mark.parametrize("content", ["", "{", '{"format": 2, "runs": [', "[]", "{}", "5", "\x00\x00"])
def test_damaged_manifest_one_line_exit_2(finished_smoke: Path, tmp_path: Path, content: str) -> None:
    out = copy_of(finished_smoke, tmp_path)
    (out / "manifest.json").write_text(content)
    for args in (["sweep", str(SMOKE), "--out", str(out), "--resume", "--quiet"], ["reproduce", str(out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (content, result.output)
        assert str(out / "manifest.json") in one_line(result.stderr)


def test_manifest_without_runs_one_line_exit_2(finished_smoke: Path, tmp_path: Path) -> None:
    out = copy_of(finished_smoke, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["runs"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["reproduce", str(out)])
    assert result.exit_code == 2 and "runs: missing" in one_line(result.stderr)


@pytest.mark.parametrize("count", ["0", "-1"])
def test_reproduce_refuses_fewer_than_one_run(finished_smoke: Path, count: str) -> None:
    result = runner.invoke(app, ["reproduce", str(finished_smoke), "--runs", count])
    assert result.exit_code == 2 and "--runs" in one_line(result.stderr)
