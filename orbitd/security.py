"""The localhost UI's defences (DESIGN.md, "Security model").

Any web page the user visits may try to reach the daemon, so every request goes
through, in order: the JSON error shield, the Host allow-list (DNS rebinding),
the Origin check (every state-changing request and WebSocket upgrade) and the
login gate (a one-time link, printed at start or handed to `orbitd open`, then an
HttpOnly SameSite=Strict session cookie: random per login, in memory, expiring).
The UI's own name `<profile>.orbitd.localhost` keeps that cookie from every other
server on 127.0.0.1. Every response carries frame-blocking,
nosniff and CSP headers; no Access-Control-* header is ever sent.

The Host and Origin checks need the port the daemon is bound to, which is only
known after binding when port 0 was asked for: it is read per request from the
socket the request came in on, so nothing has to be told after start.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from orbitcore.errors import error_response

log = logging.getLogger("orbitd.security")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE_PREFIX = "orbit_ui_"
LINK_TTL = 300.0  # seconds a link from `orbitd open` stays valid
MAX_LINKS = 16
SESSION_IDLE = 12 * 3600.0  # a login cookie expires this long after its last use
MAX_SESSIONS = 32
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
UI_DOMAIN = "orbitd.localhost"
OPEN_PATHS = frozenset({"/login", "/healthz"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def cookie_name(profile: str) -> str:
    """Cookies ignore ports: one name per profile lets two daemons share a browser."""
    return COOKIE_PREFIX + profile


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class LoginGate:
    """The per-daemon login: one-time link secrets, then a session cookie.

    The start link's secret (`login_secret`) and every link `orbitd open` asks for
    (`new_link`, valid `LINK_TTL`) work once. Each login gets its own random cookie
    value, kept only in this process: it is not the UI secret on disk, it dies with the
    daemon, and it expires `SESSION_IDLE` after its last use (at most `MAX_SESSIONS`
    live at once, the least recently used goes first). `clock` is monotonic seconds.
    """

    def __init__(
        self,
        *,
        profile: str,
        login_secret: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.profile = profile
        self.cookie_name = cookie_name(profile)
        self.login_secret = login_secret or secrets.token_urlsafe(32)
        self._clock = clock
        self._used = False
        self._links: dict[str, float] = {}  # secret -> expiry
        self._sessions: dict[str, float] = {}  # cookie value -> expiry (oldest use first)

    @property
    def used(self) -> bool:
        """Whether the start link was spent."""
        return self._used

    def login_path(self, secret: str | None = None) -> str:
        """`/login?secret=...`: print it once, never log it."""
        return f"/login?secret={secret or self.login_secret}"

    def new_link(self) -> str:
        """A fresh one-time login path (for `orbitd open`), valid `LINK_TTL`."""
        now = self._clock()
        self._links = {k: v for k, v in self._links.items() if v > now}
        while len(self._links) >= MAX_LINKS:
            del self._links[next(iter(self._links))]
        secret = secrets.token_urlsafe(32)
        self._links[secret] = now + LINK_TTL
        return self.login_path(secret)

    def redeem(self, candidate: str) -> bool:
        """True once, for a right secret; the secret is spent by that."""
        if not self._used and _same(candidate, self.login_secret):
            self._used = True
            return True
        now = self._clock()
        for secret, expiry in list(self._links.items()):
            if _same(candidate, secret):
                del self._links[secret]
                return expiry > now
        return False

    def logged_in(self, request: web.Request) -> bool:
        value = request.cookies.get(self.cookie_name)
        if value is None:
            return False
        now = self._clock()
        expiry = self._sessions.pop(value, None)
        if expiry is None or expiry <= now:
            return False
        self._sessions[value] = now + SESSION_IDLE  # used: to the end of the order
        return True

    def start_session(self, response: web.StreamResponse) -> None:
        """A new login: a new random cookie value, host-only, HttpOnly, SameSite=Strict."""
        now = self._clock()
        self._sessions = {k: v for k, v in self._sessions.items() if v > now}
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        value = secrets.token_urlsafe(32)
        self._sessions[value] = now + SESSION_IDLE
        response.set_cookie(self.cookie_name, value, path="/", httponly=True, samesite="Strict")


def local_port(request: web.Request) -> int | None:
    """The port of the socket this request arrived on (the bound port, even for port 0)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2 and isinstance(sockname[1], int):
        return sockname[1]
    return None


