"""The sweep itself: plan runs, execute what is not done, write the results, reproduce them."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import shutil
import socket
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from ..config import as_saved
from ..errors import ConfigError
from ..jsonio import digest, json_safe
from .design import (GridPoints, MatrixPoints, RunPlan, RunSpec, design_points, design_size, new_entropy, plan_runs,
                     replicate_seeds)
from .executor import check_scheduler, execute, execute_run, open_executor
from .experiment import Experiment, load_experiment
from .store import SweepStore

MANIFEST_FORMAT = 2
"""Format 2 added checksums: ``resolved_sha256`` in the manifest, ``sha256``, ``files`` and
``config_sha256`` in each run record."""

RESOLVED_KEYS = ("format", "name", "experiment", "experiment_digest", "base_config", "parameters", "design_kind",
                 "entropy", "replicate_seeds", "runs")
"""The manifest's fields that define the experiment; ``resolved_sha256`` is their digest."""

MAX_RUNS = 100_000
"""Largest design a sweep runs unless ``max_runs`` allows more."""

INLINE_RUNS = 100_000
"""Plans of at most this many runs are listed run by run in the manifest (``runs`` is a list).
A larger plan (a design forced past :data:`MAX_RUNS`) is described instead (``runs`` is an
object: counts, and for sampled designs the design matrix in ``design.npy`` with its SHA-256),
and its runs are built from their index when needed, never all at once."""

POINTS_FILE = "design.npy"

MAX_ATTEMPTS = 3
"""Times a run whose worker dies is started (the last time on its own) before it is recorded as failed."""


def _lost_record(spec: RunSpec, error: str, attempts: int) -> dict[str, Any]:
    """The record of a run whose worker died on every attempt (resume tries it again)."""
    return {**spec.to_dict(), "status": "failed", "summary": {}, "duration": None, "worker_pid": None,
            "error": f"worker died on each of {attempts} attempts; last: {error}"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _experiment_digest(experiment: Experiment) -> str:
    resolved = {"spec": experiment.spec.model_dump(mode="json"), "base_config": experiment.base_config}
    resolved["spec"].pop("entropy", None)
    resolved["spec"].pop("description", None)
    return digest(resolved)


OPTIONAL_RESOLVED_KEYS = ("start", "study")
"""Resolved fields only some manifests have (sweeps with ``[start]``, study designs); part of
``resolved_sha256`` when present, so older manifests keep their checksum."""


def _resolved_digest(manifest: dict[str, Any]) -> str:
    keys = RESOLVED_KEYS + tuple(key for key in OPTIONAL_RESOLVED_KEYS if key in manifest)
    return digest({key: manifest.get(key) for key in keys})


def checked_manifest(store: SweepStore) -> dict[str, Any] | None:
    """The folder's manifest (None when there is none), refused with a one-line
    :class:`ConfigError` when it is damaged or was edited after the sweep started."""
    if not store.manifest_path.exists():
        return None
    manifest = store.read_manifest()
    path = str(store.manifest_path)
    if not isinstance(manifest, dict):
        raise ConfigError(path, "", f"is a JSON {type(manifest).__name__}, not an object; the sweep's manifest is damaged")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ConfigError(path, "format", f"is {manifest.get('format')!r}; this sme-abm reads sweeps of format "
                          f"{MANIFEST_FORMAT} (with checksums); run the sweep again into a new folder")
    for key in (*RESOLVED_KEYS, "resolved_sha256"):
        if key not in manifest:
            raise ConfigError(path, key, "missing; the sweep's manifest is damaged")
    try:
        intact = manifest["resolved_sha256"] == _resolved_digest(manifest)
    except RecursionError:  # nested deeper than any manifest sme-abm writes
        intact = False
    if not intact:
        raise ConfigError(path, "", "does not match its checksum (resolved_sha256): it was edited or damaged after "
                          "the sweep started, and using it would mix two experiments")
    if not isinstance(manifest.get("sessions"), list):
        raise ConfigError(path, "sessions", "is not a list; the sweep's manifest is damaged")
    _check_runs_entry(path, manifest["runs"])
    return manifest


class _PlannedRuns(Sequence[dict[str, Any]]):
    """A lazily described plan seen as the manifest's list of run dicts (built one at a time)."""

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [run.to_dict() for run in self.plan[index]]
        return self.plan[index].to_dict()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (run.to_dict() for run in self.plan)


def _points_digest(matrix: Any) -> str:
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype="<f8").tobytes()).hexdigest()


