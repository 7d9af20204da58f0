"""Calls without transcoding: encoded passthrough through a relay, and headless sources.

The chain: this process sends a test pattern (VP8) and a tone (Opus) to a relay
process (tests/media_peer.py: orbitd's passthrough, no decoding), which forwards
them to a sink in this process that decodes them. The relay is a process of its
own because `install_passthrough()` is process-wide and the sink must decode.
Everything stays on 127.0.0.1. These tests check behaviour only (frames arrive,
move, keep their order; the relay never decodes): the frame rate, latency and
relay CPU of the same relay are measured by `make bench` (the video suite's
"passthrough relay" path, beside a transcoding relay).
"""

from __future__ import annotations

import array
import asyncio
import fractions
import itertools
import json
import sys
import time
import wave
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import pytest
import pytest_asyncio
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from orbitd.ice import use_loopback_only
from orbitd.media import parse_audio_source, parse_video_source
from orbitd.media.passthrough import (
    ForwardedTrack,
    drain,
    keyframe_requester,
    negotiated_codec,
    on_keyframe_request,
    prefer_codecs,
    transceiver_of,
)
from orbitd.media.sources import (
    STAMP_HEIGHT,
    Stamp,
    TestPatternTrack,
    ToneTrack,
    audio_source,
    read_stamp,
    video_source,
)

if TYPE_CHECKING:
    from av.stream import Stream

ROOT = Path(__file__).resolve().parent.parent
WARMUP_FRAMES = 15  # video frames at the sink before the window opens (past the start)
WINDOW_VIDEO, WINDOW_AUDIO = 60, 100  # frames the window waits for: about 2 s of each
TONE_HZ = 440


# --- the chain: source -> relay (passthrough) -> sink ------------------------------------


@dataclass
class Seen:
    at: float
    stamp: Stamp | None
    signature: int
    """CRC of one luma row of the scrolling bars: changes when the picture moves."""


@dataclass
class Chain:
    codec: str
    """The video codec the source prefers, lower case."""
    sink_codec: str | None = None
    video: list[Seen] = field(default_factory=list)
    audio: list[tuple[float, array.array[int]]] = field(default_factory=list)
    """(arrival, left-channel samples) of each decoded audio frame."""
    window: tuple[float, float] = (0.0, 0.0)
    """When the window opened and closed (to pick its frames; no rate is judged)."""
    relay: dict[str, Any] = field(default_factory=dict)
    """The relay's stats over the window."""
    relay_after_pli: dict[str, Any] = field(default_factory=dict)
    source_keyframe_requests: list[float] = field(default_factory=list)
    pli_at: float = 0.0

    def video_in_window(self) -> list[Seen]:
        start, end = self.window
        return [seen for seen in self.video if start <= seen.at < end]

    def audio_in_window(self) -> list[array.array[int]]:
        start, end = self.window
        return [samples for at, samples in self.audio if start <= at < end]


class RelayProcess:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc, self.log = proc, log

    @classmethod
    async def start(cls, log: Path, *flags: str) -> RelayProcess:
        with log.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.media_peer",
                *flags,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
        relay = cls(proc, log)
        assert (await relay.recv())["ready"]
        return relay

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert line, f"the relay exited; its log: {self.log.read_text()}"
        message: dict[str, Any] = json.loads(line)
        return message

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        return await self.recv()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.send({"cmd": "quit"})
                await asyncio.wait_for(self.proc.wait(), 10)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(configuration=RTCConfiguration(iceServers=[]))


def signature(frame: av.VideoFrame) -> int:
    plane = frame.planes[0]
    row = STAMP_HEIGHT + 8
    return zlib.crc32(bytes(plane)[row * plane.line_size : row * plane.line_size + frame.width])


def left_channel(frame: av.AudioFrame) -> array.array[int]:
    samples = array.array("h", bytes(frame.planes[0]))
    channels = len(frame.layout.channels)
    return samples[: frame.samples * channels : channels]


async def watch(track: MediaStreamTrack, chain: Chain) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        now = time.monotonic()
        if isinstance(frame, av.VideoFrame):
            seen = Seen(now, read_stamp(frame), signature(frame))
            chain.video.append(seen)
        elif isinstance(frame, av.AudioFrame):
            chain.audio.append((now, left_channel(frame)))


