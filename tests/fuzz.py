"""A seeded generator of hostile frames for the fuzz tests (tests/test_fuzz_*.py).

`Fuzz(seed)` makes text a hostile client or peer may put on a socket: frames of a
`Channel` with random member values (often plausible, often wrong, sometimes missing or
extra), random JSON, deep nesting, lone surrogates, truncated and non-JSON text. The
seed is `FUZZ_SEED` from the environment when set, so a failing run can be repeated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import types
import typing
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from orbitcore.protocol.frames import Channel, Frame, Text

SEED = int(os.environ.get("FUZZ_SEED", "11"))

# Values that pass some member checks (codes, ids, call ids, hex, kinds), so that a good
# share of the generated frames get past the reader into the handlers.
PLAUSIBLE: tuple[Any, ...] = (
    "a" * 32,
    "0" * 32,
    "f" * 64,
    "0" * 128,
    "ABCDEFGHJKLM",
    "m1",
    "x",
    "protocol_error",
    "invite_mismatch",
    "offer",
    "answer",
    "declined",
    "busy",
    "hung_up",
    "no_answer",
    "media_failed",
    "audio",
    "video",
    "v=0\r\n",
    "candidate:1 1 udp 1 127.0.0.1 9 typ host",
    "",
    0,
    1,
    -1,
    60,
    2**53,
    True,
    False,
    None,
    {},
    [],
    {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
    {"type": "message", "message_id": "m1"},
)
STRINGS: tuple[str, ...] = (
    "\ud800",
    "\udfff",
    "a\ud83d",
    "\x00",
    "\u202e",
    "😀" * 3,
    "\r\n",
    "'; DROP TABLE",
    "../../etc/passwd",
    "%s%n",
    "{}",
)


class Fuzz:
    def __init__(self, seed: int = SEED) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def string(self) -> str:
        rng = self.rng
        choice = rng.random()
        if choice < 0.3:
            return rng.choice(STRINGS)
        if choice < 0.5:
            return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
        if choice < 0.6:
            return rng.choice("0af-_Z") * rng.choice((1, 31, 32, 33, 63, 64, 65, 129, 1025))
        return "".join(rng.choice("abcdef0123456789_-") for _ in range(rng.randrange(0, 70)))

    def value(self, depth: int = 0) -> Any:
        """Any JSON value (and some that only Python's json writes: NaN, huge numbers)."""
        rng = self.rng
        kind = rng.randrange(10 if depth < 3 else 7)
        if kind == 0:
            return rng.choice(PLAUSIBLE)
        if kind == 1:
            return rng.choice((None, True, False))
        if kind == 2:
            return rng.choice((0, -1, 2**31, 2**53 + 1, -(2**63), 10**30, rng.randrange(-99, 99)))
        if kind == 3:
            return rng.choice((0.5, -0.0, 1e308, float("nan"), float("inf"), 3.0))
        if kind in (4, 5, 6):
            return self.string()
        if kind in (7, 8):
            return [self.value(depth + 1) for _ in range(rng.randrange(4))]
        return {self.string(): self.value(depth + 1) for _ in range(rng.randrange(4))}

    def matching(self, limits: Text | None) -> str:
        """A string within `limits` (a random one of a few shapes that fits)."""
        rng = self.rng
        shapes = [
            lambda: "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice((32, 64)))),
            lambda: "".join(rng.choice("0123456789abcdef") for _ in range(128)),
            lambda: rng.choice("abcxyz") + "".join(rng.choice("abz09_") for _ in range(9)),
            lambda: "".join(rng.choice("ABCDEFGHJKLM0123") for _ in range(12)),
            lambda: "".join(rng.choice("AZaz09_-") for _ in range(rng.randrange(1, 65))),
            self.string,
        ]
        for _ in range(50):
            candidate = rng.choice(shapes)()
            if limits is None or limits.check(candidate) is None:
                return candidate
        return "a"

    def valid(self, hint: Any, limits: Text | None = None, depth: int = 0) -> Any:
        """A random value the reader takes for `hint` (a frame class: its whole body)."""
        rng = self.rng
        if get_origin(hint) is Annotated:
            base, *extras = get_args(hint)
            found = next((e for e in extras if isinstance(e, Text)), limits)
            return self.valid(base, found, depth)
        if get_origin(hint) in (types.UnionType, typing.Union):
            options = [a for a in get_args(hint) if a is not type(None)]
            if len(options) < len(get_args(hint)) and rng.random() < 0.3:
                return None
            return self.valid(rng.choice(options), limits, depth)
        if get_origin(hint) is Literal:
            return rng.choice(get_args(hint))
        if hint is str:
            return self.matching(limits)
        if hint is bool:
            return rng.random() < 0.5
        if hint is int:
            return rng.choice((0, 1, 2, 3, -1, 2**31, 2**53, rng.randrange(-(2**53), 2**53)))
        if hint is float:
            return rng.choice((0.0, -1.5, 1e300, rng.random()))
        if get_origin(hint) in (list, tuple):
            item = get_args(hint)[0]
            return [self.valid(item, None, depth + 1) for _ in range(rng.randrange(3))]
        if get_origin(hint) is dict or hint is dict:
            return self.value(depth + 1) if rng.random() < 0.3 else {}
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            hints = get_type_hints(hint, include_extras=True)
            body: dict[str, Any] = {}
            if issubclass(hint, Frame):
                body[hint.KEY] = hint.TYPE
            for f in dataclasses.fields(hint):
                text_limits = f.metadata.get("text")
                body[f.name] = self.valid(hints[f.name], text_limits, depth + 1)
            return body
        return self.value(depth + 1)

    def member(self) -> Any:
        return self.rng.choice(PLAUSIBLE) if self.rng.random() < 0.5 else self.value()

    def body(self, cls: type[Frame]) -> dict[str, Any]:
        """A frame of `cls` with every member random, missing or plausible."""
        body: dict[str, Any] = {cls.KEY: cls.TYPE}
        for f in dataclasses.fields(cls):
            if self.rng.random() < 0.15:
                continue
            body[f.name] = self.member()
        if self.rng.random() < 0.1:
            body[self.string()] = self.value()
        return body

    def dumps(self, body: Any) -> str:
        """JSON text; the non-standard NaN/Infinity and lone surrogates (as escapes) too."""
        text = json.dumps(body, ensure_ascii=self.rng.random() < 0.9, allow_nan=True)
        try:
            text.encode()
        except UnicodeEncodeError:  # a lone surrogate travels as its escape
            return json.dumps(body, allow_nan=True)
        return text

    def text(self, channel: Channel, types: list[type[Frame]] | None = None) -> str:
        """One hostile text for `channel` (its frames, or only `types`)."""
        rng = self.rng
        classes = types or list(channel.frames.values())
        choice = rng.random()
        if choice < 0.6:
            return self.dumps(self.body(rng.choice(classes)))
        if choice < 0.7:
            return self.dumps(self.value())
        if choice < 0.75:
            depth = rng.choice((17, 100, 5000))
            inner = "[" * depth + "]" * depth
            return '{"' + channel.key + '": "' + rng.choice(classes).TYPE + '", "x": ' + inner + "}"
        if choice < 0.85:
            body = self.body(rng.choice(classes))
            body[channel.key] = rng.choice((self.string(), 5, None, [], body[channel.key].upper()))
            return self.dumps(body)
        if choice < 0.92:
            whole = self.dumps(self.body(rng.choice(classes)))
            return whole[: rng.randrange(len(whole))]
        return self.string().encode("utf-8", "replace").decode()

    def huge(self, size: int) -> str:
        """A frame of about `size` bytes (a string member that long)."""
        return json.dumps({"type": "sealed", "box": "A" * size})