def design_points_of(store: SweepStore, manifest: dict[str, Any]) -> Sequence[dict[str, Any]]:
    """The design points of a sweep (index = point), from its manifest (and ``design.npy``)."""
    runs = manifest["runs"]
    if isinstance(runs, list):
        found = {run["point"]: run["values"] for run in runs}
        return [found[point] for point in sorted(found)]
    params = manifest["parameters"]
    keys = [p["key"] for p in params]
    if runs.get("points_file") is None:
        return GridPoints(keys, [tuple(p["values"]) for p in params])
    path = store.root / runs["points_file"]
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "", f"cannot be read ({exc}); the sweep's design matrix is damaged") from None
    if _points_digest(matrix) != runs.get("points_sha256") or matrix.shape != (runs["points"], len(params)):
        raise ConfigError(str(path), "", "does not match its checksum in manifest.json (points_sha256): "
                          "it was edited or damaged after the sweep started")
    return MatrixPoints(keys, [bool(p["integer"]) for p in params], matrix)


def planned_runs(store: SweepStore, manifest: dict[str, Any]) -> Sequence[dict[str, Any]]:
    """Every planned run of a sweep as a dict (``run_id``, ``point``, ``replicate``, ``seed``,
    ``values``): the manifest's list, or, for a plan too large to list, a lazy sequence."""
    runs = manifest["runs"]
    if isinstance(runs, list):
        return runs
    return _PlannedRuns(plan_runs(design_points_of(store, manifest), [int(s) for s in manifest["replicate_seeds"]]))


def _check_runs_entry(path: str, runs: Any) -> None:
    if isinstance(runs, list):
        return
    keys = {"count", "points", "replicates", "points_file", "points_sha256"}
    if not isinstance(runs, dict) or set(runs) != keys:
        raise ConfigError(path, "runs", "is neither a list of runs nor a plan description; the sweep's manifest is damaged")


def _new_manifest(experiment: Experiment, store: SweepStore | None = None, inline_runs: int | None = None
                  ) -> dict[str, Any]:
    """The manifest of a new sweep. A plan larger than ``inline_runs`` (default
    :data:`INLINE_RUNS`) is described, not listed, and a sampled design's matrix is written
    to ``store``'s ``design.npy``."""
    from ..runner import git_commit, versions

    entropy = experiment.spec.entropy if experiment.spec.entropy is not None else new_entropy()
    seeds = replicate_seeds(entropy, experiment.spec.replicates)
    plan = plan_runs(design_points(experiment), seeds)
    limit = INLINE_RUNS if inline_runs is None else inline_runs
    runs: Any
    if len(plan) <= limit:
        runs = [run.to_dict() for run in plan]
    else:
        points_file = points_sha256 = None
        if isinstance(plan.points, MatrixPoints):
            if store is None:
                raise ValueError("a sampled design too large to list needs a results folder for its matrix")
            buffer = io.BytesIO()
            np.save(buffer, plan.points.matrix, allow_pickle=False)
            from .store import atomic_write_bytes

            atomic_write_bytes(store.root / POINTS_FILE, buffer.getvalue())
            points_file, points_sha256 = POINTS_FILE, _points_digest(plan.points.matrix)
        runs = {"count": len(plan), "points": len(plan.points), "replicates": len(seeds),
                "points_file": points_file, "points_sha256": points_sha256}
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": experiment.name,
        "experiment_file": experiment.source,
        "experiment_text": experiment.text,
        "experiment": experiment.spec.model_dump(mode="json"),
        "experiment_digest": _experiment_digest(experiment),
        "base_config": experiment.base_config,
        "parameters": [asdict(p) for p in experiment.parameters],
        "design_kind": experiment.spec.design.kind,
        "seeding": "numpy.random.SeedSequence(entropy).spawn(replicates); seed = generate_state(1, uint64)[0] >> 1",
        "entropy": str(entropy),
        "replicate_seeds": seeds,
        "runs": runs,
        **_start_and_study(experiment, seeds),
        "versions": versions(),
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "started": _now(),
        "finished": None,
        "sessions": [],
    }
    manifest["resolved_sha256"] = _resolved_digest(manifest)
    return manifest


