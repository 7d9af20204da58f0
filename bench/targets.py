"""What the load generator talks to: the rendezvous, or the bare aiohttp baseline.

Both offer the same three things: issue one token, seat one pair (giving the
two WebSocket URLs), and count the sockets the server has open.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import ClientSession

from .procs import BenchError

ISSUE_BODY = {"validity_option": "day", "ttl_minutes": 60, "max_message_length": 2000}


class Target(Protocol):
    name: str
    url: str

    async def issue(self, http: ClientSession) -> str: ...

    async def seat_pair(self, http: ClientSession, pair: int) -> tuple[str, str]: ...

    async def open_sockets(self, http: ClientSession) -> int: ...


async def _post(http: ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        text = await response.text()
        if response.status != 200:
            raise BenchError(f"POST {url}: HTTP {response.status}: {text[:200]}")
    answer = json.loads(text)
    if not isinstance(answer, dict):
        raise BenchError(f"POST {url}: not a JSON object: {text[:200]}")
    return answer


def _ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


class Rendezvous:
    """The real thing: issue, join twice, then `/api/ws/{token}/{identity}`."""

    name = "rendezvous"

    def __init__(self, url: str) -> None:
        self.url = url

    async def issue(self, http: ClientSession) -> str:
        answer = await _post(http, f"{self.url}/api/tokens/issue", ISSUE_BODY)
        return str(answer["token"])

    async def seat_pair(self, http: ClientSession, pair: int) -> tuple[str, str]:
        token = await self.issue(http)
        urls = []
        for role in ("host", "guest"):
            identity = f"bench-{pair}-{role}"
            body = {"token": token, "client_identity": identity}
            answer = await _post(http, f"{self.url}/api/tokens/join", body)
            if answer.get("role") != role:
                raise BenchError(f"join as {identity}: got role {answer.get('role')!r}")
            urls.append(f"{_ws_url(self.url)}/api/ws/{token}/{identity}")
        return urls[0], urls[1]

    async def open_sockets(self, http: ClientSession) -> int:
        async with http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        for line in text.splitlines():
            if line.startswith("orbit_open_sockets "):
                return int(float(line.split()[1]))
        raise BenchError("GET /metrics: no orbit_open_sockets")


class Baseline:
    """The bare aiohttp server of `bench.baseline_server`: no joins, sockets paired by path."""

    name = "baseline"

    def __init__(self, url: str) -> None:
        self.url = url

    async def issue(self, http: ClientSession) -> str:
        answer = await _post(http, f"{self.url}/api/tokens/issue", ISSUE_BODY)
        return str(answer["token"])

    async def seat_pair(self, http: ClientSession, pair: int) -> tuple[str, str]:
        url = f"{_ws_url(self.url)}/ws/pair-{pair}"
        return url, url

    async def open_sockets(self, http: ClientSession) -> int:
        async with http.get(f"{self.url}/stats") as response:
            answer = await response.json()
        return int(answer["open_sockets"])


class Spread:
    """Several rendezvous instances sharing a database and Redis: pair k's host is seated
    on instance k mod n and its guest on the next one, so with two instances or more
    every relayed frame crosses from one instance to another (with one, this is
    `Rendezvous`)."""

    name = "rendezvous"

    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise ValueError("Spread needs at least one instance")
        self.urls = urls
        self.url = urls[0]

    def instances_of(self, pair: int) -> tuple[int, int]:
        """(the host's instance, the guest's instance) for pair number `pair`."""
        host = pair % len(self.urls)
        return host, (host + 1) % len(self.urls)

    async def issue(self, http: ClientSession) -> str:
        return await Rendezvous(self.url).issue(http)

    async def seat_pair(self, http: ClientSession, pair: int) -> tuple[str, str]:
        host_at, guest_at = (self.urls[i] for i in self.instances_of(pair))
        token = await Rendezvous(host_at).issue(http)
        urls = []
        for role, base in (("host", host_at), ("guest", guest_at)):
            identity = f"bench-{pair}-{role}"
            body = {"token": token, "client_identity": identity}
            answer = await _post(http, f"{base}/api/tokens/join", body)
            if answer.get("role") != role:
                raise BenchError(f"join as {identity}: got role {answer.get('role')!r}")
            urls.append(f"{_ws_url(base)}/api/ws/{token}/{identity}")
        return urls[0], urls[1]

    async def open_sockets(self, http: ClientSession) -> int:
        counts = [await Rendezvous(url).open_sockets(http) for url in self.urls]
        return sum(counts)
