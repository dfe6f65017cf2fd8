"""The results folder of a sweep: lock, manifest, per-run files and the runs table.

Layout::

    DIR/
      .lock                       PID + hostname of the sweep writing here
      manifest.json               experiment, seeds, versions, backend, times
      runs/<run_id>.json          one per finished run: params, seed, status, summary, error
      timeseries/<run_id>.parquet one per successful run, with a run_id column
      runs.parquet                one row per run, rebuilt from runs/ at the end
      figures/, report.md

Every file is written to a temporary name in the same folder and renamed
with :func:`os.replace`, so a reader (or a resumed sweep) never sees half a
file. A run is *done* when ``runs/<run_id>.json`` exists with status ``ok``;
its time series is written before it, so it is then present too.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..errors import SmeAbmError


TORN_LOCK_SECONDS = 2.0
"""A lock file that stays empty or unreadable this long was torn by a kill while it was written."""


class SweepLockedError(SmeAbmError):
    """Another live sweep is writing into the same folder."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either absent or complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), 0o644)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=_json_default) + "\n").encode())


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SweepStore:
    """Reads and writes one sweep's results folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.timeseries_dir = self.root / "timeseries"
        self.figures_dir = self.root / "figures"
        self.lock_path = self.root / ".lock"
        self.manifest_path = self.root / "manifest.json"
        self._locked = False

    # -- lock ---------------------------------------------------------------
    def acquire_lock(self) -> None:
        """Take the folder's lock, or raise :class:`SweepLockedError` if a live sweep holds it.

        A lock left by a dead process on this host is taken over, and so is a lock
        file left empty or unreadable (for over :data:`TORN_LOCK_SECONDS`) by a
        sweep killed while it was writing it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "hostname": socket.gethostname()}
        for _attempt in range(100):
            try:
                handle = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read_lock()
                if holder is None:  # vanished, being written, or torn by a kill while it was written
                    try:
                        age = time.time() - self.lock_path.stat().st_mtime
                    except FileNotFoundError:
                        continue
                    if age > TORN_LOCK_SECONDS:
                        self.lock_path.unlink(missing_ok=True)
                    else:
                        time.sleep(0.05)
                    continue
                if holder.get("hostname") != me["hostname"]:
                    raise SweepLockedError(
                        f"{self.root}: locked by a sweep on host {holder.get('hostname')} (pid {holder.get('pid')}); "
                        f"if it is dead, delete {self.lock_path}")
                if _pid_alive(int(holder.get("pid", -1))) and holder.get("pid") != me["pid"]:
                    raise SweepLockedError(
                        f"{self.root}: another sweep (pid {holder['pid']}) is writing here; wait for it or stop it")
                try:
                    os.unlink(self.lock_path)  # stale: its process is gone
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(handle, "w") as stream:
                json.dump(me, stream)
            self._locked = True
            return
        raise SweepLockedError(f"{self.root}: could not take the lock {self.lock_path}")

    def _read_lock(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.lock_path.read_text())
        except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None

    def release_lock(self) -> None:
        if self._locked:
            holder = self._read_lock()
            if holder and holder.get("pid") == os.getpid():
                self.lock_path.unlink(missing_ok=True)
            self._locked = False

    # -- manifest -----------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    # -- runs ---------------------------------------------------------------
    def run_record_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def timeseries_path(self, run_id: str) -> Path:
        return self.timeseries_dir / f"{run_id}.parquet"

    def save_run(self, record: dict[str, Any], timeseries_parquet: bytes | None) -> None:
        """Write one finished run: its time series first, then its record."""
        if timeseries_parquet is not None:
            atomic_write_bytes(self.timeseries_path(record["run_id"]), timeseries_parquet)
        atomic_write_json(self.run_record_path(record["run_id"]), record)

    def read_record(self, run_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.run_record_path(run_id).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.runs_dir.exists():
            return
        for path in sorted(self.runs_dir.glob("*.json")):
            yield json.loads(path.read_text())

    def done_run_ids(self) -> set[str]:
        """Runs that finished successfully (record says ok and its time series exists)."""
        done = set()
        for record in self.records():
            if record.get("status") == "ok" and self.timeseries_path(record["run_id"]).exists():
                done.add(record["run_id"])
        return done

    def remove_temporaries(self) -> None:
        """Delete temporary files left by an interrupted write."""
        for folder in (self.root, self.runs_dir, self.timeseries_dir):
            if folder.exists():
                for path in folder.glob(".*.tmp"):
                    path.unlink(missing_ok=True)

    def read_timeseries(self, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.timeseries_path(run_id), columns=columns)

    def build_runs_table(self, planned: list[dict[str, Any]]) -> pd.DataFrame:
        """One row per planned run (status ``missing`` when not run), written to ``runs.parquet``."""
        rows = []
        for spec in planned:
            record = self.read_record(spec["run_id"]) or {"status": "missing", "summary": {}, "duration": None, "error": None}
            row: dict[str, Any] = {"run_id": spec["run_id"], "point": spec["point"], "replicate": spec["replicate"],
                                   "seed": spec["seed"]}
            row.update(spec["values"])
            row["status"] = record.get("status")
            row["duration"] = record.get("duration")
            row["error"] = record.get("error")
            row.update(flatten_numeric(record.get("summary") or {}))
            rows.append(row)
        table = pd.DataFrame(rows)
        buffer = table.to_parquet(index=False)
        atomic_write_bytes(self.root / "runs.parquet", buffer)
        return table


def flatten_numeric(summary: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric entries of a (nested) summary, with dotted names for nested ones."""
    flat: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_numeric(value, prefix=f"{name}."))
        elif isinstance(value, bool):
            flat[name] = float(value)
        elif isinstance(value, (int, float)):
            flat[name] = float(value)
    return flat