STATES_DIR = "states"
"""Folder of a sweep's burn-in states (``DIR/states/<name>/``)."""


def _start_and_study(experiment: Experiment, seeds: list[int]) -> dict[str, Any]:
    """The manifest's ``start`` (where runs start: a state and its digest, or the burn-in plan)
    and ``study`` (a study design's plan, without its points, and the channel map) fields."""
    from .experiment import STUDY_KINDS
    from .studies import channels_for, state_digest, study_plan

    out: dict[str, Any] = {}
    start = experiment.spec.start
    if start is not None and start.from_state is not None:
        from ..state import read_header

        path = experiment.state_path
        assert path is not None  # load_experiment resolved it
        out["start"] = {"kind": "state", "from_state": start.from_state, "path": path, "sha256": state_digest(path),
                        "state_month": int(read_header(path)["month"]), "reseed": True}
    elif start is not None:
        names = [(f"r{r:03d}", seed) for r, seed in enumerate(seeds)] if start.per_replicate else [("shared", seeds[0])]
        out["start"] = {"kind": "burn_in", "months": start.burn_in_months, "per_replicate": start.per_replicate,
                        "policy": start.policy, "overrides": dict(start.overrides), "reseed": not start.per_replicate,
                        "states": [{"name": name, "seed": seed} for name, seed in names]}
    design = experiment.spec.design
    if design.kind in STUDY_KINDS:
        plan = study_plan(design.model_dump(mode="json"), experiment.base_config)
        plan.pop("points")
        plan["channels"] = channels_for(design)
        out["study"] = plan
    return out


