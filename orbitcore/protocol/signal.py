"""The `signal` channel: the bodies sealed inside the relay's `sealed` frame.

Only the two daemons can read them (AES-GCM under the session's signaling keys, the
token as associated data). Each side seals a `confirm` as soon as the key exchange is
done; the host then seals its WebRTC `offer`, the guest its `answer`.

The discriminator is `kind`, not `type`: daemons older than this module read `kind`,
and a sealed body never sits beside the relay's own `type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from .frames import Channel, Frame, ProtocolError, Text, text
from .version import FEATURE_RE, VERSION_RE

CHANNEL = Channel(
    "signal",
    "JSON sealed inside the relay's `sealed` frame (or the LAN link's), one body per box, "
    "named by `kind` (not `type`, for daemons older than versioning). At most 65536 bytes. "
    "A body that is not well-formed fails the handshake with `protocol_error`; a box that "
    "does not open before the peer's `confirm` fails it with `invite_mismatch` (after it, "
    "the keys are proven and such a box is dropped). Either way the other side gets an "
    "`abort`: sealed with `bound-boxes`, else the relay's.",
    max_bytes=65536,
    key="kind",
)
MAX_FEATURES = 64
SDP_MAX = 60_000


class SignalFrame(Frame):
    KEY: ClassVar[str] = "kind"


@CHANNEL.register
@dataclass(frozen=True)
class Confirm(SignalFrame):
    """Both sides, first: "I derived the keys" (the box opening proves it), which seat
    sent it (a box reflected back to its sender is refused), and the sender's protocol
    version, features and software. A confirm without `protocol` comes from a daemon
    older than versioning: protocol 1.0 with chat and calls.

    The shape of this frame is frozen forever: every future version sends and reads
    these members with these types, so that any two versions can at least tell each
    other, cleanly, that they cannot talk."""

    TYPE: ClassVar[str] = "confirm"
    seat: Literal["host", "guest"]
    protocol: str | None = text(9, pattern=VERSION_RE, default=None)
    features: tuple[Annotated[str, Text(32, FEATURE_RE)], ...] | None = None
    software: str | None = text(64, default=None)
    # Added in 1.3 (`bound-boxes`): the session's limits as the sender knows them (the
    # host issued them, the guest read them at its join). The host's are the session's;
    # a `session-status` that contradicts them is ignored (the relay's word, unsealed).
    ttl_minutes: int | None = None
    max_message_length: int | None = None

    def __post_init__(self) -> None:
        if self.features is not None and len(self.features) > MAX_FEATURES:
            raise ProtocolError(
                f"`confirm.features` may list at most {MAX_FEATURES}.", frame_type=self.TYPE
            )


@CHANNEL.register
@dataclass(frozen=True)
class Offer(SignalFrame):
    """The host's WebRTC offer (SDP), which carries its DTLS fingerprint."""

    TYPE: ClassVar[str] = "offer"
    sdp: Annotated[str, Text(SDP_MAX)]


@CHANNEL.register
@dataclass(frozen=True)
class Answer(SignalFrame):
    """The guest's WebRTC answer (SDP), which carries its DTLS fingerprint."""

    TYPE: ClassVar[str] = "answer"
    sdp: Annotated[str, Text(SDP_MAX)]


@CHANNEL.register
@dataclass(frozen=True)
class Reoffer(SignalFrame):
    """The host's offer for a new peer connection (feature `reconnect`), with its DTLS
    fingerprint: after the link died, or before the chat is ready when the first
    connection did not come up with the current ICE plan (a connection with the next
    plan, `orbitd/first_connect.py`). Sealed under the same keys as the first
    handshake but with its own associated data (`chatorbit/signal/<token>/reconnect`), so a
    box of the first handshake never opens as one of these nor the other way round; the
    AEAD authenticates `generation` with the SDP. `generation` counts the host's
    connections (the first is 0) and must be higher than any the guest accepted: a
    replayed older offer is dropped, and the running chat is not touched."""

    TYPE: ClassVar[str] = "reoffer"
    generation: int
    sdp: Annotated[str, Text(SDP_MAX)]


@CHANNEL.register
@dataclass(frozen=True)
class Reanswer(SignalFrame):
    """The guest's answer to the reoffer of `generation` (sealed the same way); the host
    takes only the answer to its current generation."""

    TYPE: ClassVar[str] = "reanswer"
    generation: int
    sdp: Annotated[str, Text(SDP_MAX)]


@CHANNEL.register
@dataclass(frozen=True)
class Rejoin(SignalFrame):
    """The guest lost the connection and waits for a reoffer; `generation` is the newest
    it has seen (sealed the same way). Sent when it notices, and again when its signaling
    socket comes back (a `session-status` arrives). A host that still thinks the link
    alive starts rebuilding; a host whose current reoffer is newer than `generation`
    (that one was lost on the way) makes the next attempt at once instead of waiting."""

    TYPE: ClassVar[str] = "rejoin"
    generation: int


@CHANNEL.register
@dataclass(frozen=True)
class Abort(SignalFrame):
    """A daemon gives up the handshake (feature `bound-boxes`): after the confirms, an
    abort travels sealed and bound like any box, so the relay cannot make one up. An
    unsealed relay `abort` from a peer that announced `bound-boxes` is the server's:
    reported as "the server ended the attempt", never as tampering, and ignored once
    the chat is ready."""

    TYPE: ClassVar[str] = "abort"
    code: Annotated[str, Text(64, r"[a-z][a-z0-9_]{0,63}")]
