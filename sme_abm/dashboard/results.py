"""Reading a sweep's results folder for the results browser.

The expected layout is ``runs.parquet`` (one row per run), ``timeseries/*.parquet``
(each with a ``run_id`` column) and ``manifest.json``; sensitivity results may
come as ``sensitivity.json``, ``sensitivity.parquet`` or ``sensitivity.csv``.
The sweep code is written elsewhere, so everything here is defensive: what
cannot be read becomes a warning, and only a folder with no readable runs
table raises :class:`ResultsError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: Columns that identify a run rather than describe it.
ID_COLUMNS = {"run_id", "run", "point", "seed", "replicate", "rep", "config_digest", "digest", "status", "error",
              "path", "attempts", "elapsed_s", "worker"}
#: Design kinds whose runs sit on a grid (a heatmap of two parameters means something).
GRID_DESIGNS = ("grid",)
#: Names under which a manifest may list the swept parameters.
MANIFEST_PARAMETER_KEYS = ("parameters", "swept", "swept_parameters", "factors", "grid", "ranges", "problem")
#: Column names that hold sensitivity indices.
SENSITIVITY_INDEX_NAMES = ("S1", "ST", "S1_conf", "ST_conf", "mu_star", "mu", "sigma", "mu_star_conf", "delta", "S2")


class ResultsError(Exception):
    """A folder that cannot be shown as sweep results."""


def project_root() -> Path:
    """The repository the package sits in (the folder holding ``results/``)."""
    return Path(__file__).resolve().parents[2]


def results_roots() -> list[Path]:
    """The folders the results browser may open, and only folders under them.

    ``SME_ABM_RESULTS_ROOTS`` (paths separated by ``os.pathsep``, set by
    ``sme-abm dashboard --results-root``) wins; the default is the project's
    ``results/``.
    """
    env = os.environ.get("SME_ABM_RESULTS_ROOTS", "")
    roots = [Path(part).expanduser() for part in env.split(os.pathsep) if part.strip()] if env.strip() else []
    return [root.resolve() for root in (roots or [project_root() / "results"])]


def refusal(folder: str) -> str:
    """The one message for any folder that cannot be opened: the same whether
    it exists or not, so the browser cannot be used to probe the disk."""
    return f"{folder}: not a sweep results folder (one holding runs.parquet) under {', '.join(str(r) for r in results_roots())}"


def confine(folder: str | Path) -> Path:
    """``folder`` resolved (relative paths against the first root), if it lies
    under one of :func:`results_roots`.

    Raises:
        ResultsError: Outside the roots, empty, or not a sweep's folder, with
            the same message in every case.
    """
    text = str(folder).strip()
    if not text or "\x00" in text:
        raise ResultsError(refusal(text))
    roots = results_roots()
    path = Path(text).expanduser()
    path = (path if path.is_absolute() else roots[0] / path).resolve()
    if not any(path == root or root in path.parents for root in roots):
        raise ResultsError(refusal(text))
    if not (path / "runs.parquet").is_file():
        raise ResultsError(refusal(text))
    return path


def list_results_folders(limit: int = 200) -> list[str]:
    """Sweep folders (holding ``runs.parquet``) under the roots, newest first,
    as paths relative to their root where possible."""
    found: list[tuple[float, str]] = []
    for root in results_roots():
        if not root.is_dir():
            continue
        for runs in root.glob("**/runs.parquet"):
            folder = runs.parent.resolve()
            if ".partial" in folder.name or not any(folder == r or r in folder.parents for r in results_roots()):
                continue
            shown = str(folder.relative_to(root)) if folder != root else str(root)
            found.append((runs.stat().st_mtime, shown if len(results_roots()) == 1 else str(folder)))
            if len(found) >= limit:
                break
    return [name for _, name in sorted(found, reverse=True)]


@dataclass
class SweepResults:
    """A sweep's results, as far as they could be read.

    Attributes:
        folder: Where they came from.
        runs: One row per run.
        timeseries: All runs' time series stacked (``run_id`` column), or None.
        manifest: The manifest, or an empty dict.
        parameters: Columns of ``runs`` that were swept.
        outcomes: Numeric run-level outcome columns.
        sensitivity: Sensitivity indices (``parameter`` column plus index
            columns, optionally ``outcome``), or None.
        warnings: What could not be read, for the page to show.
    """

    folder: Path
    runs: pd.DataFrame
    timeseries: pd.DataFrame | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    parameters: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    sensitivity: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def design_kind(self) -> str:
        """The sweep's design (``grid``, ``morris``, ``sobol``, ...) or ``""``."""
        kind = self.manifest.get("design_kind") or (self.manifest.get("experiment", {}).get("design") or {}).get("kind")
        return str(kind or "")

    @property
    def is_grid(self) -> bool:
        return self.design_kind in GRID_DESIGNS

    def _declared(self, key: str, available: list[str]) -> list[str]:
        declared = (self.manifest.get("experiment") or {}).get(key) or []
        first = [name for name in declared if name in available]
        return first + [name for name in available if name not in first]

    @property
    def default_outputs(self) -> list[str]:
        """Time-series outcomes, the sweep's declared ``outputs`` first."""
        return self._declared("outputs", self.timeseries_outcomes)

    @property
    def default_metrics(self) -> list[str]:
        """Run outcomes, the sweep's declared ``metrics`` first."""
        return self._declared("metrics", self.outcomes)

    @property
    def timeseries_outcomes(self) -> list[str]:
        """Numeric columns of the stacked time series other than ids and step."""
        if self.timeseries is None:
            return []
        skip = ID_COLUMNS | {"step"}
        return [c for c in self.timeseries.columns
                if c not in skip and pd.api.types.is_numeric_dtype(self.timeseries[c])]


