"""docs/protocol.md lists exactly the frames of `orbitcore.protocol`, and every frame
round-trips through its channel's reader."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import pytest

from orbitcore.protocol.catalog import CHANNELS, doc
from orbitcore.protocol.frames import Channel, Frame, ProtocolError, Text

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
CHANNEL_HEADING = re.compile(r"^## Channel: (\S+)\s*$")
FRAME_HEADING = re.compile(r"^### `([^`]+)`\s*$")
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*(yes|no)\s*\|\s*$")

Documented = dict[str, dict[str, list[tuple[str, str, bool]]]]


def documented() -> tuple[Documented, dict[tuple[str, str], str]]:
    """Channel -> frame type -> rows, and each frame's prose, as docs/protocol.md has them."""
    channels: Documented = {}
    prose: dict[tuple[str, str], str] = {}
    channel: str | None = None
    frame: str | None = None
    for line in DOCS.read_text().splitlines():
        if line.startswith("## "):
            found = CHANNEL_HEADING.match(line)
            channel, frame = (found.group(1), None) if found else (None, None)
            if channel is not None:
                assert channel not in channels, f"channel {channel} twice"
                channels[channel] = {}
            continue
        if channel is None:
            continue
        found = FRAME_HEADING.match(line)
        if found:
            frame = found.group(1)
            assert frame not in channels[channel], f"{channel}: {frame} twice"
            channels[channel][frame] = []
            prose[channel, frame] = ""
            continue
        if frame is None:
            continue
        row = ROW.match(line)
        if row:
            kind = row.group(2).strip().replace("\\|", "|")
            channels[channel][frame].append((row.group(1), kind, row.group(3) == "yes"))
        elif not line.startswith("|"):
            prose[channel, frame] += " " + line
    return channels, prose


def catalogued() -> Documented:
    return {
        channel.name: {kind: cls.members() for kind, cls in channel.frames.items()}
        for channel in CHANNELS
    }


def test_the_six_channels_are_catalogued() -> None:
    assert [c.name for c in CHANNELS] == ["relay", "signal", "peer", "files", "lan", "control"]


def test_docs_list_every_channel_and_frame_and_nothing_else() -> None:
    docs, _ = documented()
    code = catalogued()
    assert list(docs) == list(code), "channels in docs/protocol.md vs the catalog"
    for name in code:
        assert sorted(docs[name]) == sorted(code[name]), f"frames of channel {name}"
        for kind, members in code[name].items():
            assert docs[name][kind] == members, f"members of {name} `{kind}`"


def test_every_frame_is_explained_in_code_and_in_the_docs() -> None:
    _, prose = documented()
    for channel in CHANNELS:
        assert channel.summary.strip(), channel.name
        for kind, cls in channel.frames.items():
            assert doc(cls), f"{channel.name} `{kind}` has no docstring"
            text = " ".join(prose.get((channel.name, kind), "").split())
            assert doc(cls) in text, f"docs/protocol.md's text for {channel.name} `{kind}`"
            members = cls.members()
            no_members = "No members." in text
            assert no_members == (not members), f"{channel.name} `{kind}`: 'No members.'"


# -- round trips ------------------------------------------------------------------------


def sample(hint: Any, limits: Text | None = None) -> Any:
    """A valid value of a member's type."""
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        return sample(base, next((e for e in extras if isinstance(e, Text)), limits))
    if get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return sample(options[0], limits)
    if get_origin(hint) is Literal:
        return get_args(hint)[0]
    if get_origin(hint) in (list, tuple):
        item = sample(get_args(hint)[0])
        return (item,) if get_origin(hint) is tuple else [item]
    if hint is dict or get_origin(hint) is dict:
        return {"k": "v"}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint(**values(hint))
    if hint is str:
        if limits is None or limits.pattern is None:
            return "x"
        assert limits.pattern in SAMPLE_STRINGS, f"add an example of {limits.pattern!r}"
        return SAMPLE_STRINGS[limits.pattern]
    return {bool: True, int: 1, float: 1.5}.get(hint, "x")


# One valid string for each pattern a member declares.
SAMPLE_STRINGS: dict[str, str] = {
    r"[0-9]{1,4}\.[0-9]{1,4}": "1.1",
    r"[a-z][a-z0-9-]{0,31}": "chat",
    r"[a-z][a-z0-9_]{0,63}": "protocol_error",
    r"[0-9A-Za-z_-]{1,64}": "m-1",
    r"[0-9a-f]{32}": "0" * 32,
    r"[0-9a-f]{64}": "0" * 64,
    r"[0-9a-fA-F]{64}": "0" * 64,
    r"[0-9a-fA-F]{128}": "0" * 128,
    r"[A-Za-z0-9_-]{22,64}": "n" * 22,
    r"[A-Z0-9]{12}": "ABCDEFGHJKLM",
    r"f-[0-9A-Za-z_-]{8,38}": "f-abcdefgh",
}


def values(cls: type[Any]) -> dict[str, Any]:
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: sample(hints[f.name], f.metadata.get("text")) for f in dataclasses.fields(cls)}


def instance(cls: type[Frame]) -> Frame:
    return cls(**values(cls))


def all_frames() -> list[tuple[Channel, type[Frame]]]:
    return [(c, f) for c in CHANNELS for f in c.frames.values()]


@pytest.mark.parametrize(
    ("channel", "cls"), all_frames(), ids=[f"{c.name}:{f.TYPE}" for c, f in all_frames()]
)
def test_every_frame_round_trips_and_refuses_a_mistyped_required_member(
    channel: Channel, cls: type[Frame]
) -> None:
    frame = instance(cls)
    assert channel.parse(frame.encode()) == frame
    for name, _kind, required in cls.members():
        if not required:
            continue
        body = frame.to_dict()
        del body[name]
        with pytest.raises(ProtocolError):
            channel.parse(body)
        body[name] = [[["not", "this"]]]
        with pytest.raises(ProtocolError):
            channel.parse(body)
