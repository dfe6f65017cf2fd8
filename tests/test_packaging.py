"""The wheel carries everything a run needs: installed away from the repository
(lever registry included), it runs a config given by path."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_runs_without_the_repository(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next(dist.glob("sme_abm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "sme_abm/levers/registry.toml" in names
    assert not any(name.startswith(("tests/", "configs/", "docs/")) for name in names)

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import sme_abm; print(sme_abm.__file__)"],
                           check=True, capture_output=True, text=True, cwd=elsewhere, env=env)
    assert where.stdout.strip().startswith(str(site)), where.stdout  # the wheel's copy, not the repository's
    run = subprocess.run([sys.executable, "-m", "sme_abm", "run", str(ROOT / "configs" / "baseline.toml"),
                          "--smes", "300", "--steps", "3", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, cwd=elsewhere, env=env)
    assert run.returncode == 0, run.stderr
    for name in ("timeseries.parquet", "summary.json", "config.toml", "manifest.json"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
