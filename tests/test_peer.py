"""`orbitd.peer.Peer`, the one owner of the peer connection: two Peers in this process,
on 127.0.0.1 only (the `ice_loopback` setting), connect and chat; both replace their
connection, signal the new generation as the first and chat on it; nothing of the
old connection reaches the session; the media transceivers come back with their tracks.
And no other daemon module drives a WebRTC connection."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from orbitd.ice import use_loopback_only
from orbitd.media.passthrough import drain
from orbitd.peer import Peer, PeerState
from orbitd.settings import Config


class Side:
    """What a session sees of its Peer: chat messages, state changes, media events."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[str] = asyncio.Queue()
        self.states: list[PeerState] = []
        self.tracks: asyncio.Queue[str] = asyncio.Queue()
        self.peer = Peer(Config(ice_loopback=True), self.messages.put_nowait, self.states.append)

    def peer_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        drain(track)
        self.tracks.put_nowait(track.kind)

    def signaling_changed(self, state: str) -> None:
        pass

    def ice_changed(self, state: str) -> None:
        pass


@pytest.fixture
async def sides() -> AsyncIterator[tuple[Side, Side]]:
    # `ice_loopback` patches aioice for the whole process: undone after the test.
    undo_loopback = use_loopback_only()
    try:
        host, guest = Side(), Side()
        yield host, guest
        await asyncio.gather(host.peer.close(), guest.peer.close())
    finally:
        undo_loopback()


async def signal(host: Side, guest: Side) -> None:
    """The first offer and answer, as the handshake carries them; until the chat is open."""
    offer = await host.peer.create_offer()
    answer = await guest.peer.accept_offer(offer)
    await host.peer.accept_answer(answer)
    async with asyncio.timeout(15):
        await asyncio.gather(host.peer.wait_open(), guest.peer.wait_open())


async def chat(host: Side, guest: Side, text: str) -> None:
    host.peer.send(f"{text} from the host")
    guest.peer.send(f"{text} from the guest")
    async with asyncio.timeout(5):
        assert await guest.messages.get() == f"{text} from the host"
        assert await host.messages.get() == f"{text} from the guest"


async def test_replace_makes_a_new_generation_that_chats_and_hides_the_old_one(
    sides: tuple[Side, Side],
) -> None:
    host, guest = sides
    await signal(host, guest)
    await chat(host, guest, "hello")
    first_fingerprint = guest.peer.presented_fingerprint()
    # A message that arrives on the old connection while it closes (aiortc drops a
    # channel's listeners once it is closed: this is the last moment one can come).
    old_pc, old_channel = guest.peer._pc, guest.peer._channel
    assert old_channel is not None
    old_pc.on("signalingstatechange", lambda: old_channel.emit("message", "late, old"))

    generations = await asyncio.gather(host.peer.replace(), guest.peer.replace())
    assert tuple(generations) == (1, 1)
    with pytest.raises(ConnectionError):
        guest.peer.send("nowhere to go")  # the old channel is gone, the new not open yet

    await signal(host, guest)
    await chat(host, guest, "hello again")
    assert guest.messages.empty() and host.messages.empty()
    # The session heard no `closed` from the old connection: only the new one opening.
    opened = [PeerState.CONNECTING, PeerState.OPEN]
    assert host.states == guest.states == [*opened, PeerState.NEW, *opened]
    second_fingerprint = guest.peer.presented_fingerprint()
    assert second_fingerprint and second_fingerprint != first_fingerprint  # a new certificate


async def test_replace_keeps_the_media_transceivers_and_their_tracks(
    sides: tuple[Side, Side],
) -> None:
    host, guest = sides
    await signal(host, guest)
    guest.peer.attach_media(guest)
    audio, video = AudioStreamTrack(), VideoStreamTrack()
    host.peer.add_media()
    host.peer.set_outgoing("audio", audio)
    host.peer.set_outgoing("video", video)
    assert guest.peer.sender("audio") is None  # the guest's come with the host's offer

    await asyncio.gather(host.peer.replace(), guest.peer.replace())
    assert [host.peer.sender(kind).track for kind in ("audio", "video")] == [audio, video]  # type: ignore[union-attr]
    offer = await host.peer.create_offer()
    assert "m=audio" in offer and "m=video" in offer
    answer = await guest.peer.accept_offer(offer)
    assert "a=sendrecv" in answer
    await host.peer.accept_answer(answer)
    async with asyncio.timeout(15):
        await asyncio.gather(host.peer.wait_open(), guest.peer.wait_open())
        kinds = {await guest.tracks.get(), await guest.tracks.get()}
    assert kinds == {"audio", "video"}
    assert guest.peer.sender("audio") is not None
    assert host.peer.generation == guest.peer.generation == 1
    audio.stop()
    video.stop()


# What only a connection's owner does: make one, drive its offers and answers, add to it.
OWNER_CALLS = frozenset(
    {
        "RTCPeerConnection",
        "createOffer",
        "createAnswer",
        "setLocalDescription",
        "setRemoteDescription",
        "addTransceiver",
        "addTrack",
        "createDataChannel",
        "addIceCandidate",
    }
)
OWNERS = {"orbitd/peer.py", "orbitd/media/browser_link.py"}  # the peer's, the browser's
# `forward()` adds a track to a connection its caller owns: the test and bench relays'.
HELPERS = {"orbitd/media/passthrough.py": {"addTrack"}}


def test_only_the_owners_drive_a_connection() -> None:
    root = Path(__file__).resolve().parent.parent
    found: dict[str, set[str]] = {}
    for path in sorted((root / "orbitd").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in OWNER_CALLS:
                    found.setdefault(path.relative_to(root).as_posix(), set()).add(name)
    assert set(found) >= OWNERS, found  # the scan still sees what the owners do
    others = {path: names - HELPERS.get(path, set()) for path, names in found.items()}
    assert {path: names for path, names in others.items() if names and path not in OWNERS} == {}
