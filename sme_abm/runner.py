"""Run a config and write its results (atomically) with a reproducibility manifest."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from .atomic import staged_folder
from .config import Config, load_config
from .heap import release_free_heap
from .jsonio import dumps
from .model import SMEEconomy

DEPENDENCIES = ("mesa", "numpy", "pandas", "pyarrow", "pydantic", "typer", "rich", "tomli_w")


@dataclass
class RunResult:
    """Everything one run produced.

    Attributes:
        config: The resolved config that produced it.
        timeseries: Model-level outputs, one row per step.
        summary: Headline figures.
        firm_panel: Firm snapshots every ``simulation.panel_every`` steps (None when
            the run streamed them to ``panel_file``).
        exits: One row per exit.
        applications: One row per credit application, when the run recorded them.
        manifest: Config hash, seed, versions, git commit, times.
        model: The model object at the end of the run (not written to disk).
    """

    config: Config
    timeseries: pd.DataFrame
    summary: dict[str, Any]
    firm_panel: pd.DataFrame | None
    exits: pd.DataFrame
    manifest: dict[str, Any]
    model: SMEEconomy | None = field(default=None, repr=False)
    panel_file: Path | None = None
    applications: pd.DataFrame | None = None

    def write(self, out: str | Path) -> Path:
        """Write the result files into ``out`` atomically; returns the folder."""
        return write_results(self, Path(out))


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of Python, sme-abm and its dependencies."""
    found = {"python": platform.python_version()}
    for name in ("sme-abm",) + DEPENDENCIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source tree sme-abm runs from, when it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def run(
    config: Config | str | Path | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    panel_file: str | Path | None = None,
    from_state: str | Path | None = None,
    save_state: str | Path | None = None,
    record_applications: bool = False,
    **keyword_overrides: Any,
) -> RunResult:
    """Build the model from a config and run it to the end.

    Args:
        config: A Config, a TOML path, a mapping, or None for the defaults.
        overrides: Dotted-key overrides as a mapping, e.g.
            ``{"levers.p13_financing_guarantee.enabled": False}`` (the same keys
            as the CLI's ``--set``).
        progress: Optional callable called with the month after each step (burn-in months,
            if any, are negative: -burn_in_months .. -1).
        panel_file: Stream the firm panel to this Parquet file instead of memory.
        from_state: A saved state (:mod:`sme_abm.state`) to continue from; the run adds
            ``simulation.steps`` months to it, and its outputs include the state's months.
        save_state: Write the final state to this folder.
        record_applications: Keep one row per credit application (``RunResult.applications``),
            the record the quasi-experiments (:mod:`sme_abm.quasi_experiments`) read.
        **keyword_overrides: More overrides as keywords, with ``__`` for dots
            (``levers__p13_financing_guarantee__enabled=False``); ``n_smes``,
            ``steps`` and ``seed`` (or ``rng``) are shortcuts for the
            ``simulation`` keys. Keywords win over ``overrides``.

    Returns:
        The :class:`RunResult`.

    Raises:
        ConfigError: If the config or an override is invalid.

    Example:
        >>> result = run(None, {"levers.p07_tax_relief.enabled": False}, n_smes=500, steps=6, seed=1)
        >>> len(result.timeseries)
        6
    """
    dotted = dict(overrides or {})
    dotted.update({key.replace("__", "."): value for key, value in keyword_overrides.items()})
    if "rng" in dotted:
        dotted["seed"] = dotted.pop("rng")
    for short in ("n_smes", "steps", "seed"):
        if short in dotted:
            dotted[f"simulation.{short}"] = dotted.pop(short)
    if isinstance(config, Config):
        resolved = load_config(config.to_dict(), dotted) if dotted else config
    else:
        resolved = load_config(config, dotted)
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    model = SMEEconomy(resolved, state=from_state, progress=progress)
    if panel_file is not None:
        model.recorder.stream_panel(panel_file)
    if record_applications:
        model.recorder.record_applications()
    model.run(progress=progress)
    model.recorder.close_panel()
    if save_state is not None:
        model.save_state(save_state)
    elapsed = time.perf_counter() - clock
    summary = model.summary()
    summary["run_seconds"] = round(elapsed, 3)
    manifest = {
        "name": resolved.name,
        "config_sha256": resolved.digest(),
        "seed": resolved.simulation.seed,
        "n_smes": resolved.simulation.n_smes,
        "steps": resolved.simulation.steps,
        "versions": dict(versions()),
        "git_commit": git_commit(),
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "run_seconds": round(elapsed, 3),
        "command": " ".join(sys.argv),
        "from_state": str(from_state) if from_state is not None else None,
    }
    panel = None if panel_file is not None else model.firm_panel()
    return RunResult(resolved, model.timeseries(), summary, panel, model.exits(), manifest, model,
                     Path(panel_file) if panel_file is not None else None, model.recorder.applications())


def write_results(result: RunResult, out: Path) -> Path:
    """Write a run's files to ``out``: all of them, or (on any error) none.

    Files are written into a temporary sibling folder which is renamed to
    ``out`` at the end, so a reader never sees a half-written run.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already exists and is not empty")
    release_free_heap()  # the Parquet writer's buffers come on top of the live data only
    with staged_folder(out) as staging:
        result.timeseries.to_parquet(staging / "timeseries.parquet", index=False)
        if result.firm_panel is not None:
            result.firm_panel.to_parquet(staging / "firm_panel.parquet", index=False)
        elif result.panel_file is not None:
            shutil.copyfile(result.panel_file, staging / "firm_panel.parquet")
        result.exits.to_parquet(staging / "exits.parquet", index=False)
        if result.applications is not None:
            result.applications.to_parquet(staging / "applications.parquet", index=False)
        (staging / "summary.json").write_text(dumps(result.summary, indent=2) + "\n")
        (staging / "config.toml").write_text(result.config.to_toml())
        (staging / "manifest.json").write_text(dumps(result.manifest, indent=2) + "\n")
    return out


def default_out_dir(config: Config, root: Path = Path("results/runs")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{config.name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{config.name}-{stamp}-{suffix}"
    return candidate
