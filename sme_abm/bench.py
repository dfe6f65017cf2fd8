"""``sme-abm bench``: speed and memory of the economy, side by side with Mesa.

Everything that is compared is measured in one process run, so that the
ratios are not spoiled by other jobs on a shared machine changing the speed
between runs:

* SME-steps per second of the full model (baseline defaults, all 25 levers
  on, Mesa agents on, accounting checked every step) at each size N: N over
  the median wall time of a step, after a warm-up step;
* agent-steps per second of Mesa's own ``BoltzmannWealth`` example (10,000
  agents on a 100 x 100 grid), the reference for "as fast as plain Mesa";
* the scaling exponent b of ``time per step ~ N^b``, a least-squares line
  through the (log N, log median step time) points;
* peak memory per SME: the growth of the resident set's high-water mark
  (Linux ``VmHWM``, see :func:`peak_rss_bytes`) from just before the model is
  built to after a few steps, divided by N, each N in a fresh subprocess (so
  one size's peak cannot hide another's).

Run ``python -m sme_abm.bench --probe-memory N STEPS MESA`` to get one memory
probe as JSON (that is what the subprocesses run).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
BOLTZMANN_AGENTS = 10_000
BOLTZMANN_GRID = 100
#: Months of burn-in before the stationary economy is timed: the shipped configs' burn-in.
STATIONARY_BURN_IN = 360
#: Largest size whose stationary economy is timed (the burn-in at 10^6 would take minutes).
STATIONARY_MAX_SIZE = 100_000

Progress = Callable[[str], None]


def _median_step_seconds(step: Callable[[], None], steps: int, warmup: int = 1) -> float:
    """Median wall time of ``step()`` over ``steps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_model(n_smes: int, steps: int, seed: int = 1, **overrides: Any) -> dict[str, float]:
    """Build the baseline economy with ``n_smes`` SMEs and time its steps.

    Args:
        n_smes: SMEs at the start.
        steps: Timed steps (one untimed warm-up step comes first).
        seed: Random seed.
        **overrides: Config overrides, e.g. ``simulation__mesa_agents=False``.

    Returns:
        ``init_s`` (set-up time), ``step_s`` (median step time), ``firms`` (the mean
        number of live SMEs the timed steps stepped) and ``sme_steps_per_s`` (``firms /
        step_s``). A burned-in economy holds fewer or more firms than it started with
        (about 11% fewer at 10^5 since entry is liquidity-constrained), so the rate counts
        the firms actually stepped, not ``n_smes``.
    """
    from .model import SMEEconomy

    start = time.perf_counter()
    model = SMEEconomy(n_smes=n_smes, rng=seed, **overrides)
    init_s = time.perf_counter() - start
    stepped: list[int] = []

    def step() -> None:
        stepped.append(model.smes.size)
        model.step()

    step_s = _median_step_seconds(step, steps)
    firms = statistics.fmean(stepped[1:])  # the timed steps, not the warm-up
    return {"init_s": init_s, "step_s": step_s, "firms": firms, "sme_steps_per_s": firms / step_s}


def time_boltzmann(n_agents: int = BOLTZMANN_AGENTS, grid: int = BOLTZMANN_GRID, steps: int = 5,
                   seed: int = 1) -> dict[str, float]:
    """Time Mesa's ``BoltzmannWealth`` example (its own step, data collection included).

    Returns:
        ``step_s`` (median step time) and ``agent_steps_per_s``.
    """
    model = _boltzmann_model(n_agents, grid, seed)
    step_s = _median_step_seconds(model.step, steps)
    return {"step_s": step_s, "agent_steps_per_s": n_agents / step_s}


def _boltzmann_model(n_agents: int, grid: int, seed: int) -> Any:
    """Mesa's ``BoltzmannWealth`` example: Mesa 3.5 takes a ``BoltzmannScenario``,
    Mesa 3.3 keyword arguments (its example knows only ``seed=``, deprecated from 3.4 on)."""
    from mesa.examples.basic.boltzmann_wealth_model import model as boltzmann

    scenario = getattr(boltzmann, "BoltzmannScenario", None)
    if scenario is not None:
        return boltzmann.BoltzmannWealth(scenario(n=n_agents, width=grid, height=grid, rng=seed))
    return boltzmann.BoltzmannWealth(n=n_agents, width=grid, height=grid, seed=seed)


def scaling_exponent(sizes: Sequence[int], step_seconds: Sequence[float]) -> float:
    """Slope of the least-squares line through (log N, log time per step)."""
    if len(sizes) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(step_seconds, float)), 1)
    return float(slope)