async def wait_until(condition: Callable[[], bool], limit: float) -> bool:
    """Poll `condition` for up to `limit` seconds; whether it came true."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run_chain(
    relay: RelayProcess, source: RTCPeerConnection, sink: RTCPeerConnection, codec: str
) -> Chain:
    chain = Chain(codec.lower())
    video_sender = source.addTrack(TestPatternTrack())
    audio_sender = source.addTrack(ToneTrack(TONE_HZ))
    prefer_codecs(transceiver_of(source, video_sender), first=codec)
    prefer_codecs(transceiver_of(source, audio_sender))
    on_keyframe_request(
        video_sender, lambda: chain.source_keyframe_requests.append(time.monotonic())
    )

    watchers: list[asyncio.Task[None]] = []
    sink.on("track", lambda track: watchers.append(asyncio.ensure_future(watch(track, chain))))

    await source.setLocalDescription(await source.createOffer())
    answer = (await relay.ask({"offer": source.localDescription.sdp}))["answer"]
    await source.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await sink.setRemoteDescription(RTCSessionDescription((await relay.recv())["offer"], "offer"))
    await sink.setLocalDescription(await sink.createAnswer())
    await relay.send({"answer": sink.localDescription.sdp})
    video_transceiver = next(t for t in sink.getTransceivers() if t.kind == "video")
    chain.sink_codec = negotiated_codec(sink, video_transceiver)

    def started() -> bool:
        return len(chain.video) >= WARMUP_FRAMES and bool(chain.audio)

    assert await wait_until(started, 15), "no media at the sink"
    await relay.ask({"cmd": "mark"})
    start = time.monotonic()
    chain.window = (start, start)

    def window_full() -> bool:
        chain.window = (start, time.monotonic())
        return (
            len(chain.video_in_window()) >= WINDOW_VIDEO
            and len(chain.audio_in_window()) >= WINDOW_AUDIO
        )

    assert await wait_until(window_full, 20), "media stopped coming"
    chain.relay = await relay.ask({"cmd": "stats"})

    # A keyframe request from the sink: a PLI to the relay, which passes it upstream.
    chain.pli_at = time.monotonic()
    keyframe_requester(video_transceiver.receiver).request()
    await wait_until(lambda: any(at > chain.pli_at for at in chain.source_keyframe_requests), 5)
    # The keyframe that answers it reaches the relay: its count goes up.
    keyframes = chain.relay["tracks"]["video"]["keyframes"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        chain.relay_after_pli = await relay.ask({"cmd": "stats"})
        if chain.relay_after_pli["tracks"]["video"]["keyframes"] > keyframes:
            break
        await asyncio.sleep(0.05)
    return chain


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["video/VP8", "video/H264"])
async def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Chain]:
    undo_loopback = use_loopback_only()
    try:
        relay = await RelayProcess.start(tmp_path_factory.mktemp("relay") / "relay.log")
        source, sink = new_pc(), new_pc()
        try:
            result = await run_chain(relay, source, sink, request.param)
        finally:
            await sink.close()
            await source.close()
            await relay.stop()
        yield result
    finally:
        undo_loopback()


def test_the_sink_decodes_moving_video_forwarded_by_the_relay(chain: Chain) -> None:
    seen = chain.video_in_window()
    assert len(seen) >= WINDOW_VIDEO
    assert len({s.signature for s in seen}) > len(seen) // 2, "the picture does not move"
    counters = [s.stamp.counter for s in seen if s.stamp is not None]
    assert len(counters) == len(seen), "a frame lost its stamp on the way"
    assert all(b > a for a, b in itertools.pairwise(counters))
    assert counters[-1] - counters[0] < len(counters) + 5, "frames were skipped"


def test_the_relay_forwards_packets_and_never_decodes(chain: Chain) -> None:
    relay = chain.relay
    assert relay["passthrough_installed"]
    video, audio = relay["tracks"]["video"], relay["tracks"]["audio"]
    assert video["codec"] == chain.codec == chain.sink_codec, "both legs use one codec"
    assert audio["codec"] == "audio/opus"
    assert video["decoded"] == 0 and audio["decoded"] == 0, "the relay decoded media"
    assert video["forwarded"] > 50 and audio["forwarded"] > 100
    assert video["max_buffered"] < 10, "the relay buffered a backlog"


def test_a_keyframe_request_from_the_sink_reaches_the_source(chain: Chain) -> None:
    after = chain.relay_after_pli
    assert after["downstream_plis"]["video"] > chain.relay["downstream_plis"]["video"]
    assert after["plis_sent_upstream"] > chain.relay["plis_sent_upstream"]
    assert any(at > chain.pli_at for at in chain.source_keyframe_requests)
    keyframes = after["tracks"]["video"]["keyframes"]
    assert keyframes > chain.relay["tracks"]["video"]["keyframes"], "no keyframe followed"


def test_opus_audio_passes_through(chain: Chain) -> None:
    frames = chain.audio_in_window()
    assert len(frames) >= WINDOW_AUDIO
    samples = array.array("h", b"".join(f.tobytes() for f in frames))
    assert frequency(samples, 48000) == pytest.approx(TONE_HZ, rel=0.05)


def frequency(samples: array.array[int], rate: int) -> float:
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / rate)


# --- ForwardedTrack and drain, without a network -------------------------------------------


class FakeSource(MediaStreamTrack):
    """A remote track that yields what the test puts in its queue; None ends it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[av.Packet[Stream] | None] = asyncio.Queue()

    async def recv(self) -> av.Packet[Stream]:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self.queue.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        return item

    def put(self, *items: av.Packet[Stream] | None) -> None:
        for item in items:
            self.queue.put_nowait(item)


