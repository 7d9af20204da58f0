"""The `peer` channel: JSON text on the reliable, ordered `chat` data channel between
two daemons, once the handshake is verified.

Six families share it, each with its own base class so the session can route a frame
by its class: the conversation (`ChatFrame`), call control (`CallFrame`), file transfer
control (`FileFrame`, feature `files`; the bytes travel on the `files` channel,
`orbitcore.protocol.files`), the renegotiation of the connection (`RtcFrame`), its
liveness (`LinkFrame`) and the durable stream that carries the first three across
reconnects (`StreamFrame`); `error` answers a frame that was refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from .frames import Channel, Frame, ProtocolError, Text, text

CHANNEL = Channel(
    "peer",
    "JSON text on the daemons' reliable, ordered `chat` data channel (WebRTC, DTLS), "
    "one frame per message, at most 131072 bytes. A frame that cannot be read, or is not "
    "expected, is answered with `error` (`code` `protocol_error`, `in_reply_to` its type "
    "when that could be read) and otherwise ignored; an `error` is never answered.",
    max_bytes=131072,
)
MESSAGE_ID = Annotated[str, Text(64, r"[0-9A-Za-z_-]{1,64}")]
CALL_ID = Annotated[str, Text(32, r"[0-9a-f]{32}")]
CODE = Annotated[str, Text(64, r"[a-z][a-z0-9_]{0,63}")]
SDP = Annotated[str, Text(60_000)]


class ChatFrame(Frame):
    """The conversation's frames (`orbitd.chat`)."""


class CallFrame(Frame):
    """Call control (`orbitd.call_state`)."""


class FileFrame(Frame):
    """File transfer control (`orbitd.files`, feature `files`)."""


class RtcFrame(Frame):
    """Renegotiation of the peer connection (`orbitd.negotiation`)."""


class LinkFrame(Frame):
    """Liveness of the connection (`orbitd.keepalive`): not part of the durable stream."""


class StreamFrame(Frame):
    """The durable stream's envelope and acknowledgement (`orbitd.durable`)."""


# -- the conversation ----------------------------------------------------------------------
@CHANNEL.register
@dataclass(frozen=True)
class Message(ChatFrame):
    """A chat message. `encrypted` is the text sealed with AES-256-GCM under the sender's
    chat key (the message id is the associated data), base64; `signature`, hex, checked on
    receipt, is with feature `keyed-signature` the HMAC-SHA256 of the message id, a zero
    byte and the text under the sender's MAC key (HKDF of the PAKE's key, one per
    direction), else (the seed's form) the SHA-256 of the text; `timestamp` is the
    sender's clock, Unix seconds. Answered with `ack` or `reject`."""

    TYPE: ClassVar[str] = "message"
    message_id: MESSAGE_ID
    encrypted: Annotated[str, Text(90_000)]
    signature: Annotated[str, Text(64, r"[0-9a-f]{64}")]
    timestamp: int


@CHANNEL.register
@dataclass(frozen=True)
class Ack(ChatFrame):
    """The receiver has the message (also for a resend of one it had)."""

    TYPE: ClassVar[str] = "ack"
    message_id: MESSAGE_ID


@CHANNEL.register
@dataclass(frozen=True)
class Reject(ChatFrame):
    """The receiver refused the message: `undecryptable`, `bad_signature` or
    `message_too_long`."""

    TYPE: ClassVar[str] = "reject"
    message_id: MESSAGE_ID
    code: CODE


@CHANNEL.register
@dataclass(frozen=True)
class Delete(ChatFrame):
    """Delete this message for both (the sender's own messages only)."""

    TYPE: ClassVar[str] = "delete"
    message_id: MESSAGE_ID


@CHANNEL.register
@dataclass(frozen=True)
class End(ChatFrame):
    """The sender ended the session."""

    TYPE: ClassVar[str] = "end"


# -- calls ------------------------------------------------------------------------------------
@CHANNEL.register
@dataclass(frozen=True)
class CallInvite(CallFrame):
    """Ring the other side. `call_id` is 128 random bits as 32 lowercase hex digits, new
    for every call; every call frame names its call, so a stale one is recognised. When
    both invite at once, the lower `call_id` wins."""

    TYPE: ClassVar[str] = "call-invite"
    call_id: CALL_ID


