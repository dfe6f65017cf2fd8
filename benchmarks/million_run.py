"""The issue-6 target run: the baseline at 10^6 SMEs for 120 months, as a user runs it.

Runs ``sme-abm run configs/baseline.toml --smes N`` in a child process (Mesa
agents on, results written) and reports its wall time and peak resident memory.
Memory per SME is the child's peak RSS minus the peak RSS of the same command at
100 SMEs for one month (the interpreter and libraries), divided by N.

With ``--from-state`` it measures what a study or a user who reuses a burned-in economy pays:
the run of 120 months from a saved state of the N-SME baseline (made once, by a one-month
run after the config's burn-in, and timed apart), against the same 120 months without any
burn-in (``simulation.burn_in_months = 0``). Issue 15: a burn-in must not make a 10^6-SME
run more than twice as long.

Usage:
    python benchmarks/million_run.py [N] [--arrays-only] [--from-state]
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


def _run(n_smes: int, steps: int, out: Path, arrays_only: bool, *extra: str) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of one ``sme-abm run`` child (``extra``: more options)."""
    report = out.with_suffix(".peak")
    command = [sys.executable, "-c", CHILD, str(report), "run", str(ROOT / "configs" / "baseline.toml"),
               "--smes", str(n_smes), "--set", f"simulation.steps={steps}", "--quiet", "--out", str(out), *extra]
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


def from_state(n_smes: int = 1_000_000, steps: int = 120, arrays_only: bool = False) -> dict:
    """The run from a saved burned-in state against the same months with no burn-in."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        _, base_bytes = _run(100, 1, scratch / "small", arrays_only)
        plain_s, _ = _run(n_smes, steps, scratch / "plain", arrays_only, "--set", "simulation.burn_in_months=0")
        state = scratch / "state"
        burn_in_s, _ = _run(n_smes, 1, scratch / "burn", arrays_only, "--save-state", str(state))
        warm_s, peak_bytes = _run(n_smes, steps, scratch / "warm", arrays_only, "--from-state", str(state))
    return {"n_smes": n_smes, "steps": steps, "mesa_agents": not arrays_only,
            "no_burn_in_wall_s": round(plain_s, 1), "make_state_wall_s": round(burn_in_s, 1),
            "from_state_wall_s": round(warm_s, 1), "from_state_over_no_burn_in": round(warm_s / plain_s, 2),
            "from_state_bytes_per_sme": round((peak_bytes - base_bytes) / n_smes)}


if __name__ == "__main__":
    sizes = [int(arg) for arg in sys.argv[1:] if arg.isdigit()]
    measure = from_state if "--from-state" in sys.argv else main
    print(json.dumps(measure(sizes[0] if sizes else 1_000_000, arrays_only="--arrays-only" in sys.argv)))