def burn_in_config(manifest: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The config of one burn-in: the base config plus ``[start] overrides`` and the state's seed."""
    from ..config import load_config
    from .experiment import burn_in_overrides

    start = manifest["start"]
    overrides = burn_in_overrides(start.get("policy", "base"), start["overrides"])
    return load_config(as_saved(manifest["base_config"]), {**overrides, "simulation.seed": state["seed"]}).to_dict()


def run_contexts(manifest: dict[str, Any], store: SweepStore) -> Callable[[Any], dict[str, Any] | None] | None:
    """Each run's context for :func:`~sme_abm.sweep.executor.simulate` (None for plain sweeps)."""
    start, study = manifest.get("start"), manifest.get("study")
    if start is None and study is None:
        return None
    channels = (study or {}).get("channels") or {}
    recorded = manifest.get("start_states") or {}

    def context(spec: Any) -> dict[str, Any]:
        replicate = spec.replicate if isinstance(spec, RunSpec) else int(spec["replicate"])
        out: dict[str, Any] = {"channels": channels}
        if start is None:
            return out
        if start["kind"] == "state":
            out.update(state=start["path"], state_sha256=start["sha256"], reseed=True)
        else:
            states = start["states"]
            name = states[replicate]["name"] if start["per_replicate"] else states[0]["name"]
            out.update(state=str((store.root / STATES_DIR / name).resolve()), state_sha256=recorded.get(name),
                       reseed=bool(start["reseed"]))
        return out

    return context


def ensure_states(store: SweepStore, manifest: dict[str, Any], backend: str, workers: int, scheduler: str | None,
                  report: Callable[[str], None] | None = None) -> None:
    """Check the state(s) the runs start from; run the burn-in stage for any that is missing.

    A ``from_state`` state must still have the digest the manifest recorded (else one-line
    :class:`ConfigError`: the sweep would mix two starting points). A burn-in state is rerun when
    missing or when it does not match its recorded digest; a rerun must give the recorded digest
    (burn-ins are deterministic), else :class:`ConfigError`. Digests are recorded in the
    manifest's ``start_states``.
    """
    from .executor import burn_in
    from .studies import state_digest

    start = manifest.get("start")
    if start is None:
        return
    if start["kind"] == "state":
        try:
            found = state_digest(start["path"])
        except OSError as exc:
            raise ConfigError(str(start["path"]), "start.from_state", f"cannot be read ({exc})") from None
        if found != start["sha256"]:
            raise ConfigError(str(start["path"]), "start.from_state", "has changed since the sweep started "
                              f"(sha256 {found[:12]} vs {start['sha256'][:12]} in the manifest); runs from two states "
                              "cannot be mixed: restore it or sweep into a new folder")
        return
    recorded: dict[str, str] = manifest.setdefault("start_states", {})
    folder = store.root / STATES_DIR
    todo = []
    for state in start["states"]:
        path = folder / state["name"]
        if (path / "state.json").exists():
            found = state_digest(path)
            if state["name"] not in recorded:
                recorded[state["name"]] = found
                continue
            if found == recorded[state["name"]]:
                continue
            if report:
                report(f"{path}: does not match its recorded digest; burning it in again")
        shutil.rmtree(path, ignore_errors=True)
        todo.append(state)
    for partial in folder.glob(".*.partial") if folder.exists() else []:
        shutil.rmtree(partial, ignore_errors=True)
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
        with open_executor(backend, min(workers, len(todo)), scheduler) as executor:
            futures = {state["name"]: executor.submit(burn_in, burn_in_config(manifest, state), int(start["months"]),
                                                      str((folder / state["name"]).resolve())) for state in todo}
            for name, future in futures.items():
                found = future.result()
                if name in recorded and recorded[name] != found:
                    raise ConfigError(str(folder / name), "start.burn_in_months", "the burn-in does not reproduce the "
                                      f"state the sweep's runs started from (sha256 {found[:12]} vs {recorded[name][:12]})")
                recorded[name] = found
    store.write_manifest(manifest)


def _make_progress(enabled: bool, total: int, done: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
                        TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("left"),
                        TimeRemainingColumn(), disable=not enabled, transient=False)
    task = progress.add_task("sweep", total=total, completed=done, failed=0)
    return progress, task


def sweep(
    experiment: str | Path | Experiment | dict[str, Any],
    workers: int | None = None,
    backend: str = "local",
    scheduler: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    *,
    progress: bool = True,
    window: int | None = None,
    report: Callable[[str], None] | None = None,
    max_runs: int = MAX_RUNS,
) -> pd.DataFrame:
    """Run every run of an experiment and write the results folder.

    Args:
        experiment: Path of an experiment TOML file, a dict, or a loaded :class:`Experiment`.
        workers: Worker processes (default ``os.cpu_count()``).
        backend: ``"local"`` (process pool) or ``"dask"``.
        scheduler: Dask scheduler address (``tcp://HOST:PORT``); default a LocalCluster.
        out: Results folder (default ``results/sweeps/<experiment name>/``).
        resume: Finish the sweep already in ``out``: runs that finished are kept,
            the others (never run, interrupted, failed, or corrupt: a record or file that
            does not match its checksum) are run.
        progress: Show a progress bar.
        window: Most runs in flight at once (default ``4 * workers``).
        report: Called with one line per finished run found corrupt (and rerun).
        max_runs: Refuse designs with more runs than this (default :data:`MAX_RUNS`).

    Returns:
        The runs table (also written to ``out/runs.parquet``), one row per run.

    Raises:
        ConfigError: On an invalid experiment, or an ``out`` folder that holds
            another sweep (or any results when not resuming), or whose manifest is
            damaged or was edited.
        SweepLockedError: When a live sweep is writing into ``out``.
        KeyboardInterrupt: When interrupted; finished runs are kept for ``resume``.
    """
    if backend not in ("local", "dask"):
        raise ConfigError("--backend", "backend", f"unknown backend {backend!r}; use local or dask")
    if workers is not None and workers < 1:
        raise ConfigError("--workers", "workers", f"must be at least 1, got {workers}")
    loaded = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)  # type: ignore[arg-type]
    size = design_size(loaded)
    if size > max_runs:
        raise ConfigError(loaded.source, "design", f"has {size:,} runs (points x {loaded.spec.replicates} replicates), "
                          f"more than the limit of {max_runs:,}; shrink it or raise the limit with --max-runs")
    target = Path(out) if out is not None else Path("results/sweeps") / loaded.name
    if target.exists() and not target.is_dir():
        raise ConfigError("--out", str(target), "exists and is not a folder")
    if backend == "dask" and scheduler:
        check_scheduler(scheduler)
    store = SweepStore(target)
    store.acquire_lock()
    try:
        manifest = checked_manifest(store)
        if manifest is None and not resume and any(p.name != ".lock" for p in target.iterdir()):
            raise ConfigError("--out", str(target), "is not empty; choose another folder")
        if manifest is not None and not resume:
            raise ConfigError("--out", str(target), "already holds a sweep; use --resume to finish it or choose another folder")
        if manifest is not None and manifest["experiment_digest"] != _experiment_digest(loaded):
            raise ConfigError(loaded.source, "", f"differs from the experiment of the sweep in {target}; cannot resume it")
        if manifest is not None and loaded.spec.entropy is not None and str(loaded.spec.entropy) != manifest["entropy"]:
            raise ConfigError(loaded.source, "entropy", f"is {loaded.spec.entropy} but the sweep in {target} was seeded "
                              f"with entropy {manifest['entropy']}; cannot resume it")
        if manifest is None:
            manifest = _new_manifest(loaded, store)
            store.write_manifest(manifest)
        return _execute_sweep(store, manifest, workers, backend, scheduler, progress, window, report)
    finally:
        store.release_lock()


