"""The admin page, served by the rendezvous itself: `GET /admin` and `/static/...`.

One page, driven by `web/static/js/admin.js`: a login form and the list of
abuse reports, both talking to the admin API (`/api/admin/...`) of this same
server. The bearer token the API hands out stays in the page (sessionStorage
of the tab), never in a URL or a cookie. The language is `?lang=` if it names
one of ours, else the browser's Accept-Language.
"""

from __future__ import annotations

from aiohttp import web

from orbitcore.i18n import LANGUAGES, catalog, negotiate
from orbitcore.render import render
from orbitcore.ui import add_static

from .keys import ADMIN

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Vary": "Accept-Language",
}
SECTIONS = ("common", "admin")  # what admin.js may look up with t()


def language_for(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    return negotiate(request.headers.get("Accept-Language"))


async def admin_page(request: web.Request) -> web.Response:
    language = language_for(request)
    strings = catalog(language)
    html = render(
        "admin/index.html",
        language,
        page="admin",
        enabled=request.app[ADMIN].enabled,
        strings={name: strings[name] for name in SECTIONS},
    )
    return web.Response(text=html, content_type="text/html", headers=PAGE_HEADERS)


def setup(app: web.Application) -> None:
    """Add `/admin` and the UI's static files (read-only) to the rendezvous."""
    app.router.add_get("/admin", admin_page)
    add_static(app)
