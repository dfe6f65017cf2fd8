"""Column-wise agent state: one numpy array per attribute, one row per agent.

:class:`ColumnStore` holds a population's state in preallocated buffers with
spare capacity, so entry appends in place and exit fills the holes with rows
from the end (no copy of the whole population). Reading ``store.cash`` gives
a view of the live rows; assigning ``store.cash = values`` writes into the
buffer. :func:`row_property` gives a Mesa agent class attributes that read
and write its own row, so Mesa's ``AgentSet.select/agg/groupby`` see the same
numbers as the array code.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

GROWTH = 1.02  # capacity multiplier when a buffer is full: little spare memory, copies stay amortised O(1)


class ColumnStore:
    """A population's state as named, equally long numpy arrays.

    Args:
        schema: Column name to numpy dtype.
        size: Number of rows to allocate (zero-filled).
    """

    def __init__(self, schema: dict[str, Any], size: int = 0) -> None:
        object.__setattr__(self, "schema", dict(schema))
        object.__setattr__(self, "size", size)
        capacity = max(size, 8)
        object.__setattr__(self, "_buffers", {name: np.zeros(capacity, dtype=dtype) for name, dtype in schema.items()})

    def __getattr__(self, name: str) -> np.ndarray:
        # Called only when ``name`` is not found otherwise. The view of the live rows is kept
        # in the instance dict, so later reads find it there without this call (a step reads
        # columns some 600 times); :meth:`_rows_changed` drops the views when the rows change.
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            view = buffers[name][: self.__dict__["size"]]
            self.__dict__[name] = view
            return view
        raise AttributeError(f"{type(self).__name__} has no column or attribute {name!r}")

    def _rows_changed(self) -> None:
        """Forget the cached column views (after the size or a buffer changed)."""
        attributes = self.__dict__
        for name in self._buffers:
            attributes.pop(name, None)

    def __setattr__(self, name: str, value: Any) -> None:
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            buffers[name][: self.size] = value
        else:
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return self.size

    def allocated_rows(self) -> int:
        """Rows the buffers can hold before they must grow."""
        return next(iter(self._buffers.values())).size

    @property
    def columns(self) -> list[str]:
        return list(self.schema)

    def column(self, name: str) -> np.ndarray:
        return self._buffers[name][: self.size]

    def _reserve(self, size: int) -> None:
        if size <= self.allocated_rows():
            return
        capacity = max(size, int(self.allocated_rows() * GROWTH) + 8)
        for name, buffer in self._buffers.items():
            # object columns (the Mesa agents) hold None, not the int 0 np.zeros would put there
            grown = np.full(capacity, None, dtype=object) if buffer.dtype == object else np.zeros(capacity, dtype=buffer.dtype)
            grown[: self.size] = buffer[: self.size]
            self._buffers[name] = grown
        self._rows_changed()

    def append(self, values: dict[str, np.ndarray | float | int | bool], count: int) -> np.ndarray:
        """Append ``count`` rows; missing columns are zero. Returns their row indices."""
        unknown = set(values) - set(self.schema)
        if unknown:
            raise KeyError(f"unknown columns {sorted(unknown)}")
        start = self.size
        self._reserve(start + count)
        for name, buffer in self._buffers.items():
            buffer[start:start + count] = values.get(name, 0)
        object.__setattr__(self, "size", start + count)
        self._rows_changed()
        return np.arange(start, start + count)

    def remove_rows(self, leaving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drop the rows flagged in ``leaving`` by moving rows from the end into the holes.

        Row order is not kept. Returns ``(holes, movers)``: the row ``movers[i]``
        now lives at row ``holes[i]``.
        """
        remaining = self.size - int(np.count_nonzero(leaving))
        holes = np.flatnonzero(leaving[:remaining])
        movers = remaining + np.flatnonzero(~leaving[remaining:])
        for buffer in self._buffers.values():
            buffer[holes] = buffer[movers]
            if buffer.dtype == object:  # drop the references the vacated rows still hold
                buffer[remaining:self.size] = None
        object.__setattr__(self, "size", remaining)
        self._rows_changed()
        return holes, movers

    def nbytes(self) -> int:
        """Bytes held by the buffers (including spare capacity)."""
        return sum(buffer.nbytes for buffer in self._buffers.values())


def row_property(column: str, doc: str = "") -> property:
    """A property that reads and writes ``column`` at the agent's own row."""

    def getter(agent: Any) -> Any:
        return agent._store._buffers[column][agent.row].item()

    def setter(agent: Any, value: Any) -> None:
        agent._store._buffers[column][agent.row] = value

    return property(getter, setter, doc=doc or f"This agent's `{column}` (a row of the column array).")


def add_row_properties(cls: type, columns: Iterable[str]) -> None:
    """Give ``cls`` one row property per column (skipping names it defines)."""
    for name in columns:
        if not hasattr(cls, name):
            setattr(cls, name, row_property(name))