def _read_table(path: Path) -> pd.DataFrame:
    """Parquet or one of ``sme-abm sweep``'s ``figures/sensitivity_*.csv`` tables;
    nothing else (a CSV planted anywhere else is never read)."""
    if path.suffix == ".csv":
        if path.parent.name != "figures" or not path.name.startswith("sensitivity_"):
            raise ValueError(f"{path.name}: not a format the results browser reads")
        return pd.read_csv(path)
    return pd.read_parquet(path)


def _manifest_parameters(manifest: dict[str, Any]) -> list[str]:
    for key in MANIFEST_PARAMETER_KEYS:
        value = manifest.get(key)
        if isinstance(value, dict) and "names" in value and isinstance(value["names"], list):
            return [str(v) for v in value["names"]]
        if isinstance(value, dict):
            return [str(k) for k in value]
        if isinstance(value, list):
            names = []
            for item in value:
                if isinstance(item, str):
                    names.append(item)
                elif isinstance(item, dict):
                    name = item.get("name") or item.get("key") or item.get("parameter")
                    if name:
                        names.append(str(name))
            if names:
                return names
    return []


def _swept_parameters(runs: pd.DataFrame, manifest: dict[str, Any]) -> list[str]:
    """Swept columns: those the manifest names (matched loosely), else dotted
    config keys with more than one value."""
    listed = _manifest_parameters(manifest)
    found: list[str] = []
    for name in listed:
        for candidate in (name, name.replace(".", "__"), name.replace("__", "."), name.split(".")[-1]):
            if candidate in runs.columns and candidate not in found:
                found.append(candidate)
                break
    if found:
        return found
    return [c for c in runs.columns
            if ("." in c or c.startswith("levers__") or c.startswith("param"))
            and c not in ID_COLUMNS and runs[c].nunique(dropna=True) > 1]


