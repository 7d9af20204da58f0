"""Media for calls: encoded passthrough between peer connections, and headless sources.

Which modules are heavy (import aiortc and PyAV at their top):

- ``orbitd.media`` (this file) is light: it only parses and checks source specs,
  so settings validation can use it when the daemon starts.
- ``orbitd.media.passthrough`` and ``orbitd.media.sources`` import aiortc and av.
  Import them only when a call starts (the daemon must stay light until then).

Source specs (the values of the ``--video-source`` / ``--audio-source`` settings):

video:
    ``testpattern[:WIDTHxHEIGHT[@FPS]]``  moving bars with a machine-readable stamp
                                        (default 640x480@30; see sources.py)
    ``file:PATH``                        a media file (looped when it is seekable)
    ``device:/dev/videoN[:WIDTHxHEIGHT[@FPS]]``  a V4L2 camera (default 640x480@30)
audio:
    ``tone[:HZ]``        a sine (default 440 Hz)
    ``silence``
    ``file:PATH``        a media file (looped when it is seekable)
    ``device:NAME``      an ALSA capture device, e.g. ``device:default``, ``device:hw:1,0``
    ``device:alsa:NAME`` the same, explicitly; ``device:pulse:NAME`` a PulseAudio source
                         (only if this PyAV build has the pulse input)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

VideoKind = Literal["testpattern", "file", "device"]
AudioKind = Literal["tone", "silence", "file", "device"]

DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 640, 480, 30
DEFAULT_TONE_HZ = 440
MIN_PATTERN_WIDTH, MIN_PATTERN_HEIGHT = 512, 64  # room for the stamp (32 cells of 16 px)
MAX_WIDTH, MAX_HEIGHT, MAX_FPS = 3840, 2160, 60
_MODE = re.compile(r"(?P<w>\d{1,5})x(?P<h>\d{1,5})(?:@(?P<fps>\d{1,3}))?")


@dataclass(frozen=True)
class VideoSpec:
    kind: VideoKind
    path: str = ""
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    fps: int = DEFAULT_FPS


@dataclass(frozen=True)
class AudioSpec:
    kind: AudioKind
    path: str = ""
    """The file path, or the capture device name."""
    frequency: int = DEFAULT_TONE_HZ
    input_format: str = "alsa"
    """For ``device``: the FFmpeg input format, ``alsa`` or ``pulse``."""


def parse_video_source(spec: str) -> VideoSpec:
    """Parse a video source spec; `ValueError` with a readable message if it is wrong."""
    kind, _, rest = spec.strip().partition(":")
    if kind == "testpattern":
        width, height, fps = _mode(rest, spec) if rest else _default_mode()
        if width < MIN_PATTERN_WIDTH or height < MIN_PATTERN_HEIGHT:
            raise ValueError(
                f"video source {spec!r}: a test pattern needs at least "
                f"{MIN_PATTERN_WIDTH}x{MIN_PATTERN_HEIGHT} (its stamp is 512 pixels wide)"
            )
        return VideoSpec("testpattern", width=width, height=height, fps=fps)
    if kind == "file":
        return VideoSpec("file", path=_file_path(rest, spec))
    if kind == "device":
        path, _, mode = rest.partition(":")
        if not re.fullmatch(r"/dev/[\w./-]+", path):
            raise ValueError(
                f"video source {spec!r}: expected device:/dev/videoN[:WIDTHxHEIGHT[@FPS]]"
            )
        width, height, fps = _mode(mode, spec) if mode else _default_mode()
        return VideoSpec("device", path=path, width=width, height=height, fps=fps)
    raise ValueError(
        f"video source {spec!r}: expected testpattern[:WxH[@FPS]], file:PATH or device:/dev/videoN"
    )


def parse_audio_source(spec: str) -> AudioSpec:
    """Parse an audio source spec; `ValueError` with a readable message if it is wrong."""
    kind, _, rest = spec.strip().partition(":")
    if kind == "tone":
        if not rest:
            return AudioSpec("tone")
        if not rest.isdigit() or not 20 <= int(rest) <= 20000:
            raise ValueError(f"audio source {spec!r}: a tone is tone:HZ with HZ in 20..20000")
        return AudioSpec("tone", frequency=int(rest))
    if kind == "silence" and not rest:
        return AudioSpec("silence")
    if kind == "file":
        return AudioSpec("file", path=_file_path(rest, spec))
    if kind == "device":
        input_format, _, name = rest.partition(":")
        if input_format not in ("alsa", "pulse") or not name:
            input_format, name = "alsa", rest
        if not name:
            raise ValueError(f"audio source {spec!r}: expected device:NAME (an ALSA device)")
        return AudioSpec("device", path=name, input_format=input_format)
    raise ValueError(
        f"audio source {spec!r}: expected tone[:HZ], silence, file:PATH or device:NAME"
    )


def _file_path(rest: str, spec: str) -> str:
    if not rest:
        raise ValueError(f"source {spec!r}: expected file:PATH")
    return rest


def _default_mode() -> tuple[int, int, int]:
    return DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS


def _mode(text: str, spec: str) -> tuple[int, int, int]:
    match = _MODE.fullmatch(text)
    if match is None:
        raise ValueError(f"video source {spec!r}: the mode is WIDTHxHEIGHT or WIDTHxHEIGHT@FPS")
    width, height = int(match["w"]), int(match["h"])
    fps = int(match["fps"]) if match["fps"] else DEFAULT_FPS
    if not (0 < width <= MAX_WIDTH and 0 < height <= MAX_HEIGHT):
        raise ValueError(f"video source {spec!r}: size must be within {MAX_WIDTH}x{MAX_HEIGHT}")
    if width % 2 or height % 2:
        raise ValueError(f"video source {spec!r}: width and height must be even")
    if not 1 <= fps <= MAX_FPS:
        raise ValueError(f"video source {spec!r}: fps must be 1..{MAX_FPS}")
    return width, height, fps


__all__ = ["AudioSpec", "VideoSpec", "parse_audio_source", "parse_video_source"]
