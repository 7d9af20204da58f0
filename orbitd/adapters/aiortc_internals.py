"""Every use of aiortc's and aioice's private API, behind small named functions.

The private names, and why the daemon needs each:

- `RTCDtlsTransport._ssl` (an OpenSSL `SSL.Connection`) and
  `aiortc.rtcdtlstransport.certificate_digest`: the certificate the peer presented
  in the DTLS handshake, which the sealed handshake binds to the session
  (`presented_certificate_fingerprint`);
- `RTCIceTransport._connection` (an `aioice.Connection`) and its `_nominated`
  dict of `CandidatePair`s: which path a call runs on (`nominated_pair`);
- `aioice.ice.get_host_addresses`, looked up by `Connection.gather_candidates`:
  replaced so that 127.0.0.1 is the one host candidate (`use_loopback_host_addresses`);
- `RTCRtpReceiver._send_rtcp_pli`: aiortc sends PLI only on loss (`send_pli`);
- `RTCRtpSender._send_keyframe`, called by `_handle_rtcp_packet` on PLI/FIR: the
  only sign that a remote receiver asked for a keyframe (`wrap_send_keyframe`);
- `aiortc.rtcrtpreceiver.get_decoder` (looked up by `decoder_worker`) and
  `aiortc.rtcrtpreceiver.JitterBuffer` (looked up by `RTCRtpReceiver.__init__`):
  module globals replaced to forward encoded media (`replace_receiver_decoder`,
  `replace_receiver_jitter_buffer`);
- `JitterBuffer._remove_frame`, `_origin`, `_capacity`, `_packets`, `_is_video`
  and `RtpPacket._data` (set by `RTCRtpReceiver._handle_rtp_packet`): a jitter
  buffer that releases a frame when it is complete (`ForwardingJitterBuffer`);
- `aiortc.codecs.vpx.DEFAULT_BITRATE`, `MIN_BITRATE`, `MAX_BITRATE`: a fixed VP8
  bit rate for benchmarks (`fix_vp8_bitrate`);
- `aioice.stun.RETRY_RTO`, read by `stun.Transaction.__init__`: the first STUN
  retransmission timeout (0.5 s), an experiment of the nat benchmark
  (`set_stun_retransmission_timeout`);
- `Connection.check_incoming`, `Connection._check_list`, `StunProtocol.transactions`
  and a `stun.Transaction`'s `__addr` and `__request`: a check that arrives on a pair
  whose own check is in progress retransmits that check at once (RFC 8445 section
  7.3.1.4; aioice waits for its 0.5 s retransmission timer): what saves half a second
  of every connection across NATs (`retransmit_checks_on_incoming`, called by `Peer`).

`check()` verifies each of them against the installed library (see `REQUIRED`).
Heavy module: it imports aiortc; import it only when a session or call starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aioice.ice
import aioice.stun
from aioice import Candidate, Connection
from aiortc import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    rtcrtpreceiver,
)
from aiortc.codecs import vpx
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import certificate_digest
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from OpenSSL import SSL

from .requirements import Requirement, failures

DecoderFactory = Callable[[RTCRtpCodecParameters], Any]

# --- the DTLS certificate and the ICE pair ------------------------------------------


def presented_certificate_fingerprint(pc: RTCPeerConnection) -> str:
    """SHA-256 fingerprint of the certificate the peer presented in the DTLS handshake
    of `pc`'s data channel transport; "" before there is one."""
    dtls = pc.sctp.transport if pc.sctp else None
    ssl = getattr(dtls, "_ssl", None)
    if ssl is None:
        return ""
    certificate = ssl.get_peer_certificate(as_cryptography=True)
    return certificate_digest(certificate, "sha-256") if certificate else ""


@dataclass(frozen=True)
class NominatedPair:
    """The ICE candidate pair a connection settled on (component 1)."""

    local: Candidate
    remote: Candidate


