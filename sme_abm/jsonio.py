"""JSON that every parser reads: a number that is not finite (NaN, an infinity) is written as ``null``.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which ``JSON.parse`` and most
other readers reject. Every JSON file sme-abm writes goes through :func:`dumps`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: non-finite floats become None, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalars and arrays
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(value)``; never writes NaN or Infinity."""
    return json.dumps(json_safe(value), allow_nan=False, **options)


def digest(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value`` (sorted keys, no spaces)."""
    import hashlib

    return hashlib.sha256(dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