@CHANNEL.register
@dataclass(frozen=True)
class CallAccept(CallFrame):
    """The ringing side (or the side whose invite lost the glare) takes the call."""

    TYPE: ClassVar[str] = "call-accept"
    call_id: CALL_ID


@CHANNEL.register
@dataclass(frozen=True)
class CallDecline(CallFrame):
    """The ringing side says no: `declined` by the user, or `busy` in another call."""

    TYPE: ClassVar[str] = "call-decline"
    call_id: CALL_ID
    reason: Literal["declined", "busy"]


@CHANNEL.register
@dataclass(frozen=True)
class CallHangup(CallFrame):
    """The call (ringing or connected) is over: `hung_up` by the user, `no_answer` (the
    invite rang 45 s) or `media_failed` (no media within the connect timeout)."""

    TYPE: ClassVar[str] = "call-hangup"
    call_id: CALL_ID
    reason: Literal["hung_up", "no_answer", "media_failed"]


@CHANNEL.register
@dataclass(frozen=True)
class CallMute(CallFrame):
    """The sender muted (or unmuted) its audio or video; the other side shows it."""

    TYPE: ClassVar[str] = "call-mute"
    call_id: CALL_ID
    kind: Literal["audio", "video"]
    muted: bool


# -- file transfer control (feature `files`) --------------------------------------------------
FILE_ID = Annotated[str, Text(40, r"f-[0-9A-Za-z_-]{8,38}")]
FILE_CODE = Annotated[str, Text(64, r"[a-z][a-z0-9_]{0,63}")]


@CHANNEL.register
@dataclass(frozen=True)
class FileLimits(FileFrame):
    """Sent once when the chat is ready: the largest file (`max_bytes`) the sender will
    receive (its setting `file_size_max_bytes`). The other side offers nothing larger;
    the receiver refuses a larger offer all the same (`file-cancel` `too_large`)."""

    TYPE: ClassVar[str] = "file-limits"
    max_bytes: int


@CHANNEL.register
@dataclass(frozen=True)
class FileOffer(FileFrame):
    """The sender offers a file: `file_id` (`f-` and random characters, the sender's),
    `number` (the sender's transfer number, 1, 2, ..., which names the file in the
    chunks' binary header), `name`, `size` in bytes and `media_type` (what the sender's
    browser said, empty if unknown). The receiver's user accepts or declines it; the
    SHA-256 of the whole file follows in `file-done`."""

    TYPE: ClassVar[str] = "file-offer"
    file_id: FILE_ID
    number: int
    name: Annotated[str, Text(255)]
    size: int
    media_type: Annotated[str, Text(255)] = ""


@CHANNEL.register
@dataclass(frozen=True)
class FileAccept(FileFrame):
    """The receiver takes the offered file: the sender may send its chunks."""

    TYPE: ClassVar[str] = "file-accept"
    file_id: FILE_ID


@CHANNEL.register
@dataclass(frozen=True)
class FileDecline(FileFrame):
    """The receiver's user does not want the offered file."""

    TYPE: ClassVar[str] = "file-decline"
    file_id: FILE_ID


@CHANNEL.register
@dataclass(frozen=True)
class FileCancel(FileFrame):
    """Either side stops a transfer that is not finished, and frees all of it: `code`
    `cancelled` (by the user), `too_large` (over the receiver's limit), `hash_mismatch`
    (the SHA-256 of what arrived is not the one in `file-done`), `bad_chunk` (a chunk that
    does not open, is out of the window or has the wrong size), `download_interrupted`
    (the receiver's download stopped half-way)."""

    TYPE: ClassVar[str] = "file-cancel"
    file_id: FILE_ID
    code: FILE_CODE


@CHANNEL.register
@dataclass(frozen=True)
class FileDone(FileFrame):
    """The sender has every byte of the file from its user: `sha256` (hex) of the whole
    file. The receiver hands out the last chunk only once what arrived has this hash."""

    TYPE: ClassVar[str] = "file-done"
    file_id: FILE_ID
    sha256: Annotated[str, Text(64, r"[0-9a-f]{64}")]


