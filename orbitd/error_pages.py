"""The UI's error pages (401 log in, 403 login link refused, 404): HTML in the product's
design and the user's language, saying what to do (`orbitd open`). API paths and the
LAN listener keep their JSON errors.

A page shown before login reveals nothing of the daemon: no fingerprint, no script, no
language switcher (it would need the API); only the public stylesheets it links (and the
one script that follows a cross-site link to /join again, same-site) are served without
login (`PUBLIC_STATIC`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from orbitcore.i18n import catalog, negotiate

from .keys import CONFIG, IDENTITY
from .pages import PREFERENCES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_STATIC = ("/static/css/", "/static/brand/", "/static/js/public/")
# A cross-site link to /join (the rendezvous's invite page hands the invite over) comes
# without the SameSite=Strict login cookie: this page follows it again from the daemon's own
# origin, once (the second request is same-origin), with the invite still after "#".
SAME_SITE_AGAIN = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="robots" content="noindex, nofollow"><title>ChatOrbit</title>'
    '<script src="/static/js/public/same-site.js"></script></head>'
    '<body><noscript><a href="/join">ChatOrbit</a></noscript></body></html>'
)


def cross_site_join(request: web.Request) -> bool:
    """A top-level GET of /join from another site (where the cookie was not sent)."""
    return (
        request.method == "GET"
        and request.path == "/join"
        and request.headers.get("Sec-Fetch-Site") == "cross-site"
        and request.headers.get("Sec-Fetch-Mode") == "navigate"
    )


def named_join(request: web.Request) -> str | None:
    """Followed again at a loopback address (`?same-site=1`) and still not logged in: the
    UI's own name (`<profile>.orbitd.localhost`), where the ready line and `orbitd open`
    log browsers in, is tried once (`?same-site=2`); the invite stays after "#"."""
    from .security import local_port, ui_host_name

    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    port = local_port(request)
    if (
        request.method != "GET"
        or request.path != "/join"
        or request.query.get("same-site") != "1"
        or host not in ("127.0.0.1", "[::1]")
        or port is None
    ):
        return None
    return f"http://{ui_host_name(request.app[CONFIG].profile)}:{port}/join?same-site=2"


def same_site_again() -> web.Response:
    return web.Response(
        text=SAME_SITE_AGAIN, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


JSON_PREFIXES = ("/api/", "/lan/")


def wants_json(request: web.Request) -> bool:
    path = request.path
    return path in ("/api", "/lan") or path.startswith(JSON_PREFIXES)


def _language(request: web.Request) -> str:
    preferences = request.app.get(PREFERENCES)
    saved = preferences.current.language if preferences is not None else None
    return saved or negotiate(request.headers.get("Accept-Language"))


def error_page(request: web.Request, status: int, kind: str, *, logged_in: bool) -> web.Response:
    """`kind`: `loginRequired`, `loginRefused` or `notFound` (web/i18n/*/errors.json)."""
    from orbitcore.render import render  # jinja2 loads with the first page, not at start

    language = _language(request)
    html = render(
        "error.html",
        language,
        page="error",
        script="page" if logged_in else "",
        switcher=logged_in,
        strings={"common": catalog(language)["common"]},
        kind=kind,
        status=status,
        profile=request.app[CONFIG].profile,
        fingerprint=request.app[IDENTITY].short_fingerprint if logged_in else "",
    )
    return web.Response(
        status=status, text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


@web.middleware
async def not_found_page(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 404 outside the API is the page, not JSON (the login gate ran before this)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if wants_json(request) or request.method not in ("GET", "HEAD"):
            raise
        return error_page(request, 404, "notFound", logged_in=True)
