"""The host's invite for the UI: as JSON and as a QR code (SVG, made here with segno).

Only the host's daemon answers, and only while its session runs: the invite holds
the secret, so it is never logged, never cached (the security layer sends
`Cache-Control: no-store`) and gone when the session ends.
"""

from __future__ import annotations

import io

from aiohttp import web

from .api import MANAGER
from .crypto import Seat
from .keys import CONFIG

# The rendezvous's invite page (rendezvous/join_page.py): it explains ChatOrbit to a
# newcomer and hands the invite to their own daemon. The invite is after "#", which no
# browser sends to a server. LAN sessions have no invite (they pair by name instead).
JOIN_PATH = "/join#{invite}"
QR_DARK = "#020B1F"
QR_LIGHT = "#F4F9FF"


def current_invite(app: web.Application) -> str | None:
    """The running session's invite if this daemon is its host, else None."""
    session = app[MANAGER].session
    if (
        session is None
        or session.ended is not None
        or session.seat is not Seat.HOST
        or session.invite is None
    ):
        return None
    return str(session.invite)


def join_link(rendezvous: str, invite: str) -> str:
    """The invite page's link on `rendezvous` (the daemon's configured URL)."""
    return rendezvous.rstrip("/") + JOIN_PATH.format(invite=invite)


def qr_svg(text: str) -> bytes:
    """A QR code of `text` as a small, scalable SVG (its size comes from the page)."""
    import segno  # loaded by the first invite drawn, not by an idle daemon

    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        buffer,
        kind="svg",
        scale=1,
        border=4,
        dark=QR_DARK,
        light=QR_LIGHT,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
        omitsize=True,
    )
    return buffer.getvalue()


def _no_invite() -> web.Response:
    return web.json_response(
        {"error": "no_invite", "reason": "There is no invite: request a token first."}, status=404
    )


async def get_invite(request: web.Request) -> web.Response:
    invite = current_invite(request.app)
    if invite is None:
        return _no_invite()
    link = join_link(request.app[CONFIG].rendezvous, invite)
    return web.json_response({"invite": invite, "link": link})


async def get_invite_svg(request: web.Request) -> web.Response:
    invite = current_invite(request.app)
    if invite is None:
        return _no_invite()
    link = join_link(request.app[CONFIG].rendezvous, invite)
    return web.Response(body=qr_svg(link), content_type="image/svg+xml")


def setup(app: web.Application) -> None:
    """`GET /api/invite` (JSON) and `GET /api/invite.svg` (the join link as a QR code)."""
    app.router.add_get("/api/invite", get_invite, allow_head=False)
    app.router.add_get("/api/invite.svg", get_invite_svg, allow_head=False)
