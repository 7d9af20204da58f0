"""The invite page, served by the rendezvous: `GET /join`, the invite after `#`.

The link a host shares is `<rendezvous>/join#TOKEN-secret`: the fragment never
reaches this server (browsers do not send it), the page's script asks only for
the token's public status and hands the invite to the visitor's own orbitd on
127.0.0.1. The language is `?lang=` if it names one of ours, else the browser's
Accept-Language. A strict CSP: our own scripts and styles only, requests to this
server only.
"""

from __future__ import annotations

from aiohttp import web

from orbitcore.i18n import catalog
from orbitcore.render import render

from .admin_page import PAGE_HEADERS, language_for
from .keys import CONFIG

SECTIONS = ("join",)  # what join.js may look up with t()
CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HEADERS = PAGE_HEADERS | {"Content-Security-Policy": CSP}


async def join_page(request: web.Request) -> web.Response:
    language = language_for(request)
    strings = catalog(language)
    html = render(
        "join/index.html",
        language,
        page="join",
        install_source=request.app[CONFIG].install_source,
        strings={name: strings[name] for name in SECTIONS},
    )
    return web.Response(text=html, content_type="text/html", headers=HEADERS)


def setup(app: web.Application) -> None:
    """Add `/join` (the static files come with the admin page's setup)."""
    app.router.add_get("/join", join_page)
