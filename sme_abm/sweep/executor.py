"""Run a sweep's runs on any :class:`concurrent.futures.Executor`.

One code path serves both backends: ``local`` is a
:class:`~concurrent.futures.ProcessPoolExecutor`; ``dask`` is
``distributed.Client(...).get_executor()`` (a ``LocalCluster`` when no
scheduler address is given). Runs are submitted in a bounded window, so
memory does not grow with the number of runs; each result is handed back as
a small record plus the time series as Parquet bytes, and written by the
calling process (so Dask workers need no shared file system).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import select
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from .design import RunSpec

FAIL_RUNS_ENV = "SME_ABM_SWEEP_FAIL_RUNS"
"""Test hook: comma-separated run ids that raise instead of running (inherited by workers)."""

KILL_RUNS_ENV = "SME_ABM_SWEEP_KILL_RUNS"
"""Test hook: comma-separated run ids whose worker process kills itself (SIGKILL) mid-run."""

KILL_MARKERS_ENV = "SME_ABM_SWEEP_KILL_MARKERS"
"""Test hook: a folder; when set, a run of :data:`KILL_RUNS_ENV` kills its worker only on its first
attempt (a marker file ``kill-<run_id>`` records the attempt). When unset, it kills it every time."""


def _maybe_kill_worker(run_id: str) -> None:
    """The :data:`KILL_RUNS_ENV` test hook: die like a worker hit by the OOM killer."""
    if run_id not in os.environ.get(KILL_RUNS_ENV, "").split(","):
        return
    markers = os.environ.get(KILL_MARKERS_ENV)
    if markers:
        marker = os.path.join(markers, f"kill-{run_id}")
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            return  # already killed once: run normally this time
    os.kill(os.getpid(), signal.SIGKILL)


def simulate(base_config: dict[str, Any], values: dict[str, Any], seed: int,
             context: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """Run the model once; returns its summary and time series.

    Builds the model exactly as :func:`sme_abm.runner.run` does, without its
    per-run manifest (which calls git), so reruns match bit for bit.

    With a ``context`` (study or ``[start]`` sweeps; see :func:`run_context`): the run starts
    from the saved state ``context["state"]`` (reseeded from ``seed`` when ``context["reseed"]``),
    its time series and summary cover only the months it ran (the evaluated months), and the
    summary gains ``study``: :func:`sme_abm.sweep.studies.window_metrics`.
    """
    from ..model import SMEEconomy
    from .experiment import config_for

    config = config_for(base_config, values, seed)
    if context and context.get("state"):
        model = SMEEconomy(config, state=context["state"])
        if context.get("reseed"):
            from .studies import reseed

            reseed(model, seed)
    else:
        model = SMEEconomy(config)
    before = len(model.recorder.rows)
    model.run()
    if not context:
        return model.summary(), model.timeseries()
    from .studies import window_metrics

    recorder = model.recorder
    rows, recorder.rows = recorder.rows, recorder.rows[before:]
    try:  # the summary of the evaluated months only
        summary, timeseries = model.summary(), model.timeseries()
    finally:
        recorder.rows = rows
    summary["study"] = window_metrics(timeseries, context.get("channels"))
    return summary, timeseries


def burn_in(config: dict[str, Any], months: int, out: str) -> str:
    """Worker entry point of a sweep's burn-in stage: run ``config`` for ``months`` (from the
    set-up: the config's own ``burn_in_months`` is replaced by this stage), start the
    evaluated record there (:meth:`SMEEconomy.start_evaluation`: month 0, lever 24's phase-in
    and lever 25's record start afresh for the policy under study) and save the state to the
    folder ``out`` (written whole or not at all); returns the state's digest."""
    from ..config import load_config
    from ..model import SMEEconomy
    from .studies import state_digest

    model = SMEEconomy(load_config(config, {"simulation.burn_in_months": 0}))
    model.burning_in = True  # as SMEEconomy._burn_in: the reference user cost follows the economy's
    model.run(months)
    model.start_evaluation()
    model.save_state(out)
    return state_digest(out)


def execute_run(base_config: dict[str, Any], spec: dict[str, Any],
                context: dict[str, Any] | None = None) -> tuple[dict[str, Any], bytes | None]:
    """Worker entry point: run one :class:`RunSpec` and never raise for a failing run.

    Returns:
        The run's record (``status`` ``ok`` or ``failed`` with the error; ``config_sha256``,
        the digest of the run's resolved config; ``state_sha256``, the digest of the state it
        started from, if any) and its time series as Parquet bytes (None when it failed).
    """
    from .experiment import config_for

    clock = time.perf_counter()
    record: dict[str, Any] = {**spec, "status": "ok", "error": None, "summary": {}}
    blob: bytes | None = None
    try:
        _maybe_kill_worker(spec["run_id"])
        if spec["run_id"] in os.environ.get(FAIL_RUNS_ENV, "").split(","):
            raise RuntimeError(f"injected failure for run {spec['run_id']} ({FAIL_RUNS_ENV})")
        record["config_sha256"] = config_for(base_config, spec["values"], spec["seed"]).digest()
        if context and context.get("state"):
            record["state_sha256"] = context["state_sha256"]
        summary, timeseries = simulate(base_config, spec["values"], spec["seed"], context)
        timeseries.insert(0, "run_id", spec["run_id"])
        buffer = io.BytesIO()
        timeseries.to_parquet(buffer, index=False)
        blob = buffer.getvalue()
        record["summary"] = summary
    except Exception as exc:  # a failing run is data, not a crash of the sweep
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=8)
    record["duration"] = round(time.perf_counter() - clock, 4)
    record["worker_pid"] = os.getpid()
    return record, blob


