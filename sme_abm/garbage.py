"""Python's cyclic garbage collector, paused for the length of a step.

The collector runs whenever enough container objects have been allocated, and each run
walks the objects of the generations it collects. A step at 10^5 SMEs allocates thousands
(the entrants' Mesa agents, their dictionaries and weak references, the phases'
temporaries), so it collected the youngest generation about nine times a step, the middle
one about once every ten steps and, every few dozen steps, all ~300,000 tracked objects
(some 170 ms). Measured on the burned-in economy at 10^5 SMEs (102,000 firms; blocks of 10
steps alternated 8 times in one process): 57.5 ms a step (mean) with the collector as Python
sets it, 47.0 ms with it paused during the step and the young generation collected at its end
(docs/performance.md).

Nothing in a step depends on the cyclic collector: SME agents are freed by reference
counting when they leave the registry (their weak-reference callbacks run then), and the
step's cyclic garbage, if any, is collected at its end. The pause is process-wide for the
step's length and leaves the collector as it found it: if the caller had disabled it, it
stays disabled and nothing is collected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block, then collect its young garbage."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


__all__ = ["collector_paused"]
