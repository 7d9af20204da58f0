"""Fuzzing a hostile peer (issue #11): a guest (tests/hostile_peer.py, a real aiortc
guest that completed the handshake) puts thousands of seeded malformed frames
(tests/fuzz.py, `FUZZ_SEED` repeats a run) on a real daemon's data channel: random
members for every peer frame type, random JSON, deep nesting, lone surrogates. Each
unreadable one is answered with one `error` frame; well-formed frames that make no sense
(unknown ids and calls, garbage SDP and candidates, stray stream and liveness frames,
call frames in the middle of calls) are answered or dropped. Before any data channel, a
guest with only the token sends random handshake frames through the rendezvous. The
daemon never crashes, logs nothing the peer wrote, and the chat works afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orbitcore.protocol import peer, relay
from orbitcore.protocol.frames import ProtocolError
from orbitcore.protocol.version import FEATURES
from orbitd.peer import keeps_sections, media_sections
from tests.fuzz import SEED, Fuzz
from tests.processes import EVENT_WAIT, PYTHON, Daemon, start_daemon, start_rendezvous
from tests.test_orbitd_hostile_peer import MARKER, Hostile, chat_still_works, daemon, meet

__all__ = ["daemon"]  # the fixture, used by name

CRASHES = ("Traceback", "Task exception", "Error handling request", "Unhandled exception")
# Frames a well-formed copy of which would end the session or start a call: not sent
# well-formed (their malformed copies are).
DISRUPTIVE = {"end", "call-invite", "error"}
BATCH = 100
SDP_LINES = (
    "v=0",
    "o=- 3911 2 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=msid-semantic:WMS *",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0",
    "a=mid:0",
    "a=sctp-port:5000",
    "a=ice-ufrag:abcd",
    "a=ice-pwd:abcdefghijklmnopqrstuv",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
    "a=setup:actpass",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "a=mid:1",
    "a=rtpmap:111 opus/48000/2",
    "a=sendrecv",
    "a=rtcp-mux",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "a=rtpmap:96 VP8/90000",
)


def broken_sdp(fuzz: Fuzz) -> str:
    """An SDP that looks like one, with lines dropped, repeated, cut or made up."""
    lines = [line for line in SDP_LINES if fuzz.rng.random() < 0.85]
    for _ in range(fuzz.rng.randrange(4)):
        at = fuzz.rng.randrange(len(lines) + 1)
        made_up = fuzz.rng.choice(
            (
                fuzz.rng.choice(SDP_LINES)[: fuzz.rng.randrange(12)],
                "a=" + fuzz.string(),
                "m=" + fuzz.rng.choice(("audio", "video", "application")) + " x",
                "a=ssrc:" + str(fuzz.value()),
                "a=rtpmap:" + fuzz.string(),
                "a=extmap:" + str(fuzz.value()),
                "a=candidate:" + fuzz.string(),
                "a=setup:" + MARKER,  # aiortc's KeyError quotes it
                "a=sctp-port:" + MARKER,  # and its int() error
            )
        )
        lines.insert(at, made_up.encode("utf-8", "replace").decode())
    return "\r\n".join(lines) + "\r\n"


def unreadable(fuzz: Fuzz) -> str:
    """Text the peer channel refuses, and which does not call itself an `error`."""
    while True:
        text = fuzz.text(peer.CHANNEL)
        try:
            peer.CHANNEL.parse(text)
        except ProtocolError as exc:
            if exc.frame_type != "error":
                return text
            continue


def well_formed_nonsense(fuzz: Fuzz) -> str:
    """A frame the channel reads (random but valid members), of a type that cannot end
    the session or ring."""
    types = [cls for kind, cls in peer.CHANNEL.frames.items() if kind not in DISRUPTIVE]
    while True:
        cls = fuzz.rng.choice(types)
        body = fuzz.valid(cls) if fuzz.rng.random() < 0.8 else fuzz.body(cls)
        if cls is peer.RtcDescription and fuzz.rng.random() < 0.8:
            body["sdp"] = broken_sdp(fuzz)
        if cls is peer.Seq and fuzz.rng.random() < 0.8:
            body["frame"] = fuzz.valid(fuzz.rng.choice(types))
        try:
            text = json.dumps(body)
            peer.CHANNEL.parse(text)
        except (ProtocolError, ValueError):
            continue
        return text


async def answers_to(hostile: Hostile, count: int) -> list[dict[str, Any]]:
    return [await hostile.received() for _ in range(count)]


async def test_thousands_of_malformed_frames_each_get_an_error_and_the_chat_goes_on(
    tmp_path: Path, daemon: tuple[Daemon, str]
) -> None:
    alice, url = daemon
    hostile = await meet(tmp_path, alice, url)
    fuzz = Fuzz()
    try:
        # Unreadable frames, pipelined: one `error` each, in order.
        for _ in range(2000 // BATCH):
            for _ in range(BATCH):
                hostile.tell({"send": unreadable(fuzz)})
            for answer in await answers_to(hostile, BATCH):
                assert answer["type"] == "error", (fuzz.seed, answer)
                assert answer["code"] in ("protocol_error", "frame_too_large"), answer
        # Well-formed nonsense, each followed by a marker whose `error` closes its answers.
        answered: dict[str, int] = {}
        for i in range(500):
            text = well_formed_nonsense(fuzz)
            hostile.tell({"send": text})
            hostile.tell({"send": json.dumps({"type": f"sync-{i}"})})
            while (answer := await hostile.received()).get("in_reply_to") != f"sync-{i}":
                key = f"{answer['type']}:{answer.get('code', '')}"
                answered[key] = answered.get(key, 0) + 1
        errors = {"error:protocol_error", "error:feature_unavailable"}
        others = {k.split(":")[0] for k in answered if k not in errors}
        assert others <= {"ack", "reject", "rtc-description", "rtc-candidate"}, answered
        status, state = await alice.call("GET", "/api/state")
        assert status == 200 and state["session"]["phase"] == "ready", state
        await chat_still_works(alice, hostile)
    finally:
        await hostile.close()
    log = alice.process.log_path.read_text()
    assert not [c for c in CRASHES if c in log]
    assert MARKER not in log  # what the peer sent (here: in its SDP) is never logged


async def test_hostile_stream_and_liveness_frames_with_every_feature_agreed(
    tmp_path: Path, daemon: tuple[Daemon, str]
) -> None:
    """With `reconnect` and `resume` agreed the frames reach the durable stream and the
    liveness check too: `seq` with random numbers around the real ones and random inner
    frames, stray `seq-ack`, `ping`, `pong`. The session survives (the daemon's own
    messages still go out) or ends with `protocol_error`; nothing crashes."""
    alice, url = daemon
    hostile = await meet(tmp_path, alice, url, {"ORBITD_ANNOUNCE_FEATURES": ",".join(FEATURES)})
    fuzz = Fuzz(SEED + 1)
    inner = [cls for kind, cls in peer.CHANNEL.frames.items() if kind not in DISRUPTIVE]
    stream = [peer.Seq, peer.SeqAck, peer.Ping, peer.Pong]
    answered: dict[str, int] = {}
    try:
        assert set(hostile.ready["protocol"]["features"]) >= {"reconnect", "resume"}
        for i in range(1000):
            if i % 4 == 0:
                text = unreadable(fuzz)
            else:
                body = fuzz.valid(fuzz.rng.choice(stream))
                if body["type"] == "seq":
                    body["seq"] = fuzz.rng.choice((0, 1, 2, 3, i // 4, i, body["seq"]))
                    body["ack"] = fuzz.rng.choice((0, 1, -1, 2, body["ack"]))
                    if fuzz.rng.random() < 0.7:
                        body["frame"] = fuzz.valid(fuzz.rng.choice(inner))
                text = json.dumps(body)
            hostile.tell({"send": text})
            hostile.tell({"send": json.dumps({"type": f"sync-{i}"})})
            while (answer := await hostile.received()).get("in_reply_to") != f"sync-{i}":
                key = f"{answer['type']}:{answer.get('code', '')}"
                answered[key] = answered.get(key, 0) + 1
        status, state = await alice.call("GET", "/api/state")
        assert status == 200, state
        session = state["session"]
        if session["phase"] == "ready":
            # The hostile side's own stream is beyond repair (its made-up `seq`s were
            # taken and acknowledged), but the daemon's goes on: the message goes out.
            status, sent = await alice.call("POST", "/api/messages", {"text": "still there?"})
            assert status == 201
            message_id = sent["message"]["message_id"]
            out = {"type": "message", "message_id": message_id}
            while not (got := await hostile.received()).get("frame", {}).items() >= out.items():
                pass
            assert got["type"] == "seq"
        else:
            assert session["end_reason"] == "protocol_error", session
    finally:
        await hostile.close()
    log = alice.process.log_path.read_text()
    assert not [c for c in CRASHES if c in log], answered
    assert MARKER not in log


async def hostile_host(tmp_path: Path, alice: Daemon, url: str) -> Hostile:
    """The hostile side as the host: it makes the invite, the daemon joins it."""
    log = (tmp_path / "hostile.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        *("-m", "tests.hostile_peer", url, "--host"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        env=os.environ
        | {"XDG_DATA_HOME": str(tmp_path / "hostile"), "ORBITD_ANNOUNCE_FEATURES": "chat,calls"},
    )
    log.close()
    hostile = Hostile(proc, {})
    async with asyncio.timeout(30):
        while "invite" not in (message := await hostile._line()):
            pass
        status, joined = await alice.call("POST", "/api/join", {"invite": message["invite"]})
        assert status == 200, joined
        while "ready" not in (message := await hostile._line()):
            pass
    hostile.ready = message
    await alice.phase("ready")
    return hostile


@pytest.mark.parametrize("hostile_seat", ["guest", "host"])
async def test_call_and_renegotiation_frames_in_the_middle_of_calls(
    tmp_path: Path, daemon: tuple[Daemon, str], hostile_seat: str
) -> None:
    """Calls the daemon starts and the hostile side starts, and in between, call and
    rtc frames with the live call's id or another, garbage SDP and candidates, while a
    renegotiation is under way (the hostile side the guest, or the host, whose offers
    the daemon takes): each is answered or dropped, the daemon's call goes back to idle,
    and the chat goes on."""
    alice, url = daemon
    if hostile_seat == "guest":
        hostile = await meet(tmp_path, alice, url)
    else:
        hostile = await hostile_host(tmp_path, alice, url)
    fuzz = Fuzz(SEED + 2)
    rtc = [peer.RtcDescription, peer.RtcCandidate, peer.RtcNegotiate, peer.RtcRestart]
    calls = [peer.CallAccept, peer.CallDecline, peer.CallHangup, peer.CallMute, peer.CallInvite]
    live: str | None = None
    try:
        for i in range(600):
            if i % 100 == 0:  # the daemon rings the hostile side
                status, started = await alice.call("POST", "/api/call")
                if status == 200:
                    live = started["call"]["call_id"]
            cls = fuzz.rng.choice(rtc + calls)
            body = fuzz.valid(cls)
            if "call_id" in body and fuzz.rng.random() < 0.6 and live is not None:
                body["call_id"] = live
            if cls is peer.CallInvite:
                live = body["call_id"]
            if cls is peer.RtcDescription and fuzz.rng.random() < 0.8:
                body["sdp"] = broken_sdp(fuzz)
            hostile.tell({"send": json.dumps(body)})
            hostile.tell({"send": json.dumps({"type": f"sync-{i}"})})
            while (await hostile.received()).get("in_reply_to") != f"sync-{i}":
                pass
        hangup = {"type": "call-hangup", "call_id": live or "0" * 32, "reason": "hung_up"}
        hostile.tell({"send": json.dumps(hangup)})
        await alice.call("POST", "/api/call/hangup")
        status, state = await alice.call("GET", "/api/state")
        assert status == 200 and state["session"]["phase"] == "ready", state
        await chat_still_works(alice, hostile)
    finally:
        await hostile.close()
    log = alice.process.log_path.read_text()
    assert not [c for c in CRASHES if c in log]
    assert MARKER not in log


def test_a_description_that_drops_or_changes_our_media_sections_is_refused() -> None:
    """What the call fuzz found: aiortc takes an answer (or a new offer) with fewer media
    sections than ours, then its connect task dies with an IndexError; `Peer` refuses
    such a description first."""
    ours = media_sections("v=0\r\nm=application 9 X\r\nm=audio 9 Y 111\r\nm=video 9 Y 96\r\n")
    assert ours == ["application", "audio", "video"]
    assert keeps_sections(ours, "m=application 9 X\r\nm=audio 0 Y\r\nm=video 9 Y\r\n")
    assert keeps_sections(ours, "m=application 9 X\nm=audio 9 Y\nm=video 9 Y\nm=audio 9 Y\n")
    assert not keeps_sections(ours, "m=application 9 X\r\n")  # dropped
    assert not keeps_sections(ours, "m=application 9 X\r\nm=video 9 Y\r\nm=audio 9 Y\r\n")
    assert not keeps_sections(ours, "")


async def test_a_hostile_guest_on_the_signaling_socket(tmp_path: Path) -> None:
    """Before there is a data channel: a guest that joins with the token (not the secret)
    and sends the daemon random `pake`, `sealed` and `abort` frames (and garbage, which
    the rendezvous refuses) through the rendezvous. The daemon's session ends (the
    handshake fails or the guest aborted) or keeps waiting; it never crashes, and a real
    guest chats with it afterwards."""
    limits = ("--token-rate-limit-per-hour", "100", "--join-rate-limit-per-hour", "100")
    rendezvous, url = await start_rendezvous(tmp_path, *limits)
    alice = await start_daemon(tmp_path, "alice", url)
    fuzz = Fuzz(SEED + 3)
    handshake = [relay.Pake, relay.Sealed, relay.Abort]
    sent = 0
    ends: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        for round_ in range(20):
            status, created = await alice.call(
                "POST", "/api/tokens", {"validity_option": "day", "ttl_minutes": 60}
            )
            assert status == 201, created
            token = created["invite"].split("-")[0]
            identity = f"hostile-{round_}"
            async with http.post(
                url + "/api/tokens/join", json={"token": token, "client_identity": identity}
            ) as response:
                assert response.status == 200, await response.text()
            ws = await http.ws_connect(f"{url}/api/ws/{token}/{identity}")
            for _ in range(50):
                if fuzz.rng.random() < 0.7:
                    text = json.dumps(fuzz.valid(fuzz.rng.choice(handshake)))
                else:
                    text = fuzz.text(relay.CHANNEL, handshake)
                with contextlib.suppress(ConnectionError):  # the session ended: closed
                    await ws.send_str(text)
                    sent += 1
            with contextlib.suppress(ConnectionError):
                await ws.send_str('{"type": "ping"}')
            async with asyncio.timeout(EVENT_WAIT):  # our pong, or the close of an ended one
                while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                    if json.loads(msg.data)["type"] == "pong":
                        break
            await ws.close()
            status, state = await alice.call("GET", "/api/state")
            assert status == 200
            session = state["session"]
            if session is not None and session["phase"] == "ended":
                reason = session["ended"]["reason"]
            else:  # still waiting for a real guest (or about to read what was sent)
                assert msg.type is aiohttp.WSMsgType.TEXT, (msg, session)
                reason = "waiting"
                status, _ = await alice.call("POST", "/api/session/end")
                assert status == 200
            ends[reason] = ends.get(reason, 0) + 1
    try:
        assert sent > 500, (sent, ends)
        assert set(ends) <= {"protocol_error", "invite_mismatch", "peer_aborted", "waiting"}, ends
        hostile = await meet(tmp_path, alice, url)
        try:
            await chat_still_works(alice, hostile)
        finally:
            await hostile.close()
    finally:
        await alice.close()
        await rendezvous.stop()
    log = alice.process.log_path.read_text()
    assert not [c for c in CRASHES if c in log]
    assert MARKER not in log