def peak_rss_bytes() -> int:
    """This process's resident-set high-water mark in bytes.

    Linux's ``VmHWM`` belongs to the current address space, whereas
    ``ru_maxrss`` survives ``exec`` and so would report the parent's peak in
    a subprocess; ``ru_maxrss`` is the fallback elsewhere.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def probe_memory(n_smes: int, steps: int, mesa_agents: bool = True, seed: int = 1) -> dict[str, float]:
    """Peak-RSS growth of building and stepping one economy (run in a fresh process).

    The high-water mark is read just before the model is built, after imports and
    after a 100-SME economy has run a step (which loads the compiled Numba kernels,
    ~45 MB of LLVM runtime), so the interpreter and libraries are not charged to the SMEs.
    """
    from .model import SMEEconomy

    SMEEconomy(n_smes=100, rng=seed, simulation__mesa_agents=mesa_agents).step()
    before = peak_rss_bytes()
    start = time.perf_counter()
    model = SMEEconomy(n_smes=n_smes, rng=seed, simulation__mesa_agents=mesa_agents)
    model.run(steps)
    elapsed = time.perf_counter() - start
    peak = peak_rss_bytes() - before
    return {"n_smes": n_smes, "steps": steps, "mesa_agents": mesa_agents, "run_s": elapsed,
            "peak_bytes": peak, "bytes_per_sme": peak / n_smes, "columns_bytes_per_sme": model.smes.nbytes() / max(model.smes.size, 1)}


def memory_in_subprocess(n_smes: int, steps: int, mesa_agents: bool = True) -> dict[str, float]:
    """Run :func:`probe_memory` in a fresh interpreter and return its result."""
    command = [sys.executable, "-m", "sme_abm.bench", "--probe-memory", str(n_smes), str(steps), str(int(mesa_agents))]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_bench(sizes: Sequence[int] = FULL_SIZES, steps: int = 5, boltzmann_agents: int = BOLTZMANN_AGENTS,
              boltzmann_steps: int = 10, memory_steps: int = 3, progress: Progress | None = None,
              stationary_burn_in: int = STATIONARY_BURN_IN) -> dict[str, Any]:
    """Measure everything ``sme-abm bench`` reports.

    Each size is timed twice: in the months right after the set-up, and after
    ``stationary_burn_in`` months of burn-in (sizes up to :data:`STATIONARY_MAX_SIZE`),
    which is the economy users run: the shipped configs burn in first, and the
    stationary economy's step is dearer than the set-up's first months (about 1.3x
    at 10^5, docs/performance.md).

    Args:
        sizes: SME counts to time.
        steps: Timed steps per size (median taken).
        boltzmann_agents: Agents in Mesa's BoltzmannWealth reference.
        boltzmann_steps: Timed BoltzmannWealth steps.
        memory_steps: Steps each memory subprocess runs.
        progress: Called with a short description before each measurement.
        stationary_burn_in: Months of burn-in before the stationary timing.

    Returns:
        A JSON-ready dict; the headline keys are ``sme_steps_per_s`` (N ->
        rate), ``mesa_boltzmann_agent_steps_per_s``, ``ratio_vs_mesa`` (N ->
        ratio), ``stationary_ratio_vs_mesa`` (N -> ratio after the burn-in),
        ``scaling_exponent`` and ``bytes_per_sme`` (N -> bytes).
    """
    say = progress or (lambda _text: None)
    grid = max(int(round(math.sqrt(boltzmann_agents))), 1)
    say(f"Mesa BoltzmannWealth, {boltzmann_agents:,} agents")
    boltzmann = time_boltzmann(boltzmann_agents, grid, boltzmann_steps)
    timings = {}
    for n in sizes:
        say(f"SME economy, {n:,} SMEs: {steps} timed steps")
        timings[n] = time_model(n, steps)
    stationary = {}
    for n in (n for n in sizes if n <= STATIONARY_MAX_SIZE):
        say(f"SME economy, {n:,} SMEs after a {stationary_burn_in}-month burn-in: {steps} timed steps")
        stationary[n] = time_model(n, steps, simulation__burn_in_months=stationary_burn_in)
    # the reference again after the big runs: one figure from either end of the run
    say(f"Mesa BoltzmannWealth again, {boltzmann_agents:,} agents")
    boltzmann_after = time_boltzmann(boltzmann_agents, grid, boltzmann_steps)
    mesa_rate = statistics.median([boltzmann["agent_steps_per_s"], boltzmann_after["agent_steps_per_s"]])
    memory = {}
    for n in sizes:
        say(f"peak memory, {n:,} SMEs (fresh process)")
        memory[n] = memory_in_subprocess(n, memory_steps)
    rates = {str(n): t["sme_steps_per_s"] for n, t in timings.items()}
    return {
        "sizes": list(sizes),
        "steps_timed": steps,
        "sme_steps_per_s": rates,
        "step_seconds": {str(n): t["step_s"] for n, t in timings.items()},
        "init_seconds": {str(n): t["init_s"] for n, t in timings.items()},
        "mesa_boltzmann_agent_steps_per_s": mesa_rate,
        "mesa_boltzmann": {"agents": boltzmann_agents, "grid": grid, "steps_timed": boltzmann_steps,
                           "agent_steps_per_s_before": boltzmann["agent_steps_per_s"],
                           "agent_steps_per_s_after": boltzmann_after["agent_steps_per_s"]},
        "ratio_vs_mesa": {n: rate / mesa_rate for n, rate in rates.items()},
        "stationary_burn_in_months": stationary_burn_in,
        "firms": {str(n): t["firms"] for n, t in timings.items()},
        "stationary_firms": {str(n): t["firms"] for n, t in stationary.items()},
        "stationary_step_seconds": {str(n): t["step_s"] for n, t in stationary.items()},
        "stationary_ratio_vs_mesa": {str(n): t["sme_steps_per_s"] / mesa_rate for n, t in stationary.items()},
        "scaling_exponent": scaling_exponent(list(timings), [t["step_s"] for t in timings.values()]),
        "bytes_per_sme": {str(n): m["bytes_per_sme"] for n, m in memory.items()},
        "memory_method": "peak RSS (VmHWM) growth in a fresh subprocess per N (model built + "
                         f"{memory_steps} steps, Mesa agents on)",
        "python": sys.version.split()[0],
    }


#: Functions called by ``SMEEconomy.step`` that :func:`profile_phases` times, by the name it imports them under.
PHASES = ("set_policy", "apply_shocks", "allocate_demand", "collect_receivables", "produce", "pay_support",
          "run_credit_market", "invest", "innovate", "evolve_demand", "pay_dividends", "provide_direct_finance",
          "exit_firms", "enter_firms", "evaluate_policies", "check_identities")


def profile_phases(n_smes: int, steps: int, seed: int = 1, **overrides: Any) -> dict[str, float]:
    """Share of a step's wall time spent in each phase function.

    Wraps the phase functions as ``sme_abm.model`` sees them with timers, so
    the rest of the step (settlement, recording, the age update) shows up as
    ``other``. Returns phase -> share of the total, largest first.
    """
    from . import model as model_module

    spent = dict.fromkeys(PHASES, 0.0)
    originals = {name: getattr(model_module, name) for name in PHASES}

    def timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    economy = model_module.SMEEconomy(n_smes=n_smes, rng=seed, **overrides)
    economy.step()
    try:
        for name, func in originals.items():
            setattr(model_module, name, timed(name, func))
        start = time.perf_counter()
        economy.run(steps)
        total = time.perf_counter() - start
    finally:
        for name, func in originals.items():
            setattr(model_module, name, func)
    spent["other"] = total - sum(spent.values())
    shares = {name: value / total for name, value in sorted(spent.items(), key=lambda kv: -kv[1])}
    return {"step_s": total / steps, **shares}


def results_table(result: dict[str, Any]) -> Any:
    """The bench result as a rich table."""
    from rich.table import Table

    table = Table(title="sme-abm bench (one process run)", header_style="bold")
    for column in ("SMEs", "step (ms)", "SME-steps/s", "x Mesa Boltzmann", "firms, stationary", "stationary step (ms)",
                   "x Mesa Boltzmann, stationary", "peak bytes/SME"):
        table.add_column(column, justify="right")
    for n in result["sizes"]:
        key = str(n)
        stationary_step = result.get("stationary_step_seconds", {}).get(key)
        stationary_ratio = result.get("stationary_ratio_vs_mesa", {}).get(key)
        stationary_firms = result.get("stationary_firms", {}).get(key)
        table.add_row(f"{n:,}", f"{result['step_seconds'][key] * 1e3:,.1f}", f"{result['sme_steps_per_s'][key]:,.0f}",
                      f"{result['ratio_vs_mesa'][key]:.1f}",
                      "-" if stationary_firms is None else f"{stationary_firms:,.0f}",
                      "-" if stationary_step is None else f"{stationary_step * 1e3:,.1f}",
                      "-" if stationary_ratio is None else f"{stationary_ratio:.1f}", f"{result['bytes_per_sme'][key]:,.0f}")
    table.caption = (f"Mesa BoltzmannWealth: {result['mesa_boltzmann_agent_steps_per_s']:,.0f} agent-steps/s; "
                     f"time per step ~ N^{result['scaling_exponent']:.2f}; step: the months after the set-up; "
                     f"stationary: after a {result.get('stationary_burn_in_months', STATIONARY_BURN_IN)}-month burn-in; "
                     "SME-steps count the live firms stepped")
    return table


def main(quick: bool = False, as_json: bool = False) -> dict[str, Any]:
    """What ``sme-abm bench`` runs: measure with a status line, then print."""
    from rich.console import Console

    out = Console()
    status_console = Console(stderr=True) if as_json else out
    with status_console.status("benchmarking") as status:
        result = run_bench(QUICK_SIZES if quick else FULL_SIZES,
                           progress=lambda text: status.update(f"[bold]bench:[/] {text}"))
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        out.print(results_table(result))
    return result


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 5 and sys.argv[1] == "--probe-memory":
        print(json.dumps(probe_memory(int(sys.argv[2]), int(sys.argv[3]), bool(int(sys.argv[4])))))
    else:
        main(quick="--quick" in sys.argv, as_json="--json" in sys.argv)