def packet(n: int, key: bool = False) -> av.Packet[Stream]:
    p = av.Packet(bytes([n % 256]))
    p.pts, p.time_base, p.is_keyframe = n, fractions.Fraction(1, 90000), key
    return p


async def settle(source: FakeSource) -> None:
    assert await wait_until(source.queue.empty, 2)
    await asyncio.sleep(0)


async def test_video_buffer_stays_bounded_and_resumes_at_a_keyframe() -> None:
    source, asked = FakeSource("video"), []
    track = ForwardedTrack(source, request_keyframe=lambda: asked.append(1), max_packets=5)
    source.put(packet(0, key=True), *(packet(n) for n in range(1, 40)))
    await settle(source)  # nobody reads: the consumer stalls
    assert track.max_buffered == 5 and track.buffered == 0 and track.dropped == 40

    waiting = asyncio.ensure_future(track.recv())
    assert await wait_until(lambda: asked == [1], 2), "it should ask upstream for a keyframe"
    assert not waiting.done()
    source.put(packet(40), packet(41, key=True), packet(42))
    assert (await waiting).pts == 41
    assert (await track.recv()).pts == 42


async def test_video_starts_at_a_keyframe() -> None:
    source = FakeSource("video")
    track = ForwardedTrack(source)
    source.put(packet(0), packet(1), packet(2, key=True), packet(3))
    assert [(await track.recv()).pts for _ in range(2)] == [2, 3]


async def test_audio_buffer_drops_the_oldest() -> None:
    source = FakeSource("audio")
    track = ForwardedTrack(source, max_packets=5)
    source.put(*(packet(n) for n in range(20)))
    await settle(source)
    assert track.buffered == 5 and track.dropped == 15
    assert [(await track.recv()).pts for _ in range(5)] == [15, 16, 17, 18, 19]


async def test_forwarded_track_ends_with_its_source() -> None:
    source = FakeSource("audio")
    track = ForwardedTrack(source)
    source.put(packet(1), packet(2), None)
    assert [(await track.recv()).pts for _ in range(2)] == [1, 2]
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert track.readyState == "ended"


async def test_forwarded_track_ends_when_its_source_is_stopped() -> None:
    source = FakeSource("video")
    track = ForwardedTrack(source)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)  # one turn of the loop: the reader now waits for a packet
    source.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, 1)


async def test_a_stopped_forwarded_track_leaves_its_source_drained() -> None:
    source = FakeSource("video")
    track = ForwardedTrack(source)
    track.stop()
    source.put(*(packet(n, key=True) for n in range(100)))
    await settle(source)
    assert track.buffered == 0
    source.put(None)
    await asyncio.wait_for(drain(source), 1)


async def test_two_forwarded_tracks_of_one_source_each_get_every_packet() -> None:
    source = FakeSource("audio")
    first, second = ForwardedTrack(source), ForwardedTrack(source)
    source.put(packet(1), packet(2))
    assert [(await first.recv()).pts for _ in range(2)] == [1, 2]
    assert [(await second.recv()).pts for _ in range(2)] == [1, 2]


async def test_drain_reads_a_track_to_its_end() -> None:
    source = FakeSource("audio")
    task = drain(source)
    assert drain(source) is task
    source.put(*(packet(n) for n in range(200)), None)
    await asyncio.wait_for(task, 2)
    assert source.queue.empty() and source.readyState == "ended"


