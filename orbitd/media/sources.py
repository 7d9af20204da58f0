"""Headless media sources: a daemon with no browser camera can still send a call.

`video_source(spec)` and `audio_source(spec)` turn a spec (see `orbitd.media`) into
an aiortc track: a test pattern, a tone or silence, a file, or a capture device.
A bad spec, a missing file or a device that cannot be opened raises `ValueError`
with a message meant for the user.

The test pattern: vertical colour bars that scroll 4 pixels to the left per frame,
under a *stamp* that a receiver can read back from the decoded pixels to measure
frame rate, loss and latency (`read_stamp`). The stamp, in the luma (Y) plane:

- three rows of 32 square cells, 16x16 pixels each (aligned to the codecs'
  16x16 macroblocks so they stay crisp), from the top-left corner (x 0..511, y 0..47);
- a cell is white (Y = 235) for a 1 and black (Y = 16) for a 0; chroma is neutral;
- row 0: the frame counter (0, 1, 2, ...), a 32-bit unsigned integer, most
  significant bit in the leftmost cell;
- row 1: the capture time, milliseconds since the Unix epoch modulo 2**32, the same way;
- row 2: the bitwise NOT of row 0, a check (no valid stamp is all black or all white).

To read it, take the mean luma of the central 8x8 pixels of each cell: above 128
is a 1. Reject the frame when a cell's mean lies between 64 and 192 or the check
row does not match. In a browser, draw the video to a canvas and use
0.299 R + 0.587 G + 0.114 B as the luma.

Heavy module: it imports aiortc and av; import it only when a call starts.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

if TYPE_CHECKING:
    from av.stream import Stream

from . import AudioSpec, VideoSpec, parse_audio_source, parse_video_source

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
AUDIO_SAMPLES = 960  # 20 ms at 48 kHz: one Opus packet
TONE_AMPLITUDE = 0.3  # of full scale

CELL = 16
CELLS = 32
STAMP_ROWS = 3
STAMP_WIDTH, STAMP_HEIGHT = CELL * CELLS, CELL * STAMP_ROWS
WHITE, BLACK, NEUTRAL = 235, 16, 128
SCROLL = 4  # pixels per frame
MASK32 = 0xFFFFFFFF
# BT.601 colour bars (Y, U, V): white, yellow, cyan, green, magenta, red, blue, black.
BARS = (
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
)


# --- the stamp -----------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    counter: int
    time_ms: int
    """Capture time: milliseconds since the Unix epoch, modulo 2**32."""

    def age_ms(self, now: float | None = None) -> int:
        """Milliseconds from capture to `now` (a `time.time()` value; default: now)."""
        now_ms = int((time.time() if now is None else now) * 1000) & MASK32
        return (now_ms - self.time_ms) & MASK32


def _stamp_line(value: int) -> bytes:
    bits = ((value >> (CELLS - 1 - i)) & 1 for i in range(CELLS))
    return b"".join(bytes([WHITE if bit else BLACK]) * CELL for bit in bits)


def read_stamp(frame: av.VideoFrame) -> Stamp | None:
    """The stamp drawn into a test-pattern frame, or None if there is no valid one."""
    if frame.width < STAMP_WIDTH or frame.height < STAMP_HEIGHT:
        return None
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    stride, data = plane.line_size, bytes(plane)
    rows = []
    for row in range(STAMP_ROWS):
        value = 0
        for cell in range(CELLS):
            top, left = row * CELL + CELL // 4, cell * CELL + CELL // 4
            total = sum(
                sum(data[(top + dy) * stride + left : (top + dy) * stride + left + CELL // 2])
                for dy in range(CELL // 2)
            )
            mean = total / (CELL // 2) ** 2
            if 64 < mean < 192:
                return None
            value = value << 1 | (mean > 128)
        rows.append(value)
    counter, time_ms, check = rows
    if check != counter ^ MASK32:
        return None
    return Stamp(counter, time_ms)


# --- test pattern ------------------------------------------------------------------------


class _Pattern:
    """Builds yuv420p frames of scrolling bars under a stamp, from bytes (no numpy)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        probe = av.VideoFrame(width, height, "yuv420p")
        self.strides = [plane.line_size for plane in probe.planes]
        chroma_width = width // 2
        bar = -(-width // len(BARS))  # ceil: bar width in pixels
        luma = bytes(BARS[x // bar][0] for x in range(width))
        u = bytes(BARS[2 * x // bar][1] for x in range(chroma_width))
        v = bytes(BARS[2 * x // bar][2] for x in range(chroma_width))
        self.luma, self.u, self.v = luma * 2, u * 2, v * 2  # doubled: a slice scrolls
        self.chroma_width = chroma_width
        pad = bytes(self.strides[1] - chroma_width)
        self.chroma_top = (bytes([NEUTRAL]) * chroma_width + pad) * (STAMP_HEIGHT // 2)

    def frame(self, counter: int, time_ms: int) -> av.VideoFrame:
        width, height = self.width, self.height
        offset = (counter * SCROLL) % width
        luma_pad = bytes(self.strides[0] - width)
        stamp_rows = b"".join(
            (_stamp_line(value) + bytes([BLACK]) * (width - STAMP_WIDTH) + luma_pad) * CELL
            for value in (counter & MASK32, time_ms & MASK32, ~counter & MASK32)
        )
        luma = stamp_rows + (self.luma[offset : offset + width] + luma_pad) * (
            height - STAMP_HEIGHT
        )
        c_offset, c_pad = offset // 2, bytes(self.strides[1] - self.chroma_width)
        chroma_rows = height // 2 - STAMP_HEIGHT // 2
        u_row = self.u[c_offset : c_offset + self.chroma_width] + c_pad
        v_row = self.v[c_offset : c_offset + self.chroma_width] + c_pad
        u, v = self.chroma_top + u_row * chroma_rows, self.chroma_top + v_row * chroma_rows
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(frame.planes, (luma, u, v), strict=True):
            plane.update(data)
        return frame


class _Clock:
    """Paces a source at `rate` items per second from its first item."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.count = 0
        self._start: float | None = None

    async def tick(self) -> int:
        """Wait until the next item is due; its index."""
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            delay = self._start + self.count / self.rate - now
            if delay > 0:
                await asyncio.sleep(delay)
        index = self.count
        self.count += 1
        return index


class TestPatternTrack(MediaStreamTrack):
    """Scrolling colour bars with a readable stamp (see the module docstring)."""

    __test__ = False  # not a pytest test class
    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30) -> None:
        super().__init__()
        self.fps = fps
        self._pattern = _Pattern(width, height)
        self._clock = _Clock(fps)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._clock.tick()
        frame = self._pattern.frame(index, int(time.time() * 1000))
        frame.pts = round(index * 90000 / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        return frame


class ToneTrack(MediaStreamTrack):
    """A sine at `frequency` Hz (0: silence), 48 kHz mono, in 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency: int = 440) -> None:
        super().__init__()
        # One second holds a whole number of periods, so it loops without a click.
        amplitude = TONE_AMPLITUDE * 32767 if frequency else 0
        samples = array.array(
            "h",
            (
                round(amplitude * math.sin(2 * math.pi * frequency * i / AUDIO_RATE))
                for i in range(AUDIO_RATE)
            ),
        )
        self._second = samples.tobytes()
        self._clock = _Clock(AUDIO_RATE / AUDIO_SAMPLES)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._clock.tick()
        start = (index * AUDIO_SAMPLES) % AUDIO_RATE * 2  # bytes; 48000 % 960 == 0
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(self._second[start : start + AUDIO_SAMPLES * 2])
        frame.pts = index * AUDIO_SAMPLES
        frame.sample_rate = AUDIO_RATE
        frame.time_base = AUDIO_TIME_BASE
        return frame


# --- files and devices -----------------------------------------------------------------


class _PlayerTrack(MediaStreamTrack):
    """One track of a `MediaPlayer` whose other track is not wanted.

    A player decodes every stream it has and queues the frames of both its tracks:
    the unwanted one is read and dropped while this one plays, and stopped with it.
    """

    def __init__(self, track: MediaStreamTrack, unwanted: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = track.kind
        self._track, self._unwanted = track, unwanted
        self._discard: asyncio.Task[None] | None = None

    async def recv(self) -> Frame | av.Packet[Stream]:
        if self._discard is None:
            self._discard = asyncio.ensure_future(self._drop_all(self._unwanted))
        return await self._track.recv()

    @staticmethod
    async def _drop_all(track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    def stop(self) -> None:
        if self._discard is not None:
            self._discard.cancel()
        self._unwanted.stop()
        self._track.stop()
        super().stop()


def _player_track(player: MediaPlayer, kind: str) -> MediaStreamTrack:
    track, other = (player.video, player.audio) if kind == "video" else (player.audio, player.video)
    assert track is not None
    return track if other is None else _PlayerTrack(track, other)


def _open_file(path_text: str, kind: str) -> MediaStreamTrack:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ValueError(f"{kind} source file not found: {path}")
    try:
        with av.open(str(path)) as container:
            has_kind = any(stream.type == kind for stream in container.streams)
            seekable = container.duration is not None
    except av.FFmpegError as exc:
        raise ValueError(f"{kind} source {path} is not a media file: {exc}") from exc
    if not has_kind:
        raise ValueError(f"{kind} source {path} has no {kind} stream")
    return _player_track(MediaPlayer(str(path), loop=seekable), kind)


def _open_device(name: str, input_format: str, kind: str, options: dict[str, str]) -> MediaPlayer:
    if not any(input_format in names.split(",") for names in av.formats_available):
        raise ValueError(f"{kind} source: this PyAV build has no {input_format!r} input")
    try:
        return MediaPlayer(name, format=input_format, options=options)
    except av.FFmpegError as exc:
        raise ValueError(f"{kind} source: cannot open {input_format} device {name}: {exc}") from exc


def video_source(spec: str | VideoSpec) -> MediaStreamTrack:
    """A video track for `spec` (``testpattern``, ``file:PATH``, ``device:/dev/videoN``)."""
    parsed = parse_video_source(spec) if isinstance(spec, str) else spec
    if parsed.kind == "testpattern":
        return TestPatternTrack(parsed.width, parsed.height, parsed.fps)
    if parsed.kind == "file":
        return _open_file(parsed.path, "video")
    if not Path(parsed.path).exists():
        raise ValueError(f"video source device not found: {parsed.path}")
    options = {"video_size": f"{parsed.width}x{parsed.height}", "framerate": str(parsed.fps)}
    return _player_track(_open_device(parsed.path, "v4l2", "video", options), "video")


def audio_source(spec: str | AudioSpec) -> MediaStreamTrack:
    """An audio track for `spec` (``tone``, ``silence``, ``file:PATH``, ``device:NAME``)."""
    parsed = parse_audio_source(spec) if isinstance(spec, str) else spec
    if parsed.kind == "tone":
        return ToneTrack(parsed.frequency)
    if parsed.kind == "silence":
        return ToneTrack(0)
    if parsed.kind == "file":
        return _open_file(parsed.path, "audio")
    return _player_track(_open_device(parsed.path, parsed.input_format, "audio", {}), "audio")


__all__ = [
    "Stamp",
    "TestPatternTrack",
    "ToneTrack",
    "audio_source",
    "read_stamp",
    "video_source",
]
