"""Column-wise agent state: one numpy array per attribute, one row per agent.

:class:`ColumnStore` holds a population's state; :func:`row_property` gives a
Mesa agent class attributes that read and write its own row, so that Mesa's
``AgentSet.select/agg/groupby`` see the same numbers as the array code.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np


class ColumnStore:
    """A population's state as named, equally long numpy arrays.

    Args:
        schema: Column name to numpy dtype.
        size: Number of rows to allocate (zero-filled).
    """

    def __init__(self, schema: dict[str, Any], size: int = 0) -> None:
        self.schema = dict(schema)
        for name, dtype in self.schema.items():
            setattr(self, name, np.zeros(size, dtype=dtype))
        self.size = size

    def __len__(self) -> int:
        return self.size

    @property
    def columns(self) -> list[str]:
        return list(self.schema)

    def column(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def append(self, values: dict[str, np.ndarray | float | int | bool], count: int) -> np.ndarray:
        """Append ``count`` rows; missing columns are zero. Returns their row indices."""
        unknown = set(values) - set(self.schema)
        if unknown:
            raise KeyError(f"unknown columns {sorted(unknown)}")
        for name, dtype in self.schema.items():
            new = np.zeros(count, dtype=dtype)
            if name in values:
                new[:] = values[name]
            setattr(self, name, np.concatenate([getattr(self, name), new]))
        start = self.size
        self.size += count
        return np.arange(start, self.size)

    def keep(self, mask: np.ndarray) -> None:
        """Drop every row where ``mask`` is False (order of the rest is kept)."""
        for name in self.schema:
            setattr(self, name, getattr(self, name)[mask])
        self.size = int(np.count_nonzero(mask))

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.schema)


def row_property(column: str, doc: str = "") -> property:
    """A property that reads and writes ``column`` at the agent's own row."""

    def getter(agent: Any) -> Any:
        return getattr(agent._store, column)[agent.row].item()

    def setter(agent: Any, value: Any) -> None:
        getattr(agent._store, column)[agent.row] = value

    return property(getter, setter, doc=doc or f"This agent's `{column}` (a row of the column array).")


def add_row_properties(cls: type, columns: Iterable[str]) -> None:
    """Give ``cls`` one row property per column (skipping names it defines)."""
    for name in columns:
        if not hasattr(cls, name):
            setattr(cls, name, row_property(name))
