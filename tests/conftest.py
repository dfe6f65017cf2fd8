from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# The suite runs the same examples every time (CI must not turn red on a new random draw);
# HYPOTHESIS_PROFILE=explore searches new examples, as when hunting for bugs.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess (as a user would)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "sme_abm", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout, env=env)


@pytest.fixture
def small_config() -> dict:
    return {"simulation": {"n_smes": 1_000, "steps": 24, "seed": 7}}


class _GoodsMarketClosed(Exception):
    """Raised in place of the phase after the goods market, to stop a month there."""


@pytest.fixture
def through_goods_market(tmp_path, monkeypatch):
    """``through_goods_market(options, section, field, values)``: economies loaded from one saved
    state (made with ``options``, three months in) that differ only in ``config.section.field``,
    one per value, each run through the next month up to and including the goods market (the
    month stops where receivables would be collected). Compares what a goods-market setting
    does to the same month."""
    import sme_abm.model
    from sme_abm import SMEEconomy

    def close(*_):
        raise _GoodsMarketClosed

    def run(options: dict, section: str, field: str, values: tuple) -> list:
        SMEEconomy(**options).run(3).save_state(tmp_path / "state")
        models = []
        for value in values:
            model = SMEEconomy(state=tmp_path / "state", **options)
            part = getattr(model.config, section).model_copy(update={field: value})
            model.config = model.config.model_copy(update={section: part})
            models.append(model)
        monkeypatch.setattr(sme_abm.model, "collect_receivables", close)
        for model in models:
            with pytest.raises(_GoodsMarketClosed):
                model.step()
        return models

    return run
