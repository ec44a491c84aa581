"""The web app: marketplace, dashboard and explorer pages, served as static files (no build step).

The pages are plain HTML, one stylesheet and ES modules under `static/`. They talk to the gateway's public
REST and SSE API only, as any client does. The HTML lives at `/`, `/marketplace/`, `/dashboard/` and exactly
`/explorer/` (its views are hash routes, `/explorer/#/blocks/5`), so the explorer's JSON routes
(`/explorer/blocks`, `/explorer/stats`, ...) keep answering JSON; assets are under `/static/`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"

# No inline script or style, and the API on this origin only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages and assets change with the package: revalidate instead of serving a stale module.
    "Cache-Control": "no-cache",
}

# The path each page is served at, and its file.
PAGES = {
    "/": "index.html",
    "/marketplace/": "marketplace.html",
    "/dashboard/": "dashboard.html",
    "/explorer/": "explorer.html",
}


def _page(filename: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        return FileResponse(STATIC / filename, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    return page


class _Assets(StaticFiles):
    """StaticFiles with the app's security headers and explicit UTF-8 types for scripts and styles."""

    TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        media_type = next((value for suffix, value in self.TYPES.items() if path.endswith(suffix)), None)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not (media_type and name == b"content-type")
                ]
                if media_type:
                    headers.append((b"content-type", media_type.encode()))
                headers += [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def webapp_routes() -> list[BaseRoute]:
    """The pages, a redirect from each page's path without its slash, and `/static/`."""
    routes: list[BaseRoute] = []
    for path, filename in PAGES.items():
        routes.append(Route(path, _page(filename), methods=["GET"]))
        if path != "/":
            target = path

            async def redirect(request: Request, target: str = target) -> Response:
                return RedirectResponse(target, status_code=308)

            routes.append(Route(path.rstrip("/"), redirect, methods=["GET"]))
    routes.append(Mount("/static", app=_Assets(directory=STATIC), name="static"))
    return routes