def _execute_sweep(store: SweepStore, manifest: dict[str, Any], workers: int | None, backend: str,
                   scheduler: str | None, show_progress: bool, window: int | None,
                   report: Callable[[str], None] | None) -> pd.DataFrame:
    from .report import write_report

    store.remove_temporaries()
    workers = workers or os.cpu_count() or 1
    ensure_states(store, manifest, backend, workers, scheduler, report)
    contexts = run_contexts(manifest, store)
    planned = planned_runs(store, manifest)
    # One pass over the plan checks every run; what is left to run is kept as one byte per
    # run and the runs are built again from their index as they are submitted.
    todo_mask = np.zeros(len(planned), dtype=bool)
    done = 0
    for index, run in enumerate(planned):
        state, detail = store.verify_run(run)
        if state == "ok" and contexts is not None:
            expected = (contexts(run) or {}).get("state_sha256")
            found = (store.read_record(run["run_id"]) or {}).get("state_sha256")
            if found != expected:
                state, detail = "corrupt", f"started from another state (sha256 {str(found)[:12]}, expected {str(expected)[:12]})"
        if state == "ok":
            done += 1
            continue
        if state == "corrupt":
            if report:
                report(f"{store.root}: run {run['run_id']} is corrupt ({detail}); rerunning it")
            store.discard_run(run["run_id"])
        todo_mask[index] = True
    to_run = int(todo_mask.sum())

    def todo() -> Iterator[RunSpec]:
        chunk = 1 << 16
        for start in range(0, len(todo_mask), chunk):
            for index in np.flatnonzero(todo_mask[start:start + chunk]):
                yield RunSpec.from_dict(planned[start + int(index)])

    session: dict[str, Any] = {"backend": backend, "workers": workers, "scheduler": scheduler, "pid": os.getpid(),
                               "started": _now(), "already_done": done, "to_run": to_run,
                               "ok": 0, "failed": 0, "lost": 0, "interrupted": False, "finished": None}
    manifest["sessions"].append(session)
    store.write_manifest(manifest)

    bar, task = _make_progress(show_progress, len(planned), done)
    counts = {"ok": 0, "failed": 0}

    def save(record: dict[str, Any], blob: bytes | None) -> None:
        store.save_run(record, blob)
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        bar.update(task, advance=1, failed=counts["failed"])

    def lost(spec: RunSpec, message: str) -> None:
        bar.update(task, failed=counts["failed"])

    outcome = None
    all_lost: dict[str, str] = {}
    try:
        with bar:
            pending: Any = todo() if to_run else None
            losses: dict[str, int] = {}
            restarts = 0
            suspects: list[Any] = []
            while pending is not None:
                lost_specs: dict[str, RunSpec] = {}

                def on_lost(spec: RunSpec, message: str) -> None:
                    lost_specs[spec.run_id] = spec
                    lost(spec, message)

                with open_executor(backend, workers, scheduler) as executor:
                    outcome = execute(pending, executor, as_saved(manifest["base_config"]), save,
                                      window=window or 4 * workers, on_lost=on_lost, context=contexts)
                all_lost.update(outcome.lost)
                if not outcome.lost and not outcome.has_unsubmitted:
                    break
                # A worker died (killed, out of memory) or a Dask worker was lost: every run in
                # flight is lost with it. Start a fresh executor and rerun them; a run lost
                # MAX_ATTEMPTS - 1 times is set aside and tried once more on its own.
                restarts += 1
                retry: list[RunSpec] = []
                for spec in sorted(lost_specs.values(), key=lambda run: run.run_id):
                    losses[spec.run_id] = losses.get(spec.run_id, 0) + 1
                    (suspects if losses[spec.run_id] >= MAX_ATTEMPTS - 1 else retry).append(spec)
                pending = itertools.chain(retry, outcome.unsubmitted) if retry or outcome.has_unsubmitted else None
            # Alone, a run that kills its worker takes no other run with it: it is recorded
            # as failed (resume tries it again), the runs lost beside it finish.
            for spec in suspects:
                restarts += 1
                with open_executor(backend, 1, scheduler) as executor:
                    outcome = execute([spec], executor, as_saved(manifest["base_config"]), save, window=1, on_lost=lost,
                                      context=contexts)
                all_lost.update(outcome.lost)
                if spec.run_id in outcome.lost:
                    save(_lost_record(spec, outcome.lost[spec.run_id], MAX_ATTEMPTS), None)
            session["executor_restarts"] = restarts
    except KeyboardInterrupt:
        session["interrupted"] = True
        raise
    finally:
        still_lost = {k: v for k, v in all_lost.items() if store.read_record(k) is None}
        session.update(ok=counts["ok"], failed=counts["failed"], lost=len(still_lost), finished=_now())
        if all_lost:
            session["lost_runs"] = all_lost
        manifest["finished"] = _now()
        store.write_manifest(manifest)
    table = store.build_runs_table(planned)
    manifest["status_counts"] = {str(k): int(v) for k, v in table["status"].value_counts().items()}
    store.write_manifest(manifest)
    write_report(store, manifest, table)
    return table


