"""The results folder of a sweep: lock, manifest, per-run files and the runs table.

Layout::

    DIR/
      .lock                       flock()ed by the sweep writing here; holds its PID + hostname
      manifest.json               experiment, seeds, versions, backend, times
      runs/<run_id>.json          one per finished run: params, seed, status, summary, error
      timeseries/<run_id>.parquet one per successful run, with a run_id column
      runs.parquet                one row per run, rebuilt from runs/ at the end
      figures/, report.md

Every file is written to a temporary name in the same folder and renamed
with :func:`os.replace`, so a reader (or a resumed sweep) never sees half a
file. A run is *done* when ``runs/<run_id>.json`` exists with status ``ok`` and it
and the files it names match their SHA-256 checksums (see :meth:`SweepStore.verify_run`);
its time series is written before it, so it is then present too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from ..errors import ConfigError, SmeAbmError
from ..jsonio import digest, dumps, json_safe


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
    atomic_write_bytes(path, (dumps(data, indent=2) + "\n").encode())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_digest(record: dict[str, Any]) -> str:
    """The checksum a run record carries of itself (of everything but its ``sha256`` key)."""
    return digest({key: value for key, value in record.items() if key != "sha256"})


RUN_FIELDS = ("run_id", "point", "replicate", "seed", "values")
"""The fields of a run record that must equal the manifest's plan of the run."""


class SweepStore:
    """Reads and writes one sweep's results folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.timeseries_dir = self.root / "timeseries"
        self.figures_dir = self.root / "figures"
        self.lock_path = self.root / ".lock"
        self.manifest_path = self.root / "manifest.json"
        self._lock_handle: int | None = None

    # -- lock ---------------------------------------------------------------
    def acquire_lock(self) -> None:
        """Take the folder's lock, or raise :class:`SweepLockedError` if a live sweep holds it.

        The lock is an exclusive ``fcntl.flock`` on ``.lock``, held for as long as the
        sweep runs; the kernel drops it when the process dies however it dies, so a
        lock file left by a dead sweep (or torn while it was written) is simply taken
        over, and of two processes taking it over at once exactly one wins. The file
        holds the holder's PID and hostname, for the messages. A lock file naming
        another host is never taken over (its sweep may be alive on a shared disk).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "hostname": socket.gethostname()}
        for _attempt in range(100):
            handle = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                live = self._read_lock() or {}
                raise SweepLockedError(
                    f"{self.root}: another sweep (pid {live.get('pid', 'unknown')}) is writing here; "
                    "wait for it or stop it") from None
            try:
                same_file = os.fstat(handle).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # its holder released it (and unlinked the file) while we waited: try again
                os.close(handle)
                continue
            holder = self._read_lock()
            if holder is not None and holder.get("hostname") != me["hostname"]:
                os.close(handle)
                raise SweepLockedError(
                    f"{self.root}: locked by a sweep on host {holder.get('hostname')} (pid {holder.get('pid')}); "
                    f"if it is dead, delete {self.lock_path}")
            os.ftruncate(handle, 0)
            os.pwrite(handle, json.dumps(me).encode(), 0)
            self._lock_handle = handle
            return
        raise SweepLockedError(f"{self.root}: could not take the lock {self.lock_path}")

    def _read_lock(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.lock_path.read_text())
        except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None

    def release_lock(self) -> None:
        if self._lock_handle is not None:
            self.lock_path.unlink(missing_ok=True)  # before unlocking: a waiter then sees a new file
            os.close(self._lock_handle)
            self._lock_handle = None

    # -- manifest -----------------------------------------------------------
    def read_manifest(self) -> Any:
        """The parsed ``manifest.json`` (None when there is none); :class:`ConfigError` when it is not JSON."""
        try:
            text = self.manifest_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(str(self.manifest_path), "", f"is not valid JSON ({exc}); the sweep's manifest is damaged") from None
        except RecursionError:
            raise ConfigError(str(self.manifest_path), "", "is nested too deep to be a sweep manifest") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    # -- runs ---------------------------------------------------------------
    def run_record_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def timeseries_path(self, run_id: str) -> Path:
        return self.timeseries_dir / f"{run_id}.parquet"

    def save_run(self, record: dict[str, Any], timeseries_parquet: bytes | None) -> None:
        """Write one finished run: its time series first, then its record, which carries the
        SHA-256 of the time series (``files``) and of itself (``sha256``)."""
        record = json_safe(record)
        record["files"] = {}
        if timeseries_parquet is not None:
            path = self.timeseries_path(record["run_id"])
            atomic_write_bytes(path, timeseries_parquet)
            record["files"][path.relative_to(self.root).as_posix()] = hashlib.sha256(timeseries_parquet).hexdigest()
        record["sha256"] = record_digest(record)
        atomic_write_json(self.run_record_path(record["run_id"]), record)

    def read_record(self, run_id: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.run_record_path(run_id).read_text())
        except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return None
        return record if isinstance(record, dict) else None

    def verify_run(self, planned: dict[str, Any]) -> tuple[str, str]:
        """The state of a planned run in the folder, checked against the checksums it carries.

        Returns:
            ``(state, detail)``: ``("ok", "")`` when it finished ok and its record and every
            file it names are intact; ``("missing", ...)`` when it never finished;
            ``("failed", error)`` when it failed; ``("corrupt", what is wrong)`` otherwise.
        """
        path = self.run_record_path(planned["run_id"])
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return "missing", "never finished"
        except OSError as exc:
            return "corrupt", f"record {path.name} cannot be read ({exc.strerror})"
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return "corrupt", f"record {path.name} is not valid JSON (cut short or overwritten)"
        try:
            intact = isinstance(record, dict) and record.get("sha256") == record_digest(record)
        except RecursionError:  # nested deeper than any record sme-abm writes
            intact = False
        if not intact:
            return "corrupt", f"record {path.name} does not match its checksum (edited or damaged)"
        for key in RUN_FIELDS:
            if record.get(key) != planned[key]:
                return "corrupt", f"record {path.name} has another {key} than the manifest plans"
        if record.get("status") != "ok":
            return "failed", str(record.get("error"))
        files = record.get("files") or {}
        if self.timeseries_path(planned["run_id"]).relative_to(self.root).as_posix() not in files:
            return "corrupt", f"record {path.name} names no time series"
        for name, expected in files.items():
            try:
                found = file_sha256(self.root / name)
            except FileNotFoundError:
                return "corrupt", f"{name} is missing"
            except OSError as exc:
                return "corrupt", f"{name} cannot be read ({exc.strerror})"
            if found != expected:
                return "corrupt", f"{name} does not match its checksum (cut short, overwritten or edited)"
        return "ok", ""

    def discard_run(self, run_id: str) -> None:
        """Delete a run's files (before it is rerun)."""
        self.run_record_path(run_id).unlink(missing_ok=True)
        self.timeseries_path(run_id).unlink(missing_ok=True)

    def remove_temporaries(self) -> None:
        """Delete temporary files left by an interrupted write."""
        for folder in (self.root, self.runs_dir, self.timeseries_dir):
            if folder.exists():
                for path in folder.glob(".*.tmp"):
                    path.unlink(missing_ok=True)

    def read_timeseries(self, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.timeseries_path(run_id), columns=columns)

    def build_runs_table(self, planned: Iterable[dict[str, Any]]) -> pd.DataFrame:
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
