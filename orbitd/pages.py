"""The UI's pages, its static files and the preferences API.

Pages are rendered on the server in the user's language: the saved
preference, else the browser's Accept-Language, else English.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from orbitcore.errors import json_object
from orbitcore.i18n import catalog, negotiate
from orbitcore.ui import add_static

from .keys import CONFIG, IDENTITY
from .preferences import PreferenceError, PreferencesStore

PREFERENCES = web.AppKey("preferences", PreferencesStore)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# path -> (template, page name, script, catalog sections the page's script needs)
PAGES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "/": ("home.html", "home", "home", ("common", "home")),
    "/join": ("home.html", "home", "home", ("common", "home")),
    "/session": ("session.html", "session", "session", ("common", "session")),
    "/help": ("help.html", "help", "page", ("common",)),
    "/privacy": ("legal.html", "privacy", "page", ("common",)),
    "/terms": ("legal.html", "terms", "page", ("common",)),
}


def language_for(request: web.Request) -> str:
    saved = request.app[PREFERENCES].current.language
    return saved or negotiate(request.headers.get("Accept-Language"))


def page_handler(path: str) -> Callable[[web.Request], Coroutine[Any, Any, web.Response]]:
    template, page, script, sections = PAGES[path]

    async def handler(request: web.Request) -> web.Response:
        from orbitcore.render import render  # jinja2 loads with the first page, not at start

        language = language_for(request)
        strings = catalog(language)
        html = render(
            template,
            language,
            page=page,
            script=script,
            strings={name: strings[name] for name in sections},
            profile=request.app[CONFIG].profile,
            fingerprint=request.app[IDENTITY].short_fingerprint,
            preferences=request.app[PREFERENCES].current.public(),
            relay_only=request.app[PREFERENCES].current.relay_only(
                request.app[CONFIG].ice_relay_only
            ),
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    return handler


async def get_preferences(request: web.Request) -> web.Response:
    return web.json_response(request.app[PREFERENCES].current.public())


async def set_preferences(request: web.Request) -> web.Response:
    body = await json_object(request)
    try:
        saved = request.app[PREFERENCES].update(body)
    except PreferenceError as exc:
        return web.json_response({"error": "invalid_preference", "reason": str(exc)}, status=422)
    return web.json_response(saved.public())


STATIC_TEXT = (".css", ".js", ".svg", ".html")
COMPRESSIBLE = (
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "image/svg+xml",
)


@web.middleware
async def compress_ui(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gzip the pages and static files (not the API: nothing secret is compressed
    beside text an attacker could choose)."""
    response = await handler(request)
    if response.prepared or request.path.startswith("/api/"):
        return response
    if isinstance(response, web.FileResponse):  # its type is known only once it is sent
        compressible = request.path.endswith(STATIC_TEXT)
    else:
        compressible = response.content_type in COMPRESSIBLE
    if compressible and "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression()
    return response


def setup(app: web.Application) -> None:
    app.middlewares.append(compress_ui)
    app[PREFERENCES] = PreferencesStore(app[CONFIG].data_path())
    for path in PAGES:
        app.router.add_get(path, page_handler(path))
    app.router.add_get("/api/preferences", get_preferences)
    app.router.add_post("/api/preferences", set_preferences)
    add_static(app)
