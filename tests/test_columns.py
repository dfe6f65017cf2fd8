"""ColumnStore's buffers: grown when full, given back when the rows fall well below them."""

from __future__ import annotations

import numpy as np

from sme_abm.agents.columns import GROWTH, SHRINK_SLACK, ColumnStore


def test_buffers_shrink_after_the_rows_fall_and_keep_the_rows() -> None:
    store = ColumnStore({"x": np.float64, "agent": object}, 0)
    store.append({"x": np.arange(1000.0), "agent": np.array([f"a{i}" for i in range(1000)], dtype=object)}, 1000)
    capacity = store.allocated_rows()
    leaving = np.zeros(1000, dtype=bool)
    leaving[:30] = True  # 3%: within the slack, the buffers stay
    store.remove_rows(leaving)
    assert store.allocated_rows() == capacity
    leaving = np.zeros(store.size, dtype=bool)
    leaving[::5] = True  # 20% more: the buffers shrink to GROWTH times the rows
    kept = np.sort(store.x[~leaving])
    store.remove_rows(leaving)
    assert store.allocated_rows() == int(store.size * GROWTH) + 8 < SHRINK_SLACK * store.size + 8
    assert np.array_equal(np.sort(store.x), kept)
    assert all(agent == f"a{int(x)}" for agent, x in zip(store.agent, store.x))
    assert all(agent is None for agent in store._buffers["agent"][store.size:])
    store.append({"x": 1.5}, 200)  # and grow again
    assert store.size == 976 and np.count_nonzero(store.x == 1.5) == 200