def nominated_pair(pc: RTCPeerConnection) -> NominatedPair | None:
    """The pair `pc`'s data channel transport runs on; None before ICE has nominated
    one, or (defensively, for a user) when aioice no longer has the private names."""
    try:
        ice = pc.sctp.transport.transport if pc.sctp else None
        pair = ice._connection._nominated.get(1) if ice is not None else None
    except AttributeError:
        return None
    if pair is None:
        return None
    return NominatedPair(local=pair.local_candidate, remote=pair.remote_candidate)


# --- host candidates -------------------------------------------------------------------


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def use_loopback_host_addresses() -> Callable[[], None]:
    """Make aioice gather 127.0.0.1 as its one host candidate, process-wide (aioice
    never gathers loopback by itself). Returns a function that undoes it."""
    previous = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _loopback_only

    def undo() -> None:
        aioice.ice.get_host_addresses = previous

    return undo


def loopback_host_addresses_in_use() -> bool:
    return aioice.ice.get_host_addresses is _loopback_only


# --- keyframe requests -------------------------------------------------------------------


async def send_pli(receiver: RTCRtpReceiver, ssrc: int) -> None:
    """Send a picture loss indication for `ssrc` to the source behind `receiver`."""
    await receiver._send_rtcp_pli(ssrc)


def wrap_send_keyframe(sender: RTCRtpSender, hook: Callable[[], None]) -> None:
    """Call `hook` each time `sender`'s remote receiver asks for a keyframe (PLI or FIR),
    after the sender's own handling (an encoding sender forces a keyframe). Wraps this
    instance only; wrapping one sender twice calls both hooks."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        hook()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


# --- the receiver's decoder and jitter buffer ----------------------------------------------


def replace_receiver_decoder(factory: DecoderFactory) -> None:
    """Every receiver in this process, existing or future, gets its decoder from
    `factory` at its next codec change (and its first frame)."""
    rtcrtpreceiver.get_decoder = factory  # type: ignore[attr-defined, assignment]


def receiver_decoder_factory() -> DecoderFactory:
    """The decoder factory receivers use now (aiortc's own unless replaced)."""
    factory: DecoderFactory = vars(rtcrtpreceiver)["get_decoder"]
    return factory


def replace_receiver_jitter_buffer(cls: type[JitterBuffer]) -> None:
    """Receivers created from now on build their jitter buffer from `cls`, called
    as aiortc calls `JitterBuffer` (capacity, prefetch=, is_video=)."""
    rtcrtpreceiver.JitterBuffer = cls  # type: ignore[attr-defined]


def depayloaded(packet: RtpPacket) -> bytes:
    """The codec payload of `packet` as the receiver's depayloader left it."""
    data: bytes = packet._data  # type: ignore[attr-defined]
    return data


def set_depayloaded(packet: RtpPacket, data: bytes) -> None:
    """What the receiver does to a packet before its jitter buffer sees it (tests)."""
    packet._data = data  # type: ignore[attr-defined]


class ForwardingJitterBuffer(JitterBuffer):
    """Hands a frame on as soon as it is complete: a video frame at its RTP marker bit,
    and every audio packet at once (an Opus packet is a whole frame).

    aiortc's own buffer releases a video frame only when the next frame's first packet
    arrives (one frame interval: 33 ms at 30 fps) and holds four audio packets (80 ms)
    before decoding. That is for playout; a daemon that forwards adds it for nothing,
    the browser at the far end has its own.
    """

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch=0, is_video=is_video)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        assert origin is not None
        packets: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None
            if packets and packet.timestamp != packets[0].timestamp:
                return self._take(packets, count)  # the frame before lost its marker
            packets.append(packet)
            if packet.marker or not self._is_video:
                return self._take(packets, count + 1)
        return None

    def _take(self, packets: list[RtpPacket], count: int) -> JitterFrame:
        data = b"".join(depayloaded(p) for p in packets)
        self.remove(count)
        return JitterFrame(data=data, timestamp=packets[0].timestamp)


# --- benchmarks ------------------------------------------------------------------------------


def fix_vp8_bitrate(bps: int) -> None:
    """Make every VP8 encoder in this process send at `bps` (benchmarks)."""
    vpx.DEFAULT_BITRATE = vpx.MIN_BITRATE = vpx.MAX_BITRATE = bps