def ui_host_name(profile: str) -> str:
    """The UI's own host name, `<profile>.orbitd.localhost`: browsers resolve any name
    under `.localhost` to loopback, and a host-only cookie set for it is never sent to
    another server on 127.0.0.1 (as one set for 127.0.0.1 is, whatever its port)."""
    return f"{profile.lower()}.{UI_DOMAIN}"


def _loopback_names(bound_host: str, profile: str) -> set[str]:
    bound = f"[{bound_host}]" if ":" in bound_host else bound_host
    return {*LOOPBACK_NAMES, bound, ui_host_name(profile)}


def allowed_hosts(port: int | None, bound_host: str, profile: str) -> frozenset[str]:
    """Host header values accepted: a loopback name or the UI's own name, bare or with
    the bound port."""
    names = _loopback_names(bound_host, profile)
    with_port = {f"{name}:{port}" for name in names} if port is not None else set()
    return frozenset(names | with_port)


def allowed_origins(port: int | None, bound_host: str, profile: str) -> frozenset[str]:
    """The UI's own origins: `http://<loopback name or UI name>:<bound port>`."""
    if port is None:
        return frozenset()
    return frozenset(f"http://{name}:{port}" for name in _loopback_names(bound_host, profile))


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def make_host_middleware(bound_host: str, profile: str) -> Middleware:
    """Refuse any Host but a loopback name: a rebound DNS name must not reach the UI."""

    @web.middleware
    async def host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "").lower()
        if host not in allowed_hosts(local_port(request), bound_host, profile):
            return error_response(
                403,
                "host_not_allowed",
                f"The daemon answers only to {ui_host_name(profile)}, 127.0.0.1, localhost "
                "or [::1] on its own port.",
            )
        return await handler(request)

    return host_check


def make_origin_middleware(bound_host: str, profile: str) -> Middleware:
    """State-changing requests and WebSocket upgrades must come from the UI's own origin.

    A request that names any other origin is refused too, whatever its method.
    """

    @web.middleware
    async def origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        required = request.method not in SAFE_METHODS or _is_websocket(request)
        if (origin is not None or required) and origin not in allowed_origins(
            local_port(request), bound_host, profile
        ):
            return error_response(
                403,
                "origin_not_allowed",
                "Only the daemon's own page may change state or open a socket.",
            )
        return await handler(request)

    return origin_check


def make_login_middleware(gate: LoginGate) -> Middleware:
    """Everything but /login, /healthz and the public stylesheets needs the login cookie."""
    from .error_pages import (
        PUBLIC_STATIC,
        cross_site_join,
        error_page,
        named_join,
        same_site_again,
        wants_json,
    )

    @web.middleware
    async def login_required(request: web.Request, handler: Handler) -> web.StreamResponse:
        public = request.path in OPEN_PATHS or request.path.startswith(PUBLIC_STATIC)
        if public or gate.logged_in(request):
            return await handler(request)
        if wants_json(request):
            return error_response(
                401,
                "login_required",
                "Log in first: run `orbitd open` on this computer for a fresh login link.",
            )
        if cross_site_join(request):  # the invite page's hand-over: again, same-site
            return same_site_again()
        if (named := named_join(request)) is not None:  # logged in under the UI's name?
            return web.Response(status=303, headers={"Location": named})
        return error_page(request, 401, "loginRequired", logged_in=False)

    return login_required


async def login(request: web.Request, gate: LoginGate) -> web.StreamResponse:
    """`GET /login?secret=...`: the right secret, once, sets the cookie and goes to `/`
    (`&next=join`: to `/join`, where `orbitd join` sends the browser with the invite after
    `#`, which the browser keeps across the redirect and never sends to any server)."""
    if gate.redeem(request.query.get("secret", "")) or gate.logged_in(request):
        target = "/join" if request.query.get("next") == "join" else "/"
        response = web.Response(status=303, headers={"Location": target})
        gate.start_session(response)
        log.info("browser logged in")
        return response
    log.warning("login refused: wrong, used or expired link")
    if "application/json" in request.headers.get("Accept", ""):
        return error_response(
            403,
            "login_refused",
            "This login link is wrong, was used already or expired; run `orbitd open` on "
            "this computer for a fresh one.",
        )
    from .error_pages import error_page

    return error_page(request, 403, "loginRefused", logged_in=False)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: runs for every response, WebSocket upgrades included."""
    for name in [h for h in response.headers if h.lower().startswith("access-control-")]:
        del response.headers[name]
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
