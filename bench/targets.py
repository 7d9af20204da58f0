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
