"""The status port: an aiohttp site on the gRPC server's own event loop.

Handlers only await: snapshots (job records under the manager's lock, file stats), image reads
and metric exposition run on the loop's default executor, so a slow disk never stalls the gRPC
calls that share the loop. Every route needs the token :class:`StatusAuth` names; a refusal is
401 with ``WWW-Authenticate`` (Basic, so a browser asks for it, and Bearer). Read-only: GET only.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from plateforge.errors import UsageError
from plateforge_server.status.auth import REALM, StatusAuth
from plateforge_server.status.page import SCRIPT, STYLE, as_json, render_page
from plateforge_server.status.snapshot import ServerView, job_image

__all__ = ["StatusSite", "start_status_site"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'",
}


@dataclass
class StatusSite:
    """A started status site: where it listens, and how to stop it."""

    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


def _app(view: ServerView, auth: StatusAuth) -> web.Application:
    async def off_loop(function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    @web.middleware
    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not auth.allows(request.headers.get("Authorization")):
            raise web.HTTPUnauthorized(
                text="401: this status page needs its token (Authorization: Bearer <token>, or the token as "
                "the password of HTTP Basic authentication)\n",
                headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"', **_HEADERS},
            )
        response = await handler(request)
        response.headers.update(_HEADERS)
        return response

    async def page(request: web.Request) -> web.Response:
        snapshot = await off_loop(view.snapshot)
        return web.Response(text=render_page(snapshot), content_type="text/html")

    async def status(request: web.Request) -> web.Response:
        snapshot = await off_loop(view.snapshot)
        return web.Response(text=as_json(snapshot), content_type="application/json")

    async def metrics(request: web.Request) -> web.Response:
        body = await off_loop(view.metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def image(request: web.Request) -> web.Response:
        data = await off_loop(job_image, view.jobs, request.match_info["job"], request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound(text="no such job or picture (yet)\n")
        return web.Response(body=data, content_type="image/png")

    async def script(request: web.Request) -> web.Response:
        return web.Response(text=SCRIPT, content_type="text/javascript")

    async def style(request: web.Request) -> web.Response:
        return web.Response(text=STYLE, content_type="text/css")

    app = web.Application(middlewares=[guarded])
    app.router.add_get("/", page)
    app.router.add_get("/api/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/jobs/{job}/{name}", image)
    app.router.add_get("/status.js", script)
    app.router.add_get("/status.css", style)
    return app


async def start_status_site(
    view: ServerView, auth: StatusAuth, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> StatusSite:
    """Serve the status page on ``host:port`` (0: a free port) until :meth:`StatusSite.stop`."""
    runner = web.AppRunner(_app(view, auth), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise UsageError(f"cannot serve the status page on {host}:{port}: {error.strerror or error}") from None
    bound = runner.addresses[0]
    shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    scheme = "https" if ssl_context is not None else "http"
    return StatusSite(runner, f"{scheme}://{shown_host}:{bound[1]}/")
