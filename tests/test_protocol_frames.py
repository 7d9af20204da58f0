"""The frame machinery every channel shares: the bounded reader, typed members, refusals,
and version negotiation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pytest

from orbitcore.protocol.frames import (
    Channel,
    Frame,
    ProtocolError,
    Text,
    dispatch,
    nesting_depth,
    read_json,
    text,
)
from orbitcore.protocol.version import Agreement, Incompatible, negotiate

CHANNEL = Channel("sample", "frames for these tests", max_bytes=65_536)


@CHANNEL.register
@dataclass(frozen=True)
class Note(Frame):
    """A sample frame."""

    TYPE = "note"
    note_id: Annotated[str, Text(8, pattern=r"[a-z]+")]
    count: int
    kind: Literal["audio", "video"] | None = None
    tags: list[str] | None = None
    extra: dict[str, Any] | None = None
    label: str | None = text(4, default=None)


class Handler:
    def __init__(self) -> None:
        self.seen: list[Frame] = []

    def handle_note(self, frame: Note) -> str:
        self.seen.append(frame)
        return "handled"


def test_a_frame_round_trips_and_leaves_out_empty_members() -> None:
    note = Note("abc", 3, "video", ["x"])
    assert note.encode() == '{"type":"note","note_id":"abc","count":3,"kind":"video","tags":["x"]}'
    assert CHANNEL.parse(note.encode()) == note


def test_unknown_members_are_ignored_for_newer_minor_versions() -> None:
    assert CHANNEL.parse('{"type":"note","note_id":"a","count":1,"later":true}') == Note("a", 1)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("[" * 20_000, "nests deeper"),
        (
            '{"type":"note","note_id":"a","count":1,"extra":' + '{"a":' * 20 + "1}" + "}" * 20,
            "deeper",
        ),
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": 7}', "string `type`"),
        ('{"type":"nope"}', "Unknown frame type"),
        ('{"type":"note","count":1}', "needs `note_id`"),
        ('{"type":"note","note_id":"\\ud800","count":1}', "valid Unicode"),
        ('{"type":"note","note_id":"a","count":1,"extra":{"k":"\\udfff"}}', "valid Unicode"),
        ('{"type":"note","note_id":"toolongname","count":1}', "at most 8"),
        ('{"type":"note","note_id":"ABC","count":1}', "well-formed"),
        ('{"type":"note","note_id":"a","count":1,"label":"label"}', "at most 4"),
        ('{"type":"note","note_id":"a","count":true}', "an integer"),
        ('{"type":"note","note_id":"a","count":1e400}', "an integer"),
        ('{"type":"note","note_id":"a","count":' + "9" * 30 + "}", "safe integer"),
        ('{"type":"note","note_id":"a","count":1,"kind":"radio"}', '"audio" | "video"'),
        ('{"type":"note","note_id":"a","count":1,"tags":[1]}', "a string"),
        ('{"type":"note","note_id":"' + "a" * 70_000 + '","count":1}', "larger than"),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(raw: str, says: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        CHANNEL.parse(raw)
    assert says in refused.value.message


def test_a_refusal_names_the_frame_it_answers() -> None:
    with pytest.raises(ProtocolError) as refused:
        CHANNEL.parse('{"type":"note","note_id":5,"count":1}')
    assert refused.value.frame_type == "note"
    assert refused.value.code == "protocol_error"


def test_depth_ignores_brackets_inside_strings() -> None:
    assert nesting_depth('{"a":"[[[[{{{{","b":[[1]]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    assert read_json('{"a":"[[[["}', max_bytes=100, max_depth=1) == {"a": "[[[["}


def test_dispatch_calls_one_handler_per_type_and_refuses_the_rest() -> None:
    handler = Handler()
    assert dispatch(handler, Note("a", 1)) == "handled"
    assert handler.seen == [Note("a", 1)]

    @dataclass(frozen=True)
    class Other(Frame):
        TYPE = "other"

    with pytest.raises(ProtocolError):
        dispatch(handler, Other())


def test_members_describe_the_frame_for_the_docs() -> None:
    assert Note.members() == [
        ("note_id", "string", True),
        ("count", "integer", True),
        ("kind", '"audio" | "video"', False),
        ("tags", "array of string", False),
        ("extra", "object", False),
        ("label", "string", False),
    ]


def test_a_channel_refuses_a_type_registered_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        CHANNEL.register(Note)


def test_same_major_agrees_on_the_common_features() -> None:
    agreed = negotiate(
        "1.9",
        ["chat", "calls", "files"],
        "orbitd 9.0",
        local_version="1.1",
        local_features=("chat", "calls"),
    )
    assert agreed == Agreement("1.9", "orbitd 9.0", frozenset({"chat", "calls"}))


def test_another_major_is_incompatible_and_says_who_must_update() -> None:
    newer = negotiate("2.0", ["chat"], "orbitd 3.0", local_version="1.1")
    assert isinstance(newer, Incompatible)
    assert "protocol 2.0" in newer.message() and "protocol 1.1" in newer.message()
    assert "Update orbitd on this computer" in newer.message()
    older = negotiate("0.4", ["chat"], None, local_version="1.1")
    assert isinstance(older, Incompatible)
    assert "Ask the other person to update" in older.message()


def test_a_malformed_version_is_refused() -> None:
    with pytest.raises(ValueError):
        negotiate("one", [], None)


def test_a_log_names_only_types_the_channel_knows() -> None:
    for raw, logged in (
        ('{"type":"note","count":1}', "note"),
        ('{"type":"secret words of the peer"}', None),
    ):
        with pytest.raises(ProtocolError) as refused:
            CHANNEL.parse(raw)
        assert CHANNEL.logged_type(refused.value) == logged
