"""The issue-6 target run: the baseline at 10^6 SMEs for 120 months, as a user runs it.

Runs ``sme-abm run configs/baseline.toml --smes N`` in a child process (Mesa
agents on, results written) and reports its wall time and peak resident memory.
Memory per SME is the child's peak RSS minus the peak RSS of the same command at
100 SMEs for one month (the interpreter and libraries), divided by N.

Usage:
    python benchmarks/million_run.py [N] [--arrays-only]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# The child reports its own high-water mark: wait4's ru_maxrss would include the parent's
# memory (Linux carries the forking process's RSS high-water mark into the child).
CHILD = """
import atexit, sys
from pathlib import Path
report = Path(sys.argv.pop(1))
def write_peak():
    status = Path("/proc/self/status").read_text().splitlines()
    report.write_text(next(line.split()[1] for line in status if line.startswith("VmHWM")))
atexit.register(write_peak)
sys.argv[0] = "sme-abm"
from sme_abm.cli import main
main()
"""


def _run(n_smes: int, steps: int, out: Path, arrays_only: bool) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of one ``sme-abm run`` child."""
    report = out.with_suffix(".peak")
    command = [sys.executable, "-c", CHILD, str(report), "run", str(ROOT / "configs" / "baseline.toml"),
               "--smes", str(n_smes), "--set", f"simulation.steps={steps}", "--quiet", "--out", str(out)]
    if arrays_only:
        command += ["--set", "simulation.mesa_agents=false"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, int(report.read_text()) * 1024  # VmHWM is in KiB

def main(n_smes: int = 1_000_000, steps: int = 120, arrays_only: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        _, base_bytes = _run(100, 1, Path(scratch) / "small", arrays_only)
        seconds, peak_bytes = _run(n_smes, steps, Path(scratch) / "large", arrays_only)
    return {"n_smes": n_smes, "steps": steps, "mesa_agents": not arrays_only, "wall_s": round(seconds, 1),
            "peak_rss_bytes": peak_bytes, "base_rss_bytes": base_bytes,
            "bytes_per_sme": round((peak_bytes - base_bytes) / n_smes)}


if __name__ == "__main__":
    sizes = [int(arg) for arg in sys.argv[1:] if arg.isdigit()]
    print(json.dumps(main(sizes[0] if sizes else 1_000_000, arrays_only="--arrays-only" in sys.argv)))