# --- sources -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected testpattern"),
        ("camera", "expected testpattern"),
        ("testpattern:640", "WIDTHxHEIGHT"),
        ("testpattern:320x240", "at least 512x64"),
        ("testpattern:641x480", "even"),
        ("testpattern:640x480@0", "fps must be 1..60"),
        ("testpattern:9999x480", "within 3840x2160"),
        ("file:", "expected file:PATH"),
        ("device:video0", "device:/dev/videoN"),
        ("device:/dev/video0:big", "WIDTHxHEIGHT"),
    ],
)
def test_a_bad_video_spec_says_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        video_source(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected tone"),
        ("beep", "expected tone"),
        ("tone:10", "HZ in 20..20000"),
        ("tone:la", "HZ in 20..20000"),
        ("silence:5", "expected tone"),
        ("file:", "expected file:PATH"),
        ("device:", "expected device:NAME"),
    ],
)
def test_a_bad_audio_spec_says_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audio_source(spec)


def test_good_specs_parse() -> None:
    assert parse_video_source("testpattern").width == 640
    assert parse_video_source("testpattern:1280x720@15").fps == 15
    assert parse_video_source("device:/dev/video2:1280x720").path == "/dev/video2"
    assert parse_audio_source("tone:1000").frequency == 1000
    assert parse_audio_source("device:hw:1,0").path == "hw:1,0"
    pulse = parse_audio_source("device:pulse:mic")
    assert (pulse.input_format, pulse.path) == ("pulse", "mic")
    assert parse_audio_source("device:pulse").input_format == "alsa"  # ALSA's "pulse" device


def test_missing_files_and_devices_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found"):
        video_source(f"file:{tmp_path}/nothing.webm")
    with pytest.raises(ValueError, match="device not found: /dev/video-none"):
        video_source("device:/dev/video-none")
    (tmp_path / "notes.txt").write_text("not media")
    with pytest.raises(ValueError, match="is not a media file"):
        audio_source(f"file:{tmp_path}/notes.txt")
    write_wav(tmp_path / "tone.wav", seconds=0.2)
    with pytest.raises(ValueError, match="has no video stream"):
        video_source(f"file:{tmp_path}/tone.wav")


async def test_test_pattern_frames_carry_a_readable_stamp() -> None:
    track = video_source("testpattern")
    frames = [await track.recv() for _ in range(4)]
    track.stop()
    assert all(isinstance(f, av.VideoFrame) for f in frames)
    video = [f for f in frames if isinstance(f, av.VideoFrame)]
    assert (video[0].width, video[0].height) == (640, 480)
    assert [f.pts for f in video] == [0, 3000, 6000, 9000]
    stamps = [read_stamp(f) for f in video]
    assert [s.counter for s in stamps if s] == [0, 1, 2, 3]
    assert all(s is not None and s.age_ms() < 1000 for s in stamps)
    assert len({signature(f) for f in video}) == 4, "the pattern moves"


async def test_tone_and_silence() -> None:
    tone, silence = audio_source("tone:1000"), audio_source("silence")
    tone_frames = [await tone.recv() for _ in range(5)]
    quiet = await silence.recv()
    tone.stop()
    silence.stop()
    samples = array.array("h")
    for frame in tone_frames:
        assert isinstance(frame, av.AudioFrame) and frame.sample_rate == 48000
        samples.extend(left_channel(frame))
    assert frequency(samples, 48000) == pytest.approx(1000, rel=0.02)
    assert isinstance(quiet, av.AudioFrame) and not any(left_channel(quiet))


def write_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(bytes(int(48000 * seconds) * 2))


def write_webm(path: Path, frames: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for n in range(frames):
            frame = av.VideoFrame(160, 120, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([n * 20 % 256]) * plane.buffer_size)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


async def test_file_sources_play_and_loop(tmp_path: Path) -> None:
    write_webm(tmp_path / "clip.webm", frames=6)
    write_wav(tmp_path / "clip.wav", seconds=0.1)
    video, audio = (
        video_source(f"file:{tmp_path}/clip.webm"),
        audio_source(f"file:{tmp_path}/clip.wav"),
    )
    try:
        video_frames = [await asyncio.wait_for(video.recv(), 2) for _ in range(10)]
        audio_frames = [await asyncio.wait_for(audio.recv(), 2) for _ in range(8)]
    finally:
        video.stop()
        audio.stop()
    assert all(isinstance(f, av.VideoFrame) and f.width == 160 for f in video_frames)
    assert all(isinstance(f, av.AudioFrame) for f in audio_frames)
