"""The `files` data channel of the current peer connection (feature `files`).

`Peer` makes it with the chat channel on every generation (the host creates both with
its offer, the guest adopts both) and hands it here; events of a replaced generation's
channel never arrive (Peer's guard). All channels share one SCTP send queue, so the
sender keeps the channel's buffered amount small: it sends while `buffered` is under
`HIGH_WATER_BYTES` and is woken by `bufferedamountlow` (at `LOW_WATER_BYTES`) to go on
(`../shared/DESIGN.md`, Pitfalls); a chat message then waits behind at most that much.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiortc import RTCDataChannel

FILES_LABEL = "files"
# F3 (bench files): a chat message waits behind HIGH_WATER_BYTES of file data; with
# large packets a 256 KiB mark costs no throughput (bare pair, 512 MiB, same run:
# 60-122 MB/s at 256 KiB, 55-66 at 1 MiB) and cuts the chat's wait (p50 5 ms, not 16).
LOW_WATER_BYTES = 64 * 1024
HIGH_WATER_BYTES = 256 * 1024
Guard = Callable[[Callable[..., None]], Callable[..., None]]


class FilesEvents(Protocol):
    """What the file transfers hear from the channel."""

    def files_message(self, data: str | bytes) -> None: ...

    def files_open(self) -> None: ...

    def files_low(self) -> None: ...


class FilesChannel:
    def __init__(self) -> None:
        self._channel: RTCDataChannel | None = None
        self._events: FilesEvents | None = None
        self.low_water = LOW_WATER_BYTES
        self.high_water = HIGH_WATER_BYTES

    def attach(self, events: FilesEvents | None) -> None:
        """Who hears the channel (None: nobody; its messages are dropped)."""
        self._events = events

    def reset(self) -> None:
        """A new connection: no channel until it comes."""
        self._channel = None

    def adopt(self, channel: RTCDataChannel, guard: Guard) -> None:
        """The current connection's files channel; `guard` drops a handler's calls once a
        newer connection replaced this one."""
        if self._channel is not None:
            channel.close()
            return
        self._channel = channel
        channel.bufferedAmountLowThreshold = self.low_water
        channel.on("message", guard(self._message))
        channel.on("bufferedamountlow", guard(self._low))
        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", guard(self._opened))

    def _message(self, data: str | bytes) -> None:
        if self._events is not None:
            self._events.files_message(data)

    def _opened(self) -> None:
        if self._events is not None:
            self._events.files_open()

    def _low(self) -> None:
        if self._events is not None:
            self._events.files_low()

    @property
    def is_open(self) -> bool:
        channel = self._channel
        return (
            channel is not None
            and channel.readyState == "open"
            and channel.transport.transport.state == "connected"
        )

    @property
    def has_room(self) -> bool:
        """Open, and less than the high-water mark waits in SCTP's queue."""
        channel = self._channel
        return self.is_open and channel is not None and channel.bufferedAmount < self.high_water

    def send(self, data: str | bytes) -> None:
        """Send on the channel, or `ConnectionError` when it cannot carry it."""
        if not self.is_open or self._channel is None:
            raise ConnectionError("the files channel is not open")
        self._channel.send(data)