def sweep_failed(table: pd.DataFrame) -> bool:
    """True when any run of the table did not end ``ok``."""
    return bool((table["status"] != "ok").any())


def frames_identical(first: pd.DataFrame, second: pd.DataFrame) -> tuple[bool, str]:
    """Bit-for-bit comparison of two time series (same columns, dtypes and bytes)."""
    if list(first.columns) != list(second.columns):
        return False, "columns differ"
    if len(first) != len(second):
        return False, f"{len(first)} vs {len(second)} rows"
    different = []
    for column in first.columns:
        a, b = first[column].to_numpy(), second[column].to_numpy()
        if a.dtype != b.dtype:
            different.append(column)
        elif a.dtype == object:
            if not all(x == y for x, y in zip(a, b)):
                different.append(column)
        elif a.tobytes() != b.tobytes():
            different.append(column)
    if different:
        return False, f"{len(different)} columns differ: {', '.join(different[:5])}"
    return True, "identical"


def recorded_series_identical(recorded: pd.DataFrame, fresh: pd.DataFrame) -> tuple[bool, str, list[str]]:
    """:func:`frames_identical` over the series a sweep recorded: series this version records
    and the sweep's did not are new outputs, not differences (returned, third, by name); a
    recorded series the fresh run lacks is a difference."""
    added = [column for column in fresh.columns if column not in recorded.columns]
    if added and set(recorded.columns) <= set(fresh.columns):
        fresh = fresh[list(recorded.columns)]
    same, detail = frames_identical(recorded, fresh)
    return same, detail, added


def _digest_as_recorded(base_config: dict[str, Any], planned: dict[str, Any], shape: dict[str, Any] | None = None) -> str:
    """The digest of a run's config with only the keys the sweep's recorded config has.

    A version that added config keys resolves the recorded config with those keys at their
    defaults, which leave outputs bit for bit unchanged (a new option is off by default, the
    CHANGELOG's rule, or at their values before the key existed, :func:`sme_abm.config.as_saved`);
    the digest the sweep recorded was taken without them, over the keys of ``shape`` (the config
    as recorded; ``base_config`` itself by default). A key the recorded config has keeps the
    value this version resolves, so any other difference still shows."""
    from ..config import config_digest
    from .experiment import config_for

    def recorded_keys(data: Any, shape: Any) -> Any:
        if not (isinstance(data, dict) and isinstance(shape, dict)):
            return data
        return {key: recorded_keys(value, shape[key]) for key, value in data.items() if key in shape}

    resolved = config_for(base_config, planned["values"], planned["seed"]).to_dict()
    return config_digest(recorded_keys(resolved, base_config if shape is None else shape))


