"""Fuzz both HTTP APIs: every route of the rendezvous and of a logged-in daemon, with
random JSON of random types and depths, random bytes, lone surrogates, huge numbers,
wrong content types, odd paths and ids. No answer may be a 5xx, and every 4xx of an
API is JSON with `error` and `reason`.

The generator is seeded (`FUZZ_SEED`, default 11), so a failing run can be repeated.
Both servers are the real apps, in process on 127.0.0.1; the daemon talks to the
rendezvous under test, so a body that happens to be valid opens a real session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from rendezvous.passwords import hash_password
from tests.conftest import MakeRendezvous, RendezvousClient
from tests.http_apps import Client, api_headers, daemon_client

SEED = int(os.environ.get("FUZZ_SEED", "11"))
PER_SERVER = 5200  # requests per server and run (the issue asks for 10,000 in all)
BATCH = 24  # requests in flight at once
PASSWORD = "fuzz admin password"

# Member names the endpoints read (so that many bodies get past "unknown member").
FIELDS = (
    "validity_option", "ttl_minutes", "max_message_length", "token", "client_identity",
    "reason", "details", "contact", "password", "invite", "text", "kind", "muted", "sdp",
    "language", "terms_accepted", "hide_address", "fingerprint", "replace", "request_id",
    "code", "name", "type",
)  # fmt: skip
PLAUSIBLE: tuple[Any, ...] = (
    "day", "week", "year", 60, 2000, 1, 0, -1, True, False, None, "audio", "video", "en",
    "sk", "spam", "f" * 64, "123456", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n", "",
    "AAAAAAAAAAAA", "AAAAAAAAAAAA-" + "A" * 43, {}, [],
)  # fmt: skip
STRINGS = (
    "\ud800", "\udfff", "a\ud83d", "\x00", "\n", "\r\nBcc: x@example.org", "\u202e",
    "😀", "²", "٣", "9" * 30, "../../etc/passwd", "%00", "'; DROP TABLE reports; --",
)  # fmt: skip
CONTENT_TYPES = (
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=latin-1", "", "application/jsonx",
)  # fmt: skip
QUERY_NAMES = ("include_handled", "lang", "secret", "token", "format", "since")
LINE_MAX = 8190  # aiohttp's longest request line
# The members each endpoint reads, so that most bodies are nearly right.
ENDPOINT_FIELDS = {
    "/api/tokens/issue": ("validity_option", "ttl_minutes", "max_message_length"),
    "/api/tokens/join": ("token", "client_identity"),
    "/api/session/{token}/end": ("client_identity",),
    "/api/reports": ("token", "reason", "details", "contact"),
    "/api/admin/login": ("password",),
    "/api/tokens": ("validity_option", "ttl_minutes", "max_message_length"),
    "/api/join": ("invite",),
    "/api/messages": ("text",),
    "/api/report": ("reason", "details", "contact"),
    "/api/call/mute": ("kind", "muted"),
    "/api/media/offer": ("sdp",),
    "/api/preferences": ("language", "terms_accepted", "hide_address"),
    "/api/nearby/verify": ("fingerprint", "replace"),
    "/api/nearby/invite": ("fingerprint", "ttl_minutes", "max_message_length"),
    "/api/nearby/code": ("request_id", "code"),
}
PLACEHOLDER = re.compile(r"\{([^}:]+)(:[^}]*)?\}")


class Gen:
    """The seeded generator of requests."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.known: list[Any] = []  # values of this run that pass checks (a live token)

    def string(self) -> str:
        rng, pick = self.rng, self.rng.random()
        if pick < 0.35:
            return rng.choice(STRINGS)
        if pick < 0.55:
            return "".join(chr(rng.randrange(0x01, 0x3000)) for _ in range(rng.randrange(40)))
        if pick < 0.65:
            return rng.choice("aZ9-") * rng.choice((12, 64, 129, 201, 4001, 70000))
        return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_") for _ in range(12))

    def value(self, depth: int = 0) -> Any:
        rng = self.rng
        kind = rng.randrange(10 if depth < 4 else 7)
        if kind == 0:
            return rng.choice(PLAUSIBLE)
        if kind == 1:
            return rng.choice((None, True, False))
        if kind == 2:
            return rng.choice((2**31, 2**53 + 1, -(2**63), 10**30, 10**400, rng.randrange(-9, 99)))
        if kind == 3:
            return rng.choice((0.5, -0.0, 1e308, float("nan"), float("inf"), 60.0))
        if kind in (4, 5, 6):
            return self.string()
        if kind in (7, 8):
            return [self.value(depth + 1) for _ in range(rng.randrange(4))]
        return {self.key(): self.value(depth + 1) for _ in range(rng.randrange(4))}

    def member(self) -> Any:
        """A member's value: often one that passes its check (a live token, "spam")."""
        rng, pick = self.rng, self.rng.random()
        if pick < 0.2 and self.known:
            return rng.choice(self.known)
        return rng.choice(PLAUSIBLE) if pick < 0.45 else self.value()

    def key(self, fields: tuple[str, ...] = FIELDS) -> str:
        return self.rng.choice(fields) if self.rng.random() < 0.85 else self.string()

    def dumps(self, value: Any) -> bytes:
        text = json.dumps(value, ensure_ascii=self.rng.random() < 0.8, allow_nan=True)
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate travels as its escape
            return json.dumps(value, allow_nan=True).encode()

    def body(self, fields: tuple[str, ...]) -> bytes:
        rng, pick = self.rng, self.rng.random()
        if pick < 0.55:
            members = {self.key(fields): self.member() for _ in range(rng.randrange(5))}
            return self.dumps(members)
        if pick < 0.65:
            return self.dumps(self.value())
        if pick < 0.72:
            depth = rng.choice((30, 1000, 20000))
            return b'{"text": ' + b"[" * depth + b"]" * depth + b"}"
        if pick < 0.79:
            return rng.randbytes(rng.randrange(1, 300))
        if pick < 0.85:
            whole = self.dumps({self.key(): self.value()})
            return whole[: rng.randrange(len(whole))]
        if pick < 0.9:
            return b'{"ttl_minutes": ' + b"9" * rng.choice((20, 400, 5000)) + b"}"
        if pick < 0.95:
            return b""
        return self.dumps({self.key(): "x" * rng.choice((70_000, 300_000))})

    def segment(self, plausible: list[str]) -> str:
        rng, pick = self.rng, self.rng.random()
        if pick < 0.3 and plausible:
            return rng.choice(plausible)
        if pick < 0.5:
            return rng.choice(("²", "9" * 30, "0", "-1", "1e3", "0x10", "%00", "..", "a" * 5000))
        return quote(self.string()[:300], safe="", errors="surrogatepass") or "x"

    def path(self, canonical: str, plausible: list[str]) -> str:
        path = PLACEHOLDER.sub(lambda _m: self.segment(plausible), canonical)
        if self.rng.random() < 0.15:  # a query: the parameters some routes read, or junk
            name = self.rng.choice(QUERY_NAMES) if self.rng.random() < 0.8 else self.segment([])
            path += f"?{name}={self.segment(plausible)}"
        return path

    def content_type(self) -> str:
        return "application/json" if self.rng.random() < 0.85 else self.rng.choice(CONTENT_TYPES)


