"""What one browser tab transfers, from Chromium's DevTools protocol (CDP).

A `Recorder` is attached to a Playwright page before it navigates. It turns the
tab's cache off (`Network.setCacheDisabled`), then groups every request by the
document load it belongs to (CDP's `loaderId`): one `Load` per navigation of
the main frame, with its `load` event time. Bytes on the wire are CDP's
`encodedDataLength` at `Network.loadingFinished`: response headers and body as
received, before any decoding (DevTools' "transferred" column). The events
WebSocket is kept apart, its frames counted as they pass.

Each response body is also fetched (`Network.getResponseBody`) to say what it
would weigh gzipped, since the daemon serves its files uncompressed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, CDPSession, Error, Page

from .procs import BenchError

API_KINDS = frozenset({"Fetch", "XHR"})
GZIP_LEVEL = 6  # gzip's and nginx-style servers' usual level


def redact(url: str) -> str:
    """Path only: no origin, no query (the login link's secret), no fragment (an invite)."""
    return urlsplit(url).path or "/"


@dataclass
class Transfer:
    """One HTTP request and its response."""

    path: str
    method: str
    kind: str
    """CDP's resource type: Document, Stylesheet, Script, Image, Fetch, ..."""
    started: float
    """CDP monotonic seconds, the clock of the load event."""
    status: int = 0
    mime: str = ""
    content_encoding: str = ""
    from_cache: bool = False
    wire_bytes: int = 0
    """Received on the wire: response headers and (encoded) body."""
    body_bytes: int | None = None
    """The decoded body, when the browser still had it."""
    gzip_bytes: int | None = None
    """wire_bytes as it would be with the body gzipped (= wire_bytes when it was encoded)."""
    failed: str = ""
    after_load: bool = False
    """Started after the page's load event."""

    @property
    def is_api_after_load(self) -> bool:
        return self.kind in API_KINDS and self.after_load


@dataclass
class Socket:
    """A WebSocket: its frames, payload bytes and an estimate of their bytes on the wire."""

    path: str
    frames_sent: int = 0
    frames_received: int = 0
    payload_sent: int = 0
    payload_received: int = 0
    wire_sent: int = 0
    wire_received: int = 0


@dataclass
class Load:
    """One document and everything requested while it was the tab's page."""

    path: str
    loader_id: str
    load_at: float | None = None
    transfers: list[Transfer] = field(default_factory=list)
    sockets: list[Socket] = field(default_factory=list)


def frame_overhead(payload: int, masked: bool) -> int:
    """A WebSocket frame's header: 2 bytes, the extended length, the client's mask."""
    extended = 0 if payload < 126 else 2 if payload < 65536 else 8
    return 2 + extended + (4 if masked else 0)


def _payload_bytes(response: dict[str, Any]) -> int:
    data = str(response.get("payloadData", ""))
    if response.get("opcode") == 2:  # binary frames come base64-encoded
        with contextlib.suppress(ValueError):
            return len(base64.b64decode(data))
    return len(data.encode())


class Recorder:
    """Everything one page transfers, load by load. `attach` before the page navigates;
    `settle` before reading the loads (body look-ups still under way finish)."""

    def __init__(self, cdp: CDPSession) -> None:
        self.cdp = cdp
        self.loads: dict[str, Load] = {}
        self._requests: dict[str, Transfer] = {}
        self._sockets: dict[str, Socket] = {}
        self._current: Load | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._main_frame = ""
        self.accept_encoding: set[str] = set()
        """What the browser's requests said they accept (Accept-Encoding)."""
        self.foreign_hosts: set[str] = set()
        """Hosts other than 127.0.0.1 the page asked for (there should be none)."""

    @classmethod
    async def attach(cls, context: BrowserContext, page: Page) -> Recorder:
        cdp = await context.new_cdp_session(page)
        recorder = cls(cdp)
        tree = await cdp.send("Page.getFrameTree")
        recorder._main_frame = str(tree["frameTree"]["frame"]["id"])
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "Network.requestWillBeSent": recorder._on_request,
            "Network.requestWillBeSentExtraInfo": recorder._on_request_headers,
            "Network.responseReceived": recorder._on_response,
            "Network.loadingFinished": recorder._on_finished,
            "Network.loadingFailed": recorder._on_failed,
            "Network.webSocketCreated": recorder._on_socket,
            "Network.webSocketFrameSent": recorder._on_frame_sent,
            "Network.webSocketFrameReceived": recorder._on_frame_received,
            "Page.lifecycleEvent": recorder._on_lifecycle,
        }
        for event, handler in handlers.items():
            cdp.on(event, handler)
        await cdp.send("Page.enable")
        await cdp.send("Page.setLifecycleEventsEnabled", {"enabled": True})
        await cdp.send("Network.enable")
        await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        return recorder

    # -- events ---------------------------------------------------------------

    def _on_request(self, params: dict[str, Any]) -> None:
        request_id = str(params["requestId"])
        self._check_host(str(params["request"]["url"]))
        kind = str(params.get("type", "Other"))
        loader_id = str(params.get("loaderId", ""))
        redirect = params.get("redirectResponse")
        if redirect is not None and request_id in self._requests:  # the hop before is done
            hop = self._requests.pop(request_id)
            hop.status = int(redirect.get("status", 0))
            hop.wire_bytes = int(redirect.get("encodedDataLength", 0))
            hop.gzip_bytes = hop.wire_bytes
        is_main_document = kind == "Document" and params.get("frameId") == self._main_frame
        if is_main_document and loader_id not in self.loads:
            self.loads[loader_id] = Load(redact(params["request"]["url"]), loader_id)
        load = self.loads.get(loader_id) or self._current
        if is_main_document:
            self._current = self.loads[loader_id]
        if load is None:
            return
        transfer = Transfer(
            path=redact(params["request"]["url"]),
            method=str(params["request"].get("method", "GET")),
            kind=kind,
            started=float(params.get("timestamp", 0.0)),
        )
        transfer.after_load = load.load_at is not None and transfer.started > load.load_at
        load.transfers.append(transfer)
        self._requests[request_id] = transfer

    def _on_request_headers(self, params: dict[str, Any]) -> None:
        for name, value in dict(params.get("headers", {})).items():
            if str(name).lower() == "accept-encoding":
                self.accept_encoding.add(str(value))

    def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname != "127.0.0.1":
            self.foreign_hosts.add(str(parts.hostname))

    def _on_response(self, params: dict[str, Any]) -> None:
        transfer = self._requests.get(str(params["requestId"]))
        if transfer is None:
            return
        response = params["response"]
        headers = {str(k).lower(): str(v) for k, v in response.get("headers", {}).items()}
        transfer.status = int(response.get("status", 0))
        transfer.mime = str(response.get("mimeType", ""))
        transfer.content_encoding = headers.get("content-encoding", "")
        transfer.from_cache = bool(
            response.get("fromDiskCache")
            or response.get("fromPrefetchCache")
            or response.get("fromServiceWorker")
        )

    def _on_finished(self, params: dict[str, Any]) -> None:
        request_id = str(params["requestId"])
        transfer = self._requests.pop(request_id, None)
        if transfer is None:
            return
        transfer.wire_bytes = int(params.get("encodedDataLength", 0))
        task = asyncio.get_running_loop().create_task(self._body(request_id, transfer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _body(self, request_id: str, transfer: Transfer) -> None:
        try:
            answer = await self.cdp.send("Network.getResponseBody", {"requestId": request_id})
        except Error:  # gone already (the page moved on), or there was none
            return
        raw = str(answer.get("body", ""))
        body = base64.b64decode(raw) if answer.get("base64Encoded") else raw.encode()
        transfer.body_bytes = len(body)
        if transfer.content_encoding:
            transfer.gzip_bytes = transfer.wire_bytes
        else:
            headers = max(0, transfer.wire_bytes - len(body))
            transfer.gzip_bytes = headers + len(gzip.compress(body, GZIP_LEVEL, mtime=0))

    def _on_failed(self, params: dict[str, Any]) -> None:
        transfer = self._requests.pop(str(params["requestId"]), None)
        if transfer is not None:
            transfer.failed = str(params.get("errorText", "failed"))
            transfer.wire_bytes = int(params.get("encodedDataLength", 0) or 0)

    def _on_socket(self, params: dict[str, Any]) -> None:
        if self._current is None:
            return
        url = str(params.get("url", ""))
        self._check_host(url)
        socket = Socket(redact(url))
        self._current.sockets.append(socket)
        self._sockets[str(params["requestId"])] = socket

    def _on_frame_sent(self, params: dict[str, Any]) -> None:
        socket = self._sockets.get(str(params["requestId"]))
        if socket is not None:
            size = _payload_bytes(params.get("response", {}))
            socket.frames_sent += 1
            socket.payload_sent += size
            socket.wire_sent += size + frame_overhead(size, masked=True)

    def _on_frame_received(self, params: dict[str, Any]) -> None:
        socket = self._sockets.get(str(params["requestId"]))
        if socket is not None:
            size = _payload_bytes(params.get("response", {}))
            socket.frames_received += 1
            socket.payload_received += size
            socket.wire_received += size + frame_overhead(size, masked=False)

    def _on_lifecycle(self, params: dict[str, Any]) -> None:
        load = self.loads.get(str(params.get("loaderId", "")))
        if load is not None and params.get("name") == "load" and load.load_at is None:
            load.load_at = float(params.get("timestamp", 0.0))
            for transfer in load.transfers:  # started before the event arrived here
                transfer.after_load = transfer.started > load.load_at

    # -- reading --------------------------------------------------------------

    async def settle(self) -> None:
        """Wait for the body look-ups under way."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def load(self, path: str) -> Load:
        """The latest load of the document at `path`."""
        found = [load for load in self.loads.values() if load.path == path]
        if not found:
            raise BenchError(f"no load of {path} was recorded")
        return found[-1]

    async def detach(self) -> None:
        with contextlib.suppress(Error):
            await self.cdp.detach()
