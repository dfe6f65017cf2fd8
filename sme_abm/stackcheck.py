"""Do two software stacks run the same economy? ``make test-latest`` asks this of the
pinned stack (Python 3.11, Mesa 3.3, ``constraints.txt``) and the newest one inside
``pyproject.toml``'s ranges (Python 3.12/3.13, Mesa 3.5, newest numpy and pandas).

``python -m sme_abm.stackcheck write FILE`` runs a fixed config and seed twice, arrays
only and with one Mesa agent per SME, and writes both time series to a Parquet file
(and the versions used beside it). ``python -m sme_abm.stackcheck compare A B`` exits 1
unless two such files are identical, bit for bit, in every column.

They are: on Python 3.11 / Mesa 3.3.1 / numpy 2.4 and on Python 3.12 / Mesa 3.5.1 /
numpy 2.5 the economy follows the same path, and within each stack the Mesa agents
change nothing (SME agents read their rows and draw no random numbers). One thing had
to change for that: Python 3.12's built-in ``sum()`` of floats is compensated
(Neumaier), 3.11's is not, so the few float totals the model took with ``sum()``
(tax revenue, fiscal cost, the identity residuals, the central bank's opening balance)
now use ``math.fsum``, which rounds the exact sum on every Python.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

#: What is run: the baseline config at a size where entry, exit and credit all happen.
CHECK_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "baseline.toml"
CHECK_SMES, CHECK_STEPS, CHECK_SEED = 2_000, 36, 3
PACKAGES = ("mesa", "numpy", "numba", "pandas", "pyarrow", "pydantic", "scipy")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - every one is a dependency
            found[name] = "absent"
    return found


def run_both(config: Path = CHECK_CONFIG) -> dict[bool, pd.DataFrame]:
    """The check run's time series, arrays only (False) and with Mesa agents (True)."""
    from .model import SMEEconomy

    return {agents: SMEEconomy(config, n_smes=CHECK_SMES, rng=CHECK_SEED,
                               simulation__mesa_agents=agents).run(CHECK_STEPS).timeseries()
            for agents in (False, True)}


def write(path: Path) -> None:
    both = run_both()
    if not both[False].equals(both[True]):
        raise SystemExit("stackcheck: Mesa agents changed the time series on this stack")
    frame = pd.concat({"arrays": both[False], "agents": both[True]}, names=["mode"]).reset_index(level=0)
    frame.to_parquet(path, index=False)
    Path(str(path) + ".json").write_text(json.dumps(versions(), indent=1))


def compare(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The columns in which two stacks' check runs differ (all of them if the shapes do)."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return [f"different shapes or columns: {a.shape} vs {b.shape}"]
    return [f"{column}: differs" for column in a.columns if not a[column].equals(b[column])]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "write":
        write(Path(args[1]))
        print(f"stackcheck: wrote {args[1]} ({json.dumps(versions())})")
        return 0
    if len(args) == 3 and args[0] == "compare":
        a, b = (pd.read_parquet(p) for p in args[1:])
        names = [json.loads(Path(p + ".json").read_text()) for p in args[1:]]
        problems = compare(a, b)
        for problem in problems:
            print(f"stackcheck: {problem}")
        verdict = "DIFFER" if problems else "agree"
        print(f"stackcheck: {names[0]} and {names[1]} {verdict} "
              f"(baseline, {CHECK_SMES:,} SMEs, {CHECK_STEPS} months, seed {CHECK_SEED}, arrays only and Mesa agents)")
        return 1 if problems else 0
    print("usage: python -m sme_abm.stackcheck write FILE | compare FILE_A FILE_B", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
