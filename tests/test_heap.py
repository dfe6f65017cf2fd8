"""Giving the C heap's free pages back (sme_abm.heap) changes nothing a run computes."""

from __future__ import annotations

import numpy as np

from sme_abm import SMEEconomy
from sme_abm.heap import release_free_heap


def test_release_free_heap_is_harmless_and_leaves_results_alone(monkeypatch) -> None:
    import sme_abm.heap as heap

    release_free_heap()  # callable whether or not the C library has malloc_trim
    scratch = np.ones(1_000_000)  # live data survives a trim
    release_free_heap()
    assert scratch.sum() == 1_000_000.0
    reference = SMEEconomy(n_smes=600, rng=7, simulation__panel_every=2)
    reference.run(6)
    monkeypatch.setattr(heap, "_TRIM", None)  # as on a C library without malloc_trim
    untrimmed = SMEEconomy(n_smes=600, rng=7, simulation__panel_every=2)
    untrimmed.run(6)
    assert reference.timeseries().equals(untrimmed.timeseries())
    assert reference.firm_panel().equals(untrimmed.firm_panel())