def set_stun_retransmission_timeout(seconds: float) -> None:
    """aioice's first STUN retransmission timeout (then doubled), process-wide (benchmarks)."""
    aioice.stun.RETRY_RTO = seconds


# --- what the library must still have -----------------------------------------------------


def _attributes(obj: object, *names: str) -> str | None:
    missing = [name for name in names if not hasattr(obj, name)]
    return f"{type(obj).__name__} has no {', '.join(missing)}" if missing else None


def _parameters(function: Callable[..., Any], *names: str) -> str | None:
    found = [p for p in inspect.signature(function).parameters if p != "self"]
    return None if found == list(names) else f"parameters are {found}, not {list(names)}"


def _looks_up(function: Callable[..., Any], name: str) -> str | None:
    """`function` still reads `name` (a global or attribute) when it runs."""
    code = inspect.unwrap(function).__code__
    return None if name in code.co_names else f"{function.__qualname__} no longer uses {name}"


def _first(*problems: str | None) -> str | None:
    return next((p for p in problems if p is not None), None)


def _ice_connection() -> Connection:
    connection = RTCIceTransport(RTCIceGatherer())._connection
    if not isinstance(connection, Connection):
        raise TypeError(f"RTCIceTransport._connection is a {type(connection).__name__}")
    return connection


def _probe_ssl() -> str | None:
    dtls = RTCDtlsTransport(
        RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]
    )
    return _first(
        _attributes(dtls, "_ssl"),
        _looks_up(RTCDtlsTransport.start, "_ssl"),
        _parameters(SSL.Connection.get_peer_certificate, "as_cryptography"),
        _parameters(certificate_digest, "certificate", "algorithm"),
    )


def _probe_nominated() -> str | None:
    nominated = getattr(_ice_connection(), "_nominated", None)
    if not isinstance(nominated, dict):
        return f"Connection._nominated is {nominated!r}, not a dict"
    candidate = Candidate.from_sdp("1 1 udp 2130706431 127.0.0.1 9 typ host")
    protocol = SimpleNamespace(local_candidate=candidate)  # what a pair reads from its StunProtocol
    pair = aioice.ice.CandidatePair(protocol, candidate)  # type: ignore[arg-type]
    return _attributes(pair, "local_candidate", "remote_candidate")


def _probe_host_addresses() -> str | None:
    return _first(
        _parameters(aioice.ice.get_host_addresses, "use_ipv4", "use_ipv6"),
        _looks_up(Connection.gather_candidates, "get_host_addresses"),
    )


def _probe_pli() -> str | None:
    method = getattr(RTCRtpReceiver, "_send_rtcp_pli", None)
    if method is None or not inspect.iscoroutinefunction(method):
        return "RTCRtpReceiver._send_rtcp_pli is not a coroutine function"
    return _parameters(method, "media_ssrc")


def _probe_send_keyframe() -> str | None:
    method = getattr(RTCRtpSender, "_send_keyframe", None)
    if method is None:
        return "RTCRtpSender has no _send_keyframe"
    return _first(
        _parameters(method),
        _looks_up(RTCRtpSender._handle_rtcp_packet, "_send_keyframe"),
    )


def _probe_get_decoder() -> str | None:
    if not callable(vars(rtcrtpreceiver).get("get_decoder")):
        return "aiortc.rtcrtpreceiver has no get_decoder"
    return _looks_up(rtcrtpreceiver.decoder_worker, "get_decoder")


def _probe_jitter_buffer_global() -> str | None:
    if not isinstance(vars(rtcrtpreceiver).get("JitterBuffer"), type):
        return "aiortc.rtcrtpreceiver has no JitterBuffer"
    return _first(
        _looks_up(RTCRtpReceiver.__init__, "JitterBuffer"),
        _parameters(JitterBuffer.__init__, "capacity", "prefetch", "is_video"),
    )


def _probe_jitter_buffer() -> str | None:
    return _first(
        _attributes(JitterBuffer(16), "_origin", "_capacity", "_packets", "_is_video"),
        _parameters(JitterBuffer._remove_frame, "sequence_number"),
        _looks_up(JitterBuffer.add, "_remove_frame"),
        _parameters(JitterBuffer.remove, "count"),
        _looks_up(RTCRtpReceiver._handle_rtp_packet, "_data"),
    )


