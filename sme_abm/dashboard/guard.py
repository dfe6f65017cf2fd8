"""Who may drive the dashboard: ``Host`` and ``Origin`` checks and a session cap.

A pure ASGI middleware put in front of Solara's Starlette app by
:mod:`sme_abm.dashboard.launch`:

* every HTTP request and websocket must carry a ``Host`` the server serves
  (loopback names and the bound host by default; ``--allow-host`` widens it),
  which defeats DNS rebinding;
* a request or websocket that carries an ``Origin`` must come from an origin
  the server serves (``http://<allowed host>:<port>``; ``--allow-origin``
  widens it), which defeats cross-site websocket hijacking; websockets must
  carry one (browsers always send it);
* a websocket for a new kernel is refused once :data:`MAX_SESSIONS` kernels are
  alive (closed pages are culled after Solara's ``SOLARA_KERNEL_CULL_TIMEOUT``).

It also sets ``lang="en"`` on the page's ``<html>`` element.

Settings come from the environment (so the server process and ``solara run``
see the same): ``SME_ABM_ALLOWED_HOSTS``, ``SME_ABM_ALLOWED_ORIGINS`` (comma
separated), ``SME_ABM_MAX_SESSIONS``, ``SERVER_PORT``.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
DEFAULT_MAX_SESSIONS = 10

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _split(env: str) -> list[str]:
    return [part.strip() for part in os.environ.get(env, "").split(",") if part.strip()]


def allowed_hosts() -> set[str]:
    """Host names (without port) the server answers to."""
    return {h.lower().strip("[]") for h in (*LOOPBACK, *_split("SME_ABM_ALLOWED_HOSTS"))}


def allowed_origins() -> set[str]:
    """Origins (scheme://host[:port]) whose pages may talk to the server."""
    port = os.environ.get("SERVER_PORT", "")
    origins = set()
    for host in allowed_hosts():
        name = f"[{host}]" if ":" in host else host
        for scheme in ("http", "https"):
            origins.add(f"{scheme}://{name}:{port}" if port else f"{scheme}://{name}")
    origins |= {o.rstrip("/").lower() for o in _split("SME_ABM_ALLOWED_ORIGINS")}
    return origins


def max_sessions() -> int:
    try:
        return max(int(os.environ.get("SME_ABM_MAX_SESSIONS", DEFAULT_MAX_SESSIONS)), 1)
    except ValueError:
        return DEFAULT_MAX_SESSIONS


def host_name(value: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8765`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def check(headers: dict[str, str], websocket: bool) -> str:
    """Why a request with ``headers`` is refused, or ``""`` if it is accepted."""
    host = headers.get("host", "")
    if not host or host_name(host) not in allowed_hosts():
        return "host not allowed"
    origin = headers.get("origin")
    if origin is None:
        return "origin required" if websocket else ""
    parts = urlsplit(origin.lower())
    normalised = f"{parts.scheme}://{parts.netloc}"
    if normalised not in allowed_origins():
        return "origin not allowed"
    return ""


def live_sessions() -> int:
    """Kernels Solara holds (open pages and closed ones not yet culled)."""
    try:
        from solara.server import kernel_context

        return len(kernel_context.contexts)
    except Exception:  # noqa: BLE001 - outside a Solara server
        return 0


def _known_kernel(kernel_id: str) -> bool:
    try:
        from solara.server import kernel_context

        return kernel_id in kernel_context.contexts
    except Exception:  # noqa: BLE001
        return False


class GuardMiddleware:
    """The checks above as ASGI middleware."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        reason = check(headers, websocket=kind == "websocket")
        if not reason and kind == "websocket" and "/api/kernels/" in scope.get("path", ""):
            parts = scope["path"].rstrip("/").split("/")
            kernel_id = parts[-2] if len(parts) >= 2 else ""
            if not _known_kernel(kernel_id) and live_sessions() >= max_sessions():
                reason = "too many sessions"
        if reason:
            await self._refuse(kind, reason, send)
            return
        if kind == "http" and scope.get("path", "/") in ("/", ""):
            # the page uncompressed, so lang can be set (it is a few kB)
            plain = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"]
            await self.app({**scope, "headers": plain}, receive, self._with_lang(send))
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(kind: str, reason: str, send: Send) -> None:
        if kind == "websocket":
            # closing before accepting makes the server answer the handshake with 403
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        body = f"refused: {reason}\n".encode()
        await send({"type": "http.response.start", "status": 403 if reason != "too many sessions" else 503,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _with_lang(send: Send) -> Send:
        """Rewrite ``<html>`` to ``<html lang="en">`` in the page (adjusting its length)."""
        state: dict[str, Any] = {"start": None, "chunks": []}

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["start"] = message
                return
            if message["type"] != "http.response.body" or state["start"] is None:
                await send(message)
                return
            state["chunks"].append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(state["chunks"])
            start = state["start"]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            encoded = any(k.lower() == b"content-encoding" for k, _ in headers)
            if not encoded and b"<html>" in body[:200]:
                body = body.replace(b"<html>", b'<html lang="en">', 1)
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return wrapped


def install(app: Any) -> None:
    """Put :class:`GuardMiddleware` first in a Starlette app that has not started yet."""
    from starlette.middleware import Middleware

    app.user_middleware.insert(0, Middleware(GuardMiddleware))
    app.middleware_stack = None
