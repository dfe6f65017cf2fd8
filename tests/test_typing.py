"""The public API is type-checked: mypy passes on the modules listed in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_public_modules_pass_mypy(tmp_path):
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success" in checked.stdout
