"""Larger SCTP packets on a data channel, where the path carries them: aiortc's private API.

aiortc cuts every data-channel message into DATA chunks of at most
`rtcsctptransport.USERDATA_MAX_LENGTH` (1172) bytes, one chunk per SCTP packet,
one DTLS record per packet, and the receiver answers every packet with a SACK.
On loopback that per-packet work is the whole cost of a bulk transfer (a
profile of `bench files`' bare pair: the sender spends its time in
`_receive_sack_chunk`, `_transmit` and `sendto`, once per 1172 bytes), so a
file moves at 13-27 MB/s. A DTLS record holds up to 2^14 bytes and loopback
carries 64 KiB datagrams: chunks of `LOOPBACK_USER_DATA` bytes cut the packets
fourteenfold.

The private names, and why:

- `RTCSctpTransport._send`, `_transmit`, `_receive_sack_chunk` and `_t3_expired`
  read the module global `USERDATA_MAX_LENGTH` (the chunk size, and the
  congestion window's step): `send_large_packets` binds copies of them to one
  transport, their globals saying a larger size (`_methods_for`);
- `RTCDtlsTransport._ssl` (an OpenSSL `SSL.Connection` on memory BIOs), read with
  `bio_read(1500)` in `_write_ssl` and `recv(1500)` in `_recv_next`: a larger
  record would be cut, so `accept_large_packets` puts a proxy in its place that
  reads up to 64 KiB (after the handshake: handshake flights stay as aiortc
  sends them).

- `RTCSctpTransport._cwnd`, which `_receive_sack_chunk` grows without bound while no
  packet is lost (aiortc ignores the receiver's window): capped at `WINDOW_CAP` after
  each SACK on a connection that sends large packets;
- `RTCSctpTransport._data_channel_send` (what `RTCDataChannel.send` calls: it appends
  to `_data_channel_queue`, a deque of (channel, protocol, data) that a task flushes
  into SCTP in order): the chat channel's messages are moved ahead of the other
  channels' there (`send_first`);
- `RTCIceTransport._connection._nominated[1].protocol.transport` (the asyncio datagram
  transport of the nominated candidate pair): its socket's receive buffer is raised
  (`enlarge_receive_buffer`): the default 208 KiB holds a dozen 16 KiB datagrams, and a
  receiver that is not scheduled for a few milliseconds drops the rest (RcvbufErrors:
  0.7 % of the packets of a bare pair on this loaded machine), which costs SCTP a
  retransmission timeout of at least a second.

Both sides must accept before either sends: the daemon accepts on every
connection to another daemon (never on a browser's), announces the feature
`large-packets` and sends large packets only when the peer announced it too and
`Peer.path()` is loopback. `check()` verifies every name (`REQUIRED`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import socket
from types import FunctionType, MethodType
from typing import Any

import aioice.ice
from aiortc import (
    RTCDataChannel,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCPeerConnection,
    RTCSctpTransport,
    rtcsctptransport,
)
from OpenSSL import SSL

from .requirements import Requirement, failures

DTLS_MAX_PLAINTEXT = 2**14
SCTP_HEADERS = rtcsctptransport.SCTP_COMMON_HEADER_LENGTH + 16  # common header, DATA chunk header
LOOPBACK_USER_DATA = (DTLS_MAX_PLAINTEXT - SCTP_HEADERS) // 4 * 4  # 16356 bytes
"""The most user data one DATA chunk may carry so that its packet fits one DTLS record."""
READ_SIZE = 1 << 16
WINDOW_CAP = 512 * 1024
"""The most bytes in flight: aiortc grows its congestion window without bound while no
packet is lost (it ignores the receiver's window), and with a receive buffer that
loses nothing it reached 2.7 MiB over 256 MiB: every byte in flight is a byte a chat
message waits behind. On loopback a few hundred KiB carry the full rate."""
RECEIVE_BUFFER = 4 * 1024 * 1024
"""The UDP receive buffer asked for (at most net.core.rmem_max: 4 MiB on Debian 12)."""
"""What the proxy reads of a record or of the outgoing BIO (a UDP datagram's most)."""
SIZED_METHODS = ("_send", "_transmit", "_receive_sack_chunk", "_t3_expired")
SIZE_GLOBAL = "USERDATA_MAX_LENGTH"


class LargeRecords:
    """An `SSL.Connection` that reads whole records of up to 64 KiB: what aiortc's DTLS
    transport calls with 1500 gets READ_SIZE. Everything else goes to the connection."""

    def __init__(self, ssl: SSL.Connection) -> None:
        self._ssl = ssl
        self.records = 0
        """Records read since the proxy is in place (a packet each: for tests, benchmarks)."""

    def recv(self, bufsiz: int, flags: int | None = None) -> bytes:
        self.records += 1
        return self._ssl.recv(max(bufsiz, READ_SIZE), flags)

    def bio_read(self, bufsiz: int) -> bytes:
        return self._ssl.bio_read(max(bufsiz, READ_SIZE))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssl, name)


def _dtls_of(pc: RTCPeerConnection) -> RTCDtlsTransport | None:
    return pc.sctp.transport if pc.sctp is not None else None


def accept_large_packets(pc: RTCPeerConnection) -> bool:
    """Let `pc`'s data-channel DTLS transport carry records of any size, both ways.
    Call it once its DTLS handshake is done (the connection is `connected`: aiortc
    emits that before it reads the first packet after the handshake); True when the
    proxy is in place (again or now), False before there is a connected transport."""
    dtls = _dtls_of(pc)
    ssl = getattr(dtls, "_ssl", None)
    if dtls is None or ssl is None or dtls.state != "connected":
        return False
    if not isinstance(ssl, LargeRecords):
        dtls._ssl = LargeRecords(ssl)  # type: ignore[assignment]
    return True


def accepts_large_packets(pc: RTCPeerConnection) -> bool:
    return isinstance(getattr(_dtls_of(pc), "_ssl", None), LargeRecords)


def records_received(pc: RTCPeerConnection) -> int | None:
    """DTLS records (packets) `pc` received since it accepts large packets; None if not."""
    ssl = getattr(_dtls_of(pc), "_ssl", None)
    return ssl.records if isinstance(ssl, LargeRecords) else None


@functools.cache
def _methods_for(user_data: int) -> dict[str, FunctionType]:
    """Copies of SIZED_METHODS whose USERDATA_MAX_LENGTH is `user_data`."""
    names = dict(vars(rtcsctptransport))
    names[SIZE_GLOBAL] = user_data
    copies = {}
    for name in SIZED_METHODS:
        original = getattr(RTCSctpTransport, name)
        copy = FunctionType(original.__code__, names, original.__name__, original.__defaults__)
        copy.__kwdefaults__ = original.__kwdefaults__
        copy.__qualname__ = original.__qualname__
        copies[name] = copy
    return copies


def send_large_packets(
    pc: RTCPeerConnection, user_data: int = LOOPBACK_USER_DATA, window: int = WINDOW_CAP
) -> bool:
    """Cut `pc`'s data-channel messages into DATA chunks of `user_data` bytes from now on
    (messages already cut keep their chunks), with at most about `window` bytes in flight.
    Only when the other side accepts large packets (`accept_large_packets`) and the path
    carries them. False without an SCTP transport."""
    sctp = pc.sctp
    if sctp is None:
        return False
    methods = _methods_for(user_data)
    for name, method in methods.items():
        setattr(sctp, name, MethodType(method, sctp))
    receive_sack = methods["_receive_sack_chunk"]

    async def receive_sack_capped(self: RTCSctpTransport, chunk: Any) -> None:
        await receive_sack(self, chunk)  # it may send, with at most one chunk over the cap
        self._cwnd = min(self._cwnd, window)

    sctp._receive_sack_chunk = MethodType(receive_sack_capped, sctp)  # type: ignore[method-assign]
    sctp._cwnd = min(max(sctp._cwnd, 3 * user_data), window)  # aiortc's first, in large chunks
    return True


def congestion_window(pc: RTCPeerConnection) -> int | None:
    """The bytes `pc`'s SCTP association may have in flight now (None: no association)."""
    return int(pc.sctp._cwnd) if pc.sctp is not None else None


def sends_large_packets(pc: RTCPeerConnection) -> int | None:
    """The chunk size `send_large_packets` set on `pc`, or None (aiortc's own)."""
    method = vars(pc.sctp).get("_send") if pc.sctp is not None else None
    if method is None:
        return None
    size = method.__func__.__globals__.get(SIZE_GLOBAL)
    return size if isinstance(size, int) else None


def enlarge_receive_buffer(pc: RTCPeerConnection, size: int = RECEIVE_BUFFER) -> int | None:
    """Ask for a receive buffer of `size` bytes on the UDP socket `pc`'s data channel runs
    on (the kernel caps it at net.core.rmem_max and doubles it); what the socket has then,
    or None without a nominated pair or a socket."""
    dtls = _dtls_of(pc)
    try:
        pair = dtls.transport._connection._nominated.get(1) if dtls is not None else None
        sock = pair.protocol.transport.get_extra_info("socket") if pair is not None else None
    except AttributeError:
        return None
    if sock is None:
        return None
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def send_first(pc: RTCPeerConnection, channel: RTCDataChannel) -> bool:
    """From now on `channel`'s messages go ahead of the other channels' messages waiting
    in `pc`'s SCTP association (each channel's own order kept): a chat line then waits
    only for what SCTP has already cut into packets, not behind a file's buffered
    chunks. False without an association."""
    sctp = pc.sctp
    if sctp is None:
        return False
    queue_send = sctp._data_channel_send

    def send(sending: RTCDataChannel, data: bytes | str) -> None:
        queue_send(sending, data)  # appended last; aiortc flushes in a task of its own
        if sending is not channel:
            return
        queue = sctp._data_channel_queue
        item = queue.pop()
        after = max((n + 1 for n, queued in enumerate(queue) if queued[0] is channel), default=0)
        queue.insert(after, item)

    sctp._data_channel_send = send  # type: ignore[method-assign, assignment]
    return True


# --- what the library must still have -----------------------------------------------------


def _probe_sized_methods() -> str | None:
    if not isinstance(vars(rtcsctptransport).get(SIZE_GLOBAL), int):
        return f"aiortc.rtcsctptransport has no int {SIZE_GLOBAL}"
    for name in SIZED_METHODS:
        method = getattr(RTCSctpTransport, name, None)
        if not isinstance(method, FunctionType) or method.__closure__ is not None:
            return f"RTCSctpTransport.{name} is not a plain function"
        if SIZE_GLOBAL not in method.__code__.co_names:
            return f"RTCSctpTransport.{name} no longer uses {SIZE_GLOBAL}"
    if "_cwnd" not in RTCSctpTransport.__init__.__code__.co_names:
        return "RTCSctpTransport has no _cwnd"
    return None


def _probe_dtls_reads() -> str | None:
    """aiortc reads the DTLS connection through `self._ssl.bio_read` and `.recv` only."""
    for method, name in (
        (RTCDtlsTransport._write_ssl, "bio_read"),
        (RTCDtlsTransport._recv_next, "recv"),
    ):
        code = inspect.unwrap(method).__code__
        if "_ssl" not in code.co_names or name not in code.co_names:
            return f"{method.__qualname__} no longer reads self._ssl.{name}"
    for name in ("recv", "bio_read"):
        if list(inspect.signature(getattr(SSL.Connection, name)).parameters)[1] != "bufsiz":
            return f"SSL.Connection.{name} no longer takes bufsiz"
    return None


def _probe_pair_transport() -> str | None:
    gatherer = RTCIceGatherer()
    connection = RTCIceTransport(gatherer)._connection
    if not isinstance(getattr(connection, "_nominated", None), dict):
        return "aioice Connection has no _nominated dict"
    if "transport" not in vars(aioice.ice.StunProtocol).get("__annotations__", {}):
        return "aioice StunProtocol no longer has a transport"
    init = aioice.ice.CandidatePair.__init__.__code__
    return None if "protocol" in init.co_names else "CandidatePair has no protocol"


def _probe_channel_queue() -> str | None:
    send = inspect.unwrap(RTCSctpTransport._data_channel_send)
    if list(inspect.signature(send).parameters) != ["self", "channel", "data"]:
        return "RTCSctpTransport._data_channel_send changed its parameters"
    if "_data_channel_queue" not in send.__code__.co_names:
        return "RTCSctpTransport._data_channel_send no longer queues in _data_channel_queue"
    if "_data_channel_queue" not in RTCSctpTransport.__init__.__code__.co_names:
        return "RTCSctpTransport has no _data_channel_queue"
    return None


REQUIRED: tuple[Requirement, ...] = (
    Requirement("aiortc RTCSctpTransport USERDATA_MAX_LENGTH methods", _probe_sized_methods),
    Requirement("aiortc RTCDtlsTransport._ssl reads", _probe_dtls_reads),
    Requirement("aioice nominated pair's datagram transport", _probe_pair_transport),
    Requirement("aiortc RTCSctpTransport._data_channel_queue", _probe_channel_queue),
)


def check() -> list[str]:
    """One line per private name that is missing or changed shape; empty when all hold."""
    return failures(REQUIRED)


__all__ = [
    "LOOPBACK_USER_DATA",
    "REQUIRED",
    "accept_large_packets",
    "accepts_large_packets",
    "check",
    "congestion_window",
    "enlarge_receive_buffer",
    "records_received",
    "send_first",
    "send_large_packets",
    "sends_large_packets",
]
