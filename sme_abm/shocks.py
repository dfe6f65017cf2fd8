"""Scheduled shocks: demand collapses and natural disasters (``[[shocks]]``).

A demand shock scales the demand reaching hit firms by ``1 - depth`` for
``duration`` months. A disaster destroys ``depth`` of the capital of a random
``share`` of firms in the named sectors at its start month, and those firms
count as shock-hit for ``duration`` months (for relief under lever 23).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy


def apply_shocks(model: "SMEEconomy") -> None:
    """Set this month's demand factor and shock-hit flags."""
    smes = model.smes
    t = model.month
    factor = np.ones(smes.size)
    hit = np.zeros(smes.size, dtype=bool)
    for index, shock in enumerate(model.config.shocks):
        if not shock.start <= t < shock.start + shock.duration:
            continue
        in_shocked_sector = np.zeros(len(model.sector_names), dtype=bool)
        in_shocked_sector[[model.sector_names.index(name) for name in shock.sectors]] = True
        in_sector = in_shocked_sector[smes.sector]
        # which firms a shock hits is fixed for its whole duration (hash of id and shock)
        draw = _stable_uniform(smes.firm_id, model.config.simulation.seed, index)
        targeted = in_sector & (draw < shock.share)
        if shock.kind == "demand":
            factor[targeted] *= 1.0 - shock.depth
        elif t == shock.start:
            destroyed = shock.depth * smes.capital[targeted]
            smes.capital[targeted] -= destroyed
            model.step_stats["capital_destroyed"] = float(destroyed.sum())
        hit |= targeted
    model.shock_factor = np.maximum(factor, 1e-9)
    smes.shock_hit = hit


def _stable_uniform(ids: np.ndarray, seed: int, index: int) -> np.ndarray:
    """A uniform draw per firm that does not depend on the order of rows."""
    mixed = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64((seed * 1_000_003 + index) & (2**63 - 1))
    mixed ^= mixed >> np.uint64(31)
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(29)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)
