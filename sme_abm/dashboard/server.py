"""Starting the dashboard server (what ``sme-abm dashboard`` calls)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def command(host: str = "127.0.0.1", port: int = 8765) -> list[str]:
    """The ``solara run`` command line for the dashboard app.

    Args:
        host: Interface to bind; loopback unless told otherwise.
        port: TCP port.
    """
    return [sys.executable, "-m", "solara", "run", str(APP), "--host", host, "--port", str(port),
            "--no-open", "--production", "--no-check-version"]


def environment() -> dict[str, str]:
    """The server's environment: no telemetry, front-end assets served by the app.

    With ``SOLARA_ASSETS_PROXY`` on, the page asks the server (not a CDN) for
    every asset, and the server answers from the ``solara-assets`` package.
    """
    env = dict(os.environ)
    env.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    env.setdefault("SOLARA_ASSETS_PROXY", "True")
    return env


def serve(host: str = "127.0.0.1", port: int = 8765) -> int:
    """Run the dashboard server in the foreground until it stops.

    On POSIX the current process becomes the server (``exec``), so Ctrl-C and
    signals reach it directly and no child is left behind.

    Returns:
        The server's exit status (only where ``exec`` is not available).
    """
    import importlib.util

    missing = [name for name in ("solara", "solara_assets") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: the dashboard needs {', '.join(missing)}: run `make dashboard` or "
              "`pip install -e '.[dashboard]'`", file=sys.stderr)
        return 2
    args = command(host, port)
    if os.name == "posix":
        os.execve(args[0], args, environment())
    return subprocess.call(args, env=environment())
