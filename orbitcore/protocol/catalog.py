"""Every channel, in the order docs/protocol.md lists them, and the frame sections of that
file as they must read (`python -m orbitcore.protocol.catalog [channel]` prints them).

tests/test_protocol_docs.py checks docs/protocol.md against `CHANNELS` both ways.
"""

from __future__ import annotations

import inspect
import sys

from . import control, files, lan, peer, relay, signal
from .frames import Channel, Frame

CHANNELS: tuple[Channel, ...] = (
    relay.CHANNEL,
    signal.CHANNEL,
    peer.CHANNEL,
    files.CHANNEL,
    lan.CHANNEL,
    control.CHANNEL,
)


def doc(frame: type[Frame]) -> str:
    """A frame's docstring as one paragraph (what docs/protocol.md shows under it)."""
    return " ".join((inspect.getdoc(frame) or "").split())


def escape(cell: str) -> str:
    """A table cell's text with its pipes escaped (`string | integer`)."""
    return cell.replace("|", "\\|")


def frame_section(frame: type[Frame]) -> str:
    lines = [f"### `{frame.TYPE}`", "", doc(frame), ""]
    members = frame.members()
    if not members:
        lines.append("No members.")
    else:
        lines += ["| member | type | required |", "|---|---|---|"]
        lines += [
            f"| `{name}` | {escape(kind)} | {'yes' if required else 'no'} |"
            for name, kind, required in members
        ]
    return "\n".join(lines) + "\n"


def markdown(channel: Channel) -> str:
    return "\n".join(frame_section(frame) for frame in channel.frames.values())


def main(argv: list[str]) -> int:
    for channel in CHANNELS:
        if not argv or channel.name in argv:
            print(f"## Channel: {channel.name}\n\n{channel.summary}\n\n{markdown(channel)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
