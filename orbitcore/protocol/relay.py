"""The relay channel: the rendezvous WebSocket `/api/ws/{token}` (the seat's credential in
`Authorization: Bearer`), and the LAN link (`GET /lan/session/{id}`), which carries the
same handshake frames straight between two daemons.

A daemon sends `pake`, `sealed` and `abort` for its peer (the rendezvous forwards them as
the exact text received and never reads a sealed box), `ping` and `ice-refresh`; the
rendezvous sends `pong`, `error`, `session-status`, `session-ended` and `ice-servers`.
`RELAYED` are the frames the rendezvous forwards; the `webrtc-*` frames are the seed's,
relayed for its clients and used by no daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, Literal

from .frames import Channel, Frame, ProtocolError, Text, text

MAX_BYTES = 64 * 1024  # a sealed SDP is a few kB; the rendezvous's default message cap
CODE_RE = r"[a-z][a-z0-9_]{0,63}"
CODE = Annotated[str, Text(64, CODE_RE)]

CHANNEL = Channel(
    "relay",
    "The rendezvous WebSocket `/api/ws/{token}` (text frames; the"
    " rendezvous's own cap is `ws_max_message_bytes`, larger closes the socket with 1009),"
    " and the LAN link `GET /lan/session/{id}`, which carries only `pake`, `sealed` and"
    " `abort`. Frames the rendezvous refuses are answered with an `error` frame (codes"
    " `invalid_json`, `invalid_message`, `unknown_type`, `rate_limited`, `peer_queue_full`,"
    " `ice_unavailable`)"
    " and the socket stays open; a daemon logs `protocol_error` and drops a frame it"
    " refuses.",
    max_bytes=MAX_BYTES,
)


# -- daemon to daemon, through the rendezvous or the LAN link -------------------------


@CHANNEL.register
@dataclass(frozen=True)
class Pake(Frame):
    """A daemon's SPAKE2 message (base64), its first frame; the rendezvous holds it until
    the peer connects. A second, different one is an invite mismatch."""

    TYPE = "pake"
    msg: Annotated[str, Text(1024)]


@CHANNEL.register
@dataclass(frozen=True)
class Sealed(Frame):
    """A box (base64 nonce + AES-GCM ciphertext) under the PAKE's signaling key; inside, a
    frame of the `signal` channel. The rendezvous cannot open it. With feature
    `bound-boxes` every box after the confirm carries `seq` (the sender's count, from 1)
    and `phase` (`handshake`, `reconnect`), both sealed into its associated data with the
    direction: the receiver drops a box whose `seq` is not above every one it took
    (`orbitd/boxes.py`)."""

    TYPE = "sealed"
    box: Annotated[str, Text(MAX_BYTES)]
    seq: int | None = None
    phase: Literal["handshake", "reconnect"] | None = None


@CHANNEL.register
@dataclass(frozen=True)
class Abort(Frame):
    """A daemon gives up the handshake: `invite_mismatch` (a box did not open: the token
    is burned), `protocol_error`, or another code. Unsealed, so anyone on the way could
    make one up: never read as tampering (`peer_aborted`; `relay_aborted`, "the server
    ended the attempt", from a peer that announced `bound-boxes`, which seals its aborts),
    and ignored once the chat is ready."""

    TYPE = "abort"
    code: CODE


# -- the seed's signaling, relayed for its clients --------------------------------------


@CHANNEL.register
@dataclass(frozen=True)
class WebrtcOffer(Frame):
    """The seed's plaintext SDP offer (`RTCSessionDescriptionInit`); relayed, never sent
    by a daemon."""

    TYPE = "webrtc-offer"
    offer: dict[str, Any]


@CHANNEL.register
@dataclass(frozen=True)
class WebrtcAnswer(Frame):
    """The seed's plaintext SDP answer; relayed, never sent by a daemon."""

    TYPE = "webrtc-answer"
    answer: dict[str, Any]


@CHANNEL.register
@dataclass(frozen=True)
class WebrtcIceCandidate(Frame):
    """The seed's ICE candidate (`RTCIceCandidateInit`); relayed, never sent by a daemon."""

    TYPE = "webrtc-ice-candidate"
    candidate: dict[str, Any]


# -- daemon and rendezvous --------------------------------------------------------------


@CHANNEL.register
@dataclass(frozen=True)
class Ping(Frame):
    """A client asks whether the rendezvous is there; it answers `pong`."""

    TYPE = "ping"


@CHANNEL.register
@dataclass(frozen=True)
class Pong(Frame):
    """The rendezvous's answer to `ping`."""

    TYPE = "pong"


@dataclass(frozen=True)
class InReplyTo:
    """What an `error` answers: the refused frame's `type` and `id`, when it had them."""

    type: str | None = text(64, default=None)
    id: str | int | None = text(64, default=None)


@CHANNEL.register
@dataclass(frozen=True)
class Error(Frame):
    """The rendezvous refused a frame and the socket stays open: `code` says why,
    `in_reply_to` echoes the frame's `type` and `id` (when it had them)."""

    TYPE = "error"
    code: CODE
    message: Annotated[str, Text(500)]
    in_reply_to: InReplyTo | None = None


@CHANNEL.register
@dataclass(frozen=True)
class SessionStatus(Frame):
    """The session's status (`GET /api/session/{token}/status`'s body), sent on connect
    and pushed to both sockets on every change. A LAN session makes its own."""

    TYPE = "session-status"
    status: dict[str, Any]

    def __post_init__(self) -> None:
        """The members a daemon reads must have their types (the rest is shown as is)."""
        status = self.status
        timer = status.get("timer")
        checks: list[tuple[dict[str, Any], str, type | UnionType]] = [
            (status, "state", str),
            (status, "max_message_length", int),
        ]
        checks += [(status, "participants", dict), (status, "timer", dict)]
        if isinstance(timer, dict):
            checks += [(timer, "ttl_minutes", int), (timer, "remaining_seconds", int | float)]
        for body, name, kind in checks:
            if _wrong(body, name, kind):
                raise ProtocolError(
                    f"`session-status.status` has a mistyped `{name}`.",
                    frame_type=self.TYPE,
                    member="status",
                )


def _wrong(body: dict[str, Any], name: str, kind: type | UnionType) -> bool:
    """`body` has `name`, not null, and not of `kind` (a boolean is no number)."""
    value = body.get(name)
    return value is not None and (isinstance(value, bool) or not isinstance(value, kind))


@CHANNEL.register
@dataclass(frozen=True)
class SessionEnded(Frame):
    """The session is over (`manually_ended`, `timer_expired`; on a LAN link, made
    locally: `connect_timeout`, `peer_aborted`); the socket closes with 1000 next."""

    TYPE = "session-ended"
    reason: CODE
    ended_at: Annotated[str, Text(40)]


@dataclass(frozen=True)
class IceServer:
    """One ICE server as WebRTC's `RTCIceServer` has it: its `stun:`/`turn:`/`turns:` URLs
    and, for TURN, a time-limited user name and credential (never logged: no `repr`)."""

    urls: tuple[Annotated[str, Text(512)], ...]
    username: str | None = field(default=None, metadata={"text": Text(256)}, repr=False)
    credential: str | None = field(default=None, metadata={"text": Text(256)}, repr=False)


@CHANNEL.register
@dataclass(frozen=True)
class IceRefresh(Frame):
    """A daemon asks for fresh ICE servers before its TURN credentials expire; the
    rendezvous answers `ice-servers`, or `error` `ice_unavailable` when it hands out none.
    Counted against the socket's message rate like a relayed frame."""

    TYPE = "ice-refresh"


@CHANNEL.register
@dataclass(frozen=True)
class IceServers(Frame):
    """The rendezvous's answer to `ice-refresh`: the ICE servers, as the join response's
    `ice_servers`, with fresh TURN credentials; `ttl_seconds` is how long they are valid
    from now (absent when there is no TURN server), `expires_at` the Unix time in the
    user name."""

    TYPE = "ice-servers"
    ice_servers: tuple[IceServer, ...]
    ttl_seconds: int | None = None
    expires_at: int | None = None


RELAYED: frozenset[type[Frame]] = frozenset(
    {Pake, Sealed, Abort, WebrtcOffer, WebrtcAnswer, WebrtcIceCandidate}
)
"""What the rendezvous forwards to the other seat (as the exact text received)."""

HANDSHAKE = Pake | Sealed | Abort
"""What a LAN link carries, and what the handshake reads."""