# -- renegotiation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IceCandidate:
    """One ICE candidate as WebRTC spells it (the member names are WebRTC's)."""

    candidate: Annotated[str, Text(1024)]
    sdpMid: str | None = text(64, default=None)
    sdpMLineIndex: int | None = None

    def __post_init__(self) -> None:
        if self.sdpMid is None and self.sdpMLineIndex is None:
            raise ProtocolError(
                "`rtc-candidate.candidate` needs `sdpMid` or `sdpMLineIndex`.",
                frame_type="rtc-candidate",
            )

    def key(self) -> tuple[str, str | None, int | None]:
        """What makes two candidates the same one."""
        return (self.candidate, self.sdpMid, self.sdpMLineIndex)


@CHANNEL.register
@dataclass(frozen=True)
class RtcDescription(RtcFrame):
    """An SDP offer or answer renegotiating the connection (media for a call, an ICE
    restart when `ice_restart`). One that drops or changes a media section the receiver
    already has (an answer that does not mirror the offer, an offer without the call's
    audio or video) is not applied."""

    TYPE: ClassVar[str] = "rtc-description"
    kind: Literal["offer", "answer"]
    sdp: SDP
    ice_restart: bool = False


@CHANNEL.register
@dataclass(frozen=True)
class RtcCandidate(RtcFrame):
    """One ICE candidate of the sender's (a stack that trickles them)."""

    TYPE: ClassVar[str] = "rtc-candidate"
    candidate: IceCandidate


@CHANNEL.register
@dataclass(frozen=True)
class RtcNegotiate(RtcFrame):
    """The guest asks the host to make an offer (it cannot roll back one of its own)."""

    TYPE: ClassVar[str] = "rtc-negotiate"


@CHANNEL.register
@dataclass(frozen=True)
class RtcRestart(RtcFrame):
    """The guest saw ICE fail and asks the host for ICE restart number `attempt`."""

    TYPE: ClassVar[str] = "rtc-restart"
    attempt: int


# -- the durable stream (feature `resume`) -----------------------------------------------------
@CHANNEL.register
@dataclass(frozen=True)
class Seq(StreamFrame):
    """A conversation, call-control or file-control frame (`frame`, a whole frame of this
    channel) with the sender's sequence number `seq` (1, 2, ... per direction, for the
    whole session) and `ack`, the highest sequence number the sender has received in
    order. Sent again,
    in order, on every new connection until acknowledged; a receiver takes each number
    once and acknowledges a duplicate without acting on it. Used when both sides
    announce `resume` (`orbitd.durable`)."""

    TYPE: ClassVar[str] = "seq"
    seq: int
    ack: int
    frame: dict[str, Any]


@CHANNEL.register
@dataclass(frozen=True)
class SeqAck(StreamFrame):
    """The sender has received every `seq` up to `ack` in order (cumulative)."""

    TYPE: ClassVar[str] = "seq-ack"
    ack: int


# -- liveness ---------------------------------------------------------------------------------
@CHANNEL.register
@dataclass(frozen=True)
class Ping(LinkFrame):
    """Keepalive, about every second while the chat is connected (feature `reconnect`):
    the other side answers `pong` with the same `n`. Only a `pong` counts as life (it
    proves both directions); after about 4.5 s without one the link is dead: the host
    builds a new connection (`reoffer`), the guest waits for it."""

    TYPE: ClassVar[str] = "ping"
    n: int


@CHANNEL.register
@dataclass(frozen=True)
class Pong(LinkFrame):
    """The answer to `ping` number `n`."""

    TYPE: ClassVar[str] = "pong"
    n: int


# -- refusals -----------------------------------------------------------------------------------
@CHANNEL.register
@dataclass(frozen=True)
class Error(Frame):
    """A frame of the other side's was refused: `code` (`protocol_error` for a frame that
    cannot be read or is not expected, `feature_unavailable` for one of a feature that was
    not agreed), `message` in English for its log, `in_reply_to` the type of the refused
    frame when that much could be read. Never answered, not even when malformed."""

    TYPE: ClassVar[str] = "error"
    code: CODE
    message: Annotated[str, Text(500)]
    in_reply_to: str | None = text(64, default=None)


def refusal(error: ProtocolError) -> Error:
    """The `error` frame that answers a refused frame."""
    return Error(error.code, error.message[:500], error.frame_type)