PARENT_ENV = "SME_ABM_SWEEP_PID"
"""Set for the sweep's forkserver: the pid of the sweep it must not outlive."""

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None = None) -> None:
    """Have Linux SIGKILL this process as soon as its parent dies (``prctl(PR_SET_PDEATHSIG)``).

    If the parent is already gone (it is no longer ``expected_parent``), exit now. Elsewhere
    than on Linux this does nothing; the workers' watcher thread still sees the sweep die.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)


def _watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Exit the moment the sweep process dies, even while it is an unreaped zombie.

    A pidfd becomes readable when its process terminates, zombie or not (``os.kill(pid, 0)``
    succeeds on a zombie, so it cannot tell); without pidfds (not Linux) poll ``kill(pid, 0)``.
    """
    try:
        handle = os.pidfd_open(parent_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        while True:
            time.sleep(interval)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
    select.select([handle], [], [])
    os._exit(1)  # the sweep was killed: do not linger as an orphan


def _init_local_worker(parent_pid: int) -> None:
    """Worker initializer: ignore Ctrl-C (the parent cancels cleanly) and exit when the sweep dies.

    A worker's parent is the forkserver, which itself dies with the sweep (see
    :func:`_start_forkserver`): the parent-death signal covers that link, the watcher
    thread any other.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="watch-sweep").start()


@contextlib.contextmanager
def _standard_streams_to_devnull() -> Iterator[None]:
    """While inside, file descriptors 1 and 2 are /dev/null: processes started here do not
    inherit the sweep's stdout and stderr, so a killed sweep's pipes close when it dies."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for handle in (*saved, null):
            os.close(handle)


def _start_forkserver(context: Any, extra_preload: tuple[str, ...] = ()) -> None:
    """Start the forkserver and resource tracker (if not running) so that they die with the sweep.

    The forkserver first imports :mod:`sme_abm.sweep.orphan_guard`, which asks for SIGKILL
    when the sweep dies; its workers ask the same of the forkserver. Neither the helpers nor
    the workers get the sweep's stdout and stderr. ``extra_preload`` adds modules the
    forkserver imports once for all its children (``distributed`` for Dask workers).
    """
    from multiprocessing import forkserver

    context.set_forkserver_preload(["sme_abm.sweep.orphan_guard", "sme_abm.sweep.executor", "sme_abm.model",
                                    "sme_abm.config", *extra_preload])
    os.environ[PARENT_ENV] = str(os.getpid())
    with _standard_streams_to_devnull():
        forkserver.ensure_running()


def _abandon(pool: ProcessPoolExecutor) -> None:
    """Stop a pool without waiting on it: after Ctrl-C or an error a clean shutdown can
    block (for example on a worker that was still starting), so its workers are terminated."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=5)


def check_scheduler(scheduler: str, timeout: float = 10) -> None:
    """Connect to a Dask scheduler once, so a bad or unreachable address is a one-line
    :class:`~sme_abm.errors.ConfigError` before anything is written."""
    from ..errors import ConfigError

    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError("--backend", "dask", "needs `pip install sme-abm[dask]`") from None
    try:
        with Client(scheduler, timeout=timeout):
            pass
    except ValueError as exc:
        raise ConfigError("--scheduler", scheduler, f"not a scheduler address ({exc}); expected tcp://HOST:PORT") from None
    except (OSError, TimeoutError) as exc:
        raise ConfigError("--scheduler", scheduler, f"cannot connect to the scheduler ({exc})") from None


@contextlib.contextmanager
def open_executor(backend: str = "local", workers: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """An executor for the backend; shut down on exit.

    Args:
        backend: ``"local"`` (process pool) or ``"dask"``.
        workers: Worker processes (default ``os.cpu_count()``); for Dask, the
            size of the LocalCluster started when no scheduler is given.
        scheduler: Address of a running Dask scheduler, ``tcp://HOST:PORT``.
    """
    workers = workers or os.cpu_count() or 1
    if backend == "local":
        import multiprocessing

        context = multiprocessing.get_context("forkserver")
        _start_forkserver(context)
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_local_worker, initargs=(os.getpid(),))
        try:
            yield pool
        except BaseException:
            _abandon(pool)
            raise
        else:
            pool.shutdown(wait=True, cancel_futures=True)
    elif backend == "dask":
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("the dask backend needs `pip install sme-abm[dask]`") from exc
        with contextlib.ExitStack() as stack:
            if scheduler:
                client = stack.enter_context(Client(scheduler))
            else:
                # The LocalCluster's workers are forked from the sweep's guarded forkserver, not
                # spawned (Dask's default): they start with /dev/null as stdout and stderr and
                # with sme_abm and distributed already imported, and from the moment they run
                # Dask's own watch on a pipe from the sweep ends them when the sweep dies
                # (a spawned worker held the sweep's pipes, unwatched, while it imported).
                import dask
                import multiprocessing

                _start_forkserver(multiprocessing.get_context("forkserver"), ("distributed",))
                stack.enter_context(dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}))
                cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                           dashboard_address=None))
                client = stack.enter_context(Client(cluster))
            executor = client.get_executor(pure=False)
            try:
                yield executor
            finally:
                executor.shutdown(wait=False)
    else:
        raise ValueError(f"unknown backend {backend!r}; use local or dask")


@dataclass
class ExecutionOutcome:
    """What happened to the submitted runs.

    Attributes:
        finished: Number of runs that ended (ok or failed).
        lost: Run id -> error of runs whose worker or executor failed (not recorded; resume reruns them).
        unsubmitted: Runs never submitted because the process pool broke first (the rest of
            the iterable given, still lazy: a large plan is never turned into a list).
        has_unsubmitted: Whether there are any.
        broken: True when the process pool broke (a worker died); the executor is then unusable.
    """

    finished: int = 0
    lost: dict[str, str] = field(default_factory=dict)
    unsubmitted: Iterable[RunSpec] = ()
    has_unsubmitted: bool = False
    broken: bool = False


def execute(
    runs: Iterable[RunSpec],
    executor: Executor,
    base_config: dict[str, Any],
    on_result: Callable[[dict[str, Any], bytes | None], None],
    *,
    window: int,
    on_lost: Callable[[RunSpec, str], None] | None = None,
    context: Callable[[RunSpec], dict[str, Any] | None] | None = None,
) -> ExecutionOutcome:
    """Submit runs with at most ``window`` in flight and hand each result to ``on_result``.

    A run whose future raises (a dead worker, a broken pool, a lost Dask worker)
    is reported as lost; after a broken process pool nothing more is submitted.
    ``context`` gives each run's start (see :func:`simulate`).
    """
    outcome = ExecutionOutcome()
    queue = iter(runs)
    in_flight: dict[Future, RunSpec] = {}
    broken = False

    def top_up() -> None:
        while not broken and len(in_flight) < window:
            spec = next(queue, None)
            if spec is None:
                return
            extra = context(spec) if context is not None else None
            arguments = (base_config, spec.to_dict(), extra) if extra is not None else (base_config, spec.to_dict())
            in_flight[executor.submit(execute_run, *arguments)] = spec

    try:
        top_up()
        while in_flight:
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in done:
                spec = in_flight.pop(future)
                try:
                    record, blob = future.result()
                except BaseException as exc:  # noqa: BLE001 - infrastructure failure, not a model error
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    broken = broken or isinstance(exc, BrokenProcessPool)
                    message = f"{type(exc).__name__}: {exc}"
                    outcome.lost[spec.run_id] = message
                    if on_lost:
                        on_lost(spec, message)
                    continue
                on_result(record, blob)
                outcome.finished += 1
            top_up()
    finally:
        for future in in_flight:
            future.cancel()
    outcome.broken = broken
    following = next(queue, None)
    if following is not None:
        outcome.unsubmitted, outcome.has_unsubmitted = itertools.chain([following], queue), True
    return outcome
