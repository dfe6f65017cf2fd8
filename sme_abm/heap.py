"""Give the C heap's free pages back to the operating system at a few chosen moments.

numpy's temporary arrays at 10^5-10^6 SMEs (0.8-8 MB each) come from glibc's heap, which
keeps the pages they freed for the next step's temporaries: the resident set stays at the
live data plus the largest set of temporaries any phase has needed. A large allocation
that does not fit in that free space (a Mesa registry table when it is compacted, the
panel snapshot's Parquet encoder) then goes on top of it, and the run's peak is made of
both. :func:`release_free_heap` (glibc's ``malloc_trim(0)``) returns the free pages first,
so such an allocation costs its own size above the live data only. The step's next
temporaries fault their pages in again (some 40-70 ms at 10^6, once a year or so of
model time). Elsewhere than glibc it does nothing; results never depend on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any, Callable


def _malloc_trim() -> Callable[[int], Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only (musl has no malloc_trim)
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_free_heap() -> None:
    """Return the C heap's free pages to the operating system (glibc's ``malloc_trim(0)``)."""
    if _TRIM is not None:
        _TRIM(0)


__all__ = ["release_free_heap"]
