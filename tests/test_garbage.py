"""Python's cyclic garbage collector waits for the end of a step (sme_abm.garbage)."""

from __future__ import annotations

import gc
import weakref

from sme_abm import SMEEconomy, model as model_module


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_collector_is_paused_in_a_step_and_collects_its_cycles_at_the_end(monkeypatch):
    """In a step the collector is off; after it, it is on again and the cyclic garbage the
    step made is gone (one young-generation collection). A caller that disabled it keeps it
    disabled, and then the cycle stays until the caller collects."""
    seen, made = [], []
    real = model_module.set_prices

    def set_prices(model):
        seen.append(gc.isenabled())
        cycle = _Cycle()
        made.append(weakref.ref(cycle))
        del cycle
        return real(model)

    monkeypatch.setattr(model_module, "set_prices", set_prices)
    economy = SMEEconomy(n_smes=500, rng=1, simulation__burn_in_months=0)
    assert gc.isenabled()
    economy.step()
    assert seen == [False] and gc.isenabled()
    assert made[-1]() is None  # collected at the end of the step
    gc.disable()
    try:
        economy.step()
        assert seen[-1] is False and not gc.isenabled()
        assert made[-1]() is not None  # nothing collected behind the caller's back
    finally:
        gc.enable()
    gc.collect()
    assert made[-1]() is None
