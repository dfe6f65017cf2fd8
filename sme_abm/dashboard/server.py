"""Starting the dashboard server (what ``sme-abm dashboard`` calls)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


#: Idle time after which a closed page's session (kernel) is dropped.
CULL_TIMEOUT = "2m"


def command(host: str = "127.0.0.1", port: int = 8765) -> list[str]:
    """The command line of the dashboard server: ``solara run`` on the app,
    behind the dashboard's Host/Origin guard (see :mod:`.launch`).

    Args:
        host: Interface to bind; loopback unless told otherwise.
        port: TCP port.
    """
    return [sys.executable, "-m", "sme_abm.dashboard.launch", str(APP), "--host", host, "--port", str(port),
            "--no-open", "--production", "--no-check-version"]


#: glibc heap arenas the server may use (``MALLOC_ARENA_MAX``; a user's own setting wins).
MALLOC_ARENAS = "2"


def environment(host: str = "127.0.0.1", allow_origins: list[str] | None = None,
                allow_hosts: list[str] | None = None, results_roots: list[str] | None = None,
                max_sessions: int | None = None) -> dict[str, str]:
    """The server's environment: no telemetry, front-end assets served by the
    app, the guard's allowed hosts and origins, the session cap and cull time,
    and the results browser's roots.

    With ``SOLARA_ASSETS_PROXY`` on, the page asks the server (not a CDN) for
    every asset, and the server answers from the ``solara-assets`` package.
    """
    env = dict(os.environ)
    env.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    env.setdefault("SOLARA_ASSETS_PROXY", "True")
    env.setdefault("SOLARA_KERNEL_CULL_TIMEOUT", CULL_TIMEOUT)
    # glibc gives each thread that allocates its own heap arena (up to 8 per core), and a closed
    # session's pages stay scattered over them: 20 sessions left the server 8-14% larger (376 ->
    # 405 MB idle, 381 -> 432 MB under load); with two arenas 369 -> 377 MB under load
    env.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
    hosts = [*(allow_hosts or [])]
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts.append(host)
    if hosts:
        env["SME_ABM_ALLOWED_HOSTS"] = ",".join(hosts)
    if allow_origins:
        env["SME_ABM_ALLOWED_ORIGINS"] = ",".join(allow_origins)
    if results_roots:
        env["SME_ABM_RESULTS_ROOTS"] = os.pathsep.join(str(Path(r).resolve()) for r in results_roots)
    if max_sessions is not None:
        env["SME_ABM_MAX_SESSIONS"] = str(max_sessions)
    return env


def serve(host: str = "127.0.0.1", port: int = 8765, allow_origins: list[str] | None = None,
          allow_hosts: list[str] | None = None, results_roots: list[str] | None = None,
          max_sessions: int | None = None) -> int:
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
    env = environment(host, allow_origins, allow_hosts, results_roots, max_sessions)
    if os.name == "posix":
        os.execve(args[0], args, env)
    return subprocess.call(args, env=env)