def _reproduce_run(store: SweepStore, base_config: dict[str, Any], planned: dict[str, Any],
                   context: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Check one run's files against their checksums, rerun it and compare everything it published."""
    from .studies import state_digest

    state, detail = store.verify_run(planned)
    if state == "missing":
        return False, "never finished in the sweep; nothing to compare"
    if state == "corrupt":
        return False, f"corrupt: {detail}"
    stored = store.read_record(planned["run_id"])
    assert stored is not None  # verify_run read it
    if context and context.get("state"):
        found = state_digest(context["state"])
        if found != context.get("state_sha256") or found != stored.get("state_sha256"):
            return False, f"its starting state {context['state']} does not match the digest the sweep recorded"
    # the economy the sweep ran: keys this version added since read at their values before
    recorded_config = as_saved(base_config)
    fresh, blob = (execute_run(recorded_config, dict(planned), context) if context
                   else execute_run(recorded_config, dict(planned)))
    fresh = json_safe(fresh)
    if stored["status"] != "ok":
        same = fresh["status"] != "ok" and fresh["error"] == stored.get("error")
        return same, ("failed again with the same error" if same
                      else f"recorded as failed ({stored.get('error')}) but now {fresh['error'] or 'succeeds'}")
    if fresh["status"] != "ok":
        return False, f"now fails: {fresh['error']}"
    if fresh.get("config_sha256") != stored.get("config_sha256"):
        fresh["config_sha256"] = _digest_as_recorded(recorded_config, planned, shape=base_config)
    differs = [key for key in ("config_sha256", "state_sha256") if fresh.get(key) != stored.get(key)]
    summary, recorded = fresh["summary"], stored.get("summary") or {}
    differs += [f"summary.{key}" for key in sorted(set(summary) | set(recorded)) if summary.get(key) != recorded.get(key)]
    same, detail, added = recorded_series_identical(store.read_timeseries(planned["run_id"]),
                                                    pd.read_parquet(io.BytesIO(blob or b"")))
    if not same:
        differs.append(f"time series ({detail})")
    if differs:
        return False, f"{len(differs)} results differ: {', '.join(differs[:5])}"
    return True, f"identical (series added since, not compared: {', '.join(added)})" if added else "identical"


def reproduce(
    folder: str | Path,
    runs: int | None = None,
    *,
    sample_seed: int = 0,
    report: Callable[[str, bool, str], None] | None = None,
) -> list[tuple[str, bool, str]]:
    """Rerun a sweep's runs from its manifest and compare everything they published.

    Each run's record and time series are first checked against their SHA-256
    checksums; the rerun must then give the same status (or error), the same config
    digest, the same summary and the same time series, bit for bit. A run that cannot
    be checked gets a verdict saying why; the others are checked all the same.

    Args:
        folder: The sweep's results folder.
        runs: Rerun only this many runs (at least 1), sampled with ``sample_seed`` (default all).
        sample_seed: Seed of the sample of runs.
        report: Called with ``(run_id, matches, verdict)`` after each run.

    Returns:
        ``(run_id, matches, verdict)`` per rerun run.

    Raises:
        ConfigError: When ``runs`` is below 1, or the folder holds no sweep manifest, or
            its manifest is damaged or was edited.
    """
    if runs is not None and runs < 1:
        raise ConfigError("--runs", str(runs), "must be at least 1")
    store = SweepStore(folder)
    manifest = checked_manifest(store)
    if manifest is None:
        raise ConfigError(str(folder), "manifest.json", "not found; not a sweep results folder")
    planned: Sequence[dict[str, Any]] = planned_runs(store, manifest)
    if runs is not None and runs < len(planned):
        chosen = np.random.default_rng(sample_seed).choice(len(planned), size=runs, replace=False)
        planned = [planned[i] for i in sorted(chosen)]
    verdicts = []
    contexts = run_contexts(manifest, store)
    for spec in planned:
        try:
            matches, verdict = _reproduce_run(store, manifest["base_config"], spec, contexts(spec) if contexts else None)
        except Exception as exc:  # noqa: BLE001 - a verdict for this run; the others are still checked
            matches, verdict = False, f"cannot be checked: {type(exc).__name__}: {' '.join(str(exc).split())}"
        verdicts.append((spec["run_id"], matches, verdict))
        if report:
            report(*verdicts[-1])
    return verdicts


__all__ = ["frames_identical", "reproduce", "sweep", "sweep_failed"]