@dataclass
class Tally:
    sent: int = 0
    by_class: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)

    async def check(self, name: str, method: str, path: str, response: Any, api: bool) -> None:
        self.sent += 1
        status, text = response.status, await response.text(errors="replace")
        self.by_class[status // 100] = self.by_class.get(status // 100, 0) + 1
        where = f"{name} {method} {path[:80]} -> {status}: {text[:160]}"
        if status >= 500:
            self.bad.append(where)
        elif status == 400 and len(path) > LINE_MAX:
            pass  # a request line aiohttp's parser refuses, with its own 400 before any app code
        elif status >= 400 and api:
            try:
                said = json.loads(text)
                ok = isinstance(said["error"], str) and isinstance(said["reason"], str)
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                self.bad.append(where)


def routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, canonical path) of every route but HEAD, from the app's own router."""
    found = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        found.append((route.method, route.resource.canonical))
    return sorted(set(found))


def where_kind(where: str) -> str:
    """`daemon POST /api/tokens`: a bad answer's server, method and route prefix."""
    name, method, path = where.split(" ")[:3]
    return f"{name} {method} {'/'.join(path.split('/')[:3])}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ODD_PATHS = ("/api/", "/api/nope", "/static/", "/static/../../etc/passwd", "/%ff", "/api/tokens/")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def fuzz(
    name: str,
    client: Any,
    gen: Gen,
    tally: Tally,
    headers: Callable[[], dict[str, str]],
    plausible: list[str],
    is_api: Callable[[str], bool],
    after_batch: Callable[[], Awaitable[None]],
) -> None:
    table = routes(client.app)
    assert len(table) > 5, table

    async def one() -> None:
        canonical = ""
        if gen.rng.random() < 0.06:
            method = gen.rng.choice(METHODS)
            path = gen.rng.choice(ODD_PATHS) + gen.segment(plausible)
        else:
            method, canonical = gen.rng.choice(table)
            method = gen.rng.choice(METHODS) if method == "*" else method
            path = gen.path(canonical, plausible)
        sent = headers() | {"Content-Type": gen.content_type()}
        fields = ENDPOINT_FIELDS.get(canonical, FIELDS)
        data = gen.body(fields) if method in {"POST", "PUT", "PATCH", "DELETE"} else None
        async with client.request(method, path, data=data, headers=sent) as response:
            await tally.check(name, method, path, response, is_api(path))

    for _ in range(PER_SERVER // BATCH + 1):
        await asyncio.gather(*(one() for _ in range(BATCH)))
        await after_batch()


async def test_fuzz_both_http_apis(
    make_rendezvous: MakeRendezvous,
    aiohttp_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    limits = {
        f"{bucket}_rate_limit_per_hour": 1_000_000
        for bucket in ("token", "join", "report", "admin_login")
    }
    rv: RendezvousClient = await make_rendezvous(
        admin_password_hash=hash_password(PASSWORD), **limits
    )
    issued = await rv.post("/api/tokens/issue", json={})
    token = (await issued.json())["token"]
    bearer = {"token": ""}

    async def admin_login() -> None:  # again after a fuzzed logout spent the token
        check = await rv.get("/api/admin/reports", headers=auth(bearer["token"]))
        if check.status == 401:
            login = await rv.post("/api/admin/login", json={"password": PASSWORD})
            bearer["token"] = (await login.json())["token"]

    await admin_login()
    daemon = await daemon_client(
        aiohttp_client, tmp_path, rendezvous=str(rv.make_url("")).rstrip("/")
    )
    gen, tally = Gen(SEED), Tally()
    gen.known = [token]

    def rv_headers() -> dict[str, str]:
        pick = gen.rng.random()
        if pick < 0.5:
            return auth(bearer["token"])
        junk = "Bearer " + quote(gen.string()[:100], errors="surrogatepass")
        return {"Authorization": junk} if pick < 0.6 else {}

    def daemon_headers() -> dict[str, str]:
        own = api_headers(daemon)
        return own if gen.rng.random() < 0.95 else {"Origin": "http://evil.example"}

    async def nothing() -> None:
        pass

    await fuzz("rendezvous", rv, gen, tally, rv_headers, [token, "1"], lambda p: True, admin_login)
    await fuzz(
        "daemon", daemon, gen, tally, daemon_headers, [token, "alice", "m1"],
        lambda p: p.startswith("/api/"), nothing,
    )  # fmt: skip

    assert tally.sent >= 10_000
    kinds = Counter(where_kind(b) for b in tally.bad)
    assert not tally.bad, f"{len(tally.bad)} bad answers (seed {SEED}), {kinds}:\n" + "\n".join(
        tally.bad[:15]
    )
    assert tally.by_class.get(2, 0) > 100, tally.by_class  # the fuzz reaches the handlers
    crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, crashes[:10]
