"""How many SMEs fit on one machine? Arrays-only runs of a few steps at growing N.

Each N runs in a fresh interpreter under an address-space limit (``ulimit -v``
set by the caller, see docs/performance.md), so running out of memory ends
that run with a MemoryError instead of waking the kernel's OOM killer on a
shared machine. Prints one JSON line per N.

Usage:
    python benchmarks/largest_n.py N [STEPS]
"""

from __future__ import annotations

import json

import statistics
import sys
import time


def main(n_smes: int, steps: int = 3) -> dict:
    """Build an arrays-only economy of ``n_smes`` SMEs and time ``steps`` steps."""
    from sme_abm.bench import peak_rss_bytes
    from sme_abm.model import SMEEconomy

    before = peak_rss_bytes()
    record: dict = {"n_smes": n_smes, "steps": steps}
    try:
        start = time.perf_counter()
        model = SMEEconomy(n_smes=n_smes, rng=1, simulation__mesa_agents=False)
        record["init_s"] = time.perf_counter() - start
        record["after_init_bytes_per_sme"] = (peak_rss_bytes() - before) / n_smes
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            model.step()
            times.append(time.perf_counter() - start)
        record["step_s"] = statistics.median(times)
        record["step_times"] = times
        record["columns_bytes_per_sme"] = model.smes.nbytes() / model.smes.size
        record["ok"] = True
    except MemoryError as exc:
        record["ok"] = False
        record["error"] = f"MemoryError: {exc}"
    peak = (peak_rss_bytes() - before)
    record["peak_gb"] = peak / 1e9
    record["peak_bytes_per_sme"] = peak / n_smes
    return record


if __name__ == "__main__":
    print(json.dumps(main(int(float(sys.argv[1])), int(sys.argv[2]) if len(sys.argv) > 2 else 3)), flush=True)