def _probe_vpx() -> str | None:
    missing = [
        n
        for n in ("DEFAULT_BITRATE", "MIN_BITRATE", "MAX_BITRATE")
        if not isinstance(vars(vpx).get(n), int)
    ]
    return f"aiortc.codecs.vpx has no int {', '.join(missing)}" if missing else None


def retransmit_checks_on_incoming() -> None:
    """When a check arrives on a pair whose own check is in progress, resend that check
    now (its transaction unchanged) instead of waiting for the retransmission timer,
    process-wide (the first check toward a NAT is usually dropped: see bench nat)."""
    original = Connection.check_incoming
    if getattr(original, "retransmits_checks", False):
        return  # once per process
    in_progress = aioice.ice.CandidatePair.State.IN_PROGRESS

    def check_incoming(
        self: Connection, message: Any, addr: tuple[str, int], protocol: Any
    ) -> None:
        original(self, message, addr, protocol)
        for pair in self._check_list:
            if pair.protocol is protocol and pair.remote_addr == addr and pair.state == in_progress:
                transactions: list[Any] = list(protocol.transactions.values())
                for transaction in transactions:
                    if getattr(transaction, "_Transaction__addr", None) == addr:
                        protocol.send_stun(transaction._Transaction__request, addr)

    check_incoming.retransmits_checks = True  # type: ignore[attr-defined]
    Connection.check_incoming = check_incoming  # type: ignore[method-assign]


def _probe_stun_rto() -> str | None:
    if not isinstance(vars(aioice.stun).get("RETRY_RTO"), float):
        return "aioice.stun has no float RETRY_RTO"
    return _looks_up(aioice.stun.Transaction.__init__, "RETRY_RTO")


def _probe_check_incoming() -> str | None:
    return _first(
        _parameters(Connection.check_incoming, "message", "addr", "protocol"),
        _attributes(_ice_connection(), "_check_list"),
        _looks_up(aioice.stun.Transaction.__init__, "_Transaction__addr"),
        _looks_up(aioice.stun.Transaction.__init__, "_Transaction__request"),
        _looks_up(aioice.ice.StunProtocol.request, "transactions"),
    )


REQUIRED: tuple[Requirement, ...] = (
    Requirement("aiortc RTCDtlsTransport._ssl", _probe_ssl),
    Requirement("aioice Connection._nominated", _probe_nominated),
    Requirement("aioice.ice.get_host_addresses", _probe_host_addresses),
    Requirement("aiortc RTCRtpReceiver._send_rtcp_pli", _probe_pli),
    Requirement("aiortc RTCRtpSender._send_keyframe", _probe_send_keyframe),
    Requirement("aiortc.rtcrtpreceiver.get_decoder", _probe_get_decoder),
    Requirement("aiortc.rtcrtpreceiver.JitterBuffer", _probe_jitter_buffer_global),
    Requirement("aiortc JitterBuffer internals, RtpPacket._data", _probe_jitter_buffer),
    Requirement("aiortc.codecs.vpx bit rates", _probe_vpx),
    Requirement("aioice.stun.RETRY_RTO", _probe_stun_rto),
    Requirement("aioice check_incoming, transactions", _probe_check_incoming),
)


def check() -> list[str]:
    """One line per private name that is missing or changed shape; empty when all hold."""
    return failures(REQUIRED)


__all__ = [
    "REQUIRED",
    "ForwardingJitterBuffer",
    "NominatedPair",
    "check",
    "depayloaded",
    "fix_vp8_bitrate",
    "loopback_host_addresses_in_use",
    "nominated_pair",
    "presented_certificate_fingerprint",
    "receiver_decoder_factory",
    "replace_receiver_decoder",
    "replace_receiver_jitter_buffer",
    "retransmit_checks_on_incoming",
    "send_pli",
    "set_depayloaded",
    "set_stun_retransmission_timeout",
    "use_loopback_host_addresses",
    "wrap_send_keyframe",
]