def _sensitivity_frame(data: Any, outcome: str | None = None) -> pd.DataFrame | None:
    """Normalise the usual shapes of sensitivity output into one table."""
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        frame = pd.DataFrame(data)
    elif isinstance(data, dict) and any(k in data for k in SENSITIVITY_INDEX_NAMES):
        names = data.get("names") or data.get("parameters") or data.get("parameter")
        columns = {k: v for k, v in data.items() if k in SENSITIVITY_INDEX_NAMES and isinstance(v, list)
                   and (not v or not isinstance(v[0], list))}
        if not columns:
            return None
        frame = pd.DataFrame(columns)
        if isinstance(names, list) and len(names) == len(frame):
            frame.insert(0, "parameter", [str(n) for n in names])
    elif isinstance(data, dict):
        parts = []
        for key, value in data.items():
            if isinstance(value, (dict, list)):
                part = _sensitivity_frame(value, outcome=str(key))
                if part is not None:
                    parts.append(part)
        return pd.concat(parts, ignore_index=True) if parts else None
    else:
        return None
    for alias in ("name", "names", "factor", "key"):
        if "parameter" not in frame and alias in frame:
            frame = frame.rename(columns={alias: "parameter"})
    if "parameter" not in frame or not any(c in frame for c in SENSITIVITY_INDEX_NAMES):
        return None
    if outcome is not None and "outcome" not in frame:
        frame.insert(0, "outcome", outcome)
    return frame


def _load_sensitivity(folder: Path, runs: pd.DataFrame, warnings: list[str]) -> pd.DataFrame | None:
    for name in ("sensitivity.json", "sensitivity.parquet"):
        path = folder / name
        if not path.exists():
            continue
        try:
            if name.endswith(".json"):
                frame = _sensitivity_frame(json.loads(path.read_text(encoding="utf-8")))
            else:
                frame = _sensitivity_frame(_read_table(path).to_dict(orient="records"))
        except (OSError, ValueError, TypeError) as exc:
            warnings.append(f"{name}: cannot be read ({exc})")
            continue
        if frame is None:
            warnings.append(f"{name}: no parameter names with S1/ST/mu_star indices found")
            continue
        return frame
    # what `sme-abm sweep` writes: figures/sensitivity_<metric>.csv, one table per outcome
    parts = []
    for path in sorted((folder / "figures").glob("sensitivity_*.csv")):
        try:
            frame = _sensitivity_frame(_read_table(path).to_dict(orient="records"),
                                       outcome=path.stem[len("sensitivity_"):])
        except (OSError, ValueError, TypeError) as exc:
            warnings.append(f"figures/{path.name}: cannot be read ({exc})")
            continue
        if frame is not None:
            parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else None


def load_results(folder: str | Path) -> SweepResults:
    """Read a sweep's results folder.

    Args:
        folder: The folder holding ``runs.parquet``.

    Returns:
        What could be read, with warnings for the rest.

    Raises:
        ResultsError: Outside the results roots, not a folder, or no readable
            ``runs.parquet`` (the same message for the first three).
    """
    folder = confine(folder)
    warnings: list[str] = []
    runs_path = folder / "runs.parquet"
    try:
        runs = _read_table(runs_path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise ResultsError(f"runs.parquet: cannot be read ({type(exc).__name__})") from None
    if runs.empty:
        raise ResultsError("runs.parquet: has no runs")

    manifest: dict[str, Any] = {}
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest = loaded if isinstance(loaded, dict) else {"manifest": loaded}
        except (OSError, ValueError) as exc:
            warnings.append(f"manifest.json: cannot be read ({exc})")
    else:
        warnings.append("manifest.json: missing")

    parts = []
    ts_dir = folder / "timeseries"
    for path in sorted(ts_dir.glob("*.parquet")) if ts_dir.is_dir() else []:
        try:
            part = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is only a warning
            warnings.append(f"timeseries/{path.name}: cannot be read ({type(exc).__name__})")
            continue
        if "run_id" not in part:
            warnings.append(f"timeseries/{path.name}: no run_id column, skipped")
            continue
        parts.append(part)
    timeseries = pd.concat(parts, ignore_index=True) if parts else None
    if timeseries is None:
        warnings.append("timeseries/: no readable time series with a run_id column")

    parameters = _swept_parameters(runs, manifest)
    outcomes = [c for c in runs.columns if c not in parameters and c not in ID_COLUMNS
                and pd.api.types.is_numeric_dtype(runs[c]) and not pd.api.types.is_bool_dtype(runs[c])]
    sensitivity = _load_sensitivity(folder, runs, warnings)
    return SweepResults(folder=folder, runs=runs, timeseries=timeseries, manifest=manifest,
                        parameters=parameters, outcomes=outcomes, sensitivity=sensitivity, warnings=warnings)
