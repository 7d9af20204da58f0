"""The frame machinery every channel shares: typed value objects, one strict reader,
one refusal path.

A frame is a frozen dataclass with a `TYPE`; its fields are its JSON members (beside
`type`). `Channel.parse` turns wire text into a frame or raises `ProtocolError`, which
names the frame it answers; `Frame.encode` is the only way a frame becomes text.
Unknown members are ignored (a newer minor version may add some); a missing or mistyped
member, an unknown type, a string that is not valid Unicode, nesting deeper than
`MAX_DEPTH` or text longer than the channel's cap is refused.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import (
    Annotated,
    Any,
    ClassVar,
    Literal,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

MAX_DEPTH = 16
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]")
_STEP = str.maketrans({"[": "+", "{": "+", "]": "-", "}": "-"})


class ProtocolError(Exception):
    """A frame we refuse, and why: `code` is `protocol_error` unless a caller says otherwise;
    `frame_type` is the type of the frame it answers, when that much could be read;
    `member` the (top-level) member that is missing or wrong, if it is one."""

    def __init__(
        self,
        message: str,
        *,
        frame_type: str | None = None,
        code: str = "protocol_error",
        member: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.frame_type = frame_type
        self.code = code
        self.member = member


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text, without parsing it (no recursion)."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub('""', text)).translate(_STEP)
    steps = (1 if c == "+" else -1 for c in brackets)
    return max(itertools.accumulate(steps, initial=0))


def read_json(raw: str | bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The one bounded JSON reader: size first, depth next, then `json.loads`."""
    if len(raw) > max_bytes:
        raise ProtocolError(f"The frame is larger than {max_bytes} bytes.", code="frame_too_large")
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise ProtocolError("The frame is not UTF-8 text.") from None
    if nesting_depth(text) > max_depth:
        raise ProtocolError(f"The frame nests deeper than {max_depth} levels.")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("The frame is not JSON.") from None


@dataclasses.dataclass(frozen=True)
class Text:
    """Limits of a string member, as `Annotated[str, Text(64)]` (mypy sees a plain `str`):
    a length cap and, optionally, a pattern the whole string must match."""

    max_length: int
    pattern: str | None = None

    def check(self, value: str) -> str | None:
        """What is wrong with `value`, or None."""
        if len(value) > self.max_length:
            return f"at most {self.max_length} characters"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return "well-formed"
        return None


def text(max_length: int, *, pattern: str | None = None, default: Any = dataclasses.MISSING) -> Any:
    """An optional string member with limits and a default (a required one is
    `Annotated[str, Text(...)]`: mypy takes any `field()` call for a default)."""
    metadata = {"text": Text(max_length, pattern)}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


F = TypeVar("F", bound="Frame")


@dataclasses.dataclass(frozen=True)
class Frame:
    """Base of every frame. Subclasses set `TYPE` and declare their members as fields."""

    TYPE: ClassVar[str] = ""
    KEY: ClassVar[str] = "type"  # the member that names the frame (the sealed bodies: `kind`)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {self.KEY: self.TYPE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue  # an optional member left out
            body[f.name] = _plain(value)
        return body

    def encode(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls: type[F], body: dict[str, Any]) -> F:
        hints = type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in body or body[f.name] is None:
                if _has_default(f):
                    continue
                if _optional(hints[f.name]):
                    values[f.name] = None
                    continue
                raise ProtocolError(
                    f"`{cls.TYPE}` needs `{f.name}`.", frame_type=cls.TYPE, member=f.name
                )
            values[f.name] = _check(cls.TYPE, f.name, body[f.name], hints[f.name], f.metadata)
        return cls(**values)

    @classmethod
    def members(cls) -> list[tuple[str, str, bool]]:
        """(name, JSON type, required) of each member: what docs/protocol.md lists."""
        hints = type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            rows.append((f.name, json_type(hint), not (_has_default(f) or _optional(hint))))
        return rows


_HINTS: dict[type, dict[str, Any]] = {}


def type_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a frame class (or a dataclass inside one), once per class:
    resolving them parses the annotation strings again each time, which took most of the
    time of reading a frame (`bench scale`'s profile of the relay)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls, include_extras=True)
    return hints


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _plain(value: Any) -> Any:
    if isinstance(value, Frame):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _optional(hint: Any) -> bool:
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    return _is_union(hint) and type(None) in get_args(hint)


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (types.UnionType, typing.Union)


def json_type(hint: Any) -> str:
    """How docs/protocol.md spells a member's type."""
    if get_origin(hint) is Annotated:
        return json_type(get_args(hint)[0])
    if _is_union(hint):
        return " | ".join(json_type(a) for a in get_args(hint) if a is not type(None))
    origin = get_origin(hint)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in get_args(hint))
    if origin in (list, tuple):
        return f"array of {json_type(get_args(hint)[0])}"
    if origin is dict or hint is dict:
        return "object"
    if dataclasses.is_dataclass(hint):
        return "object"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(hint, "any")


def _check(frame_type: str, name: str, value: Any, hint: Any, meta: Any) -> Any:
    def refuse(what: str) -> ProtocolError:
        return ProtocolError(
            f"`{frame_type}.{name}` must be {what}.",
            frame_type=frame_type,
            member=name.split(".", 1)[0],
        )

    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        limits = next((e for e in extras if isinstance(e, Text)), None)
        return _check(frame_type, name, value, base, {"text": limits} if limits else meta)

    if _is_union(hint):
        options = [a for a in get_args(hint) if a is not type(None)]
        if len(options) == 1:  # `X | None`: X's own reason
            return _check(frame_type, name, value, options[0], meta)
        for option in options:
            try:
                return _check(frame_type, name, value, option, meta)
            except ProtocolError:
                pass
        raise refuse(json_type(hint))
    origin = get_origin(hint)
    if origin is Literal:
        if value in get_args(hint) and type(value) in {type(a) for a in get_args(hint)}:
            return value
        raise refuse(json_type(hint))
    if hint is str:
        if not isinstance(value, str):
            raise refuse("a string")
        _valid_unicode(value, refuse)
        limits = meta.get("text") if meta else None
        wrong = limits.check(value) if limits is not None else None
        if wrong is not None:
            raise refuse(wrong)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise refuse("true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise refuse("an integer")
        if abs(value) > 2**53:
            raise refuse("a safe integer")
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise refuse("a number")
        return float(value)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise refuse("an array")
        (item,) = get_args(hint)[:1]
        checked = [_check(frame_type, name, v, item, None) for v in value]
        return tuple(checked) if origin is tuple else checked
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise refuse("an object")
        for key, inner in _walk(value):
            _valid_unicode(key, refuse)
            if isinstance(inner, str):
                _valid_unicode(inner, refuse)
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise refuse("an object")
        inner_hints = type_hints(hint)
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(hint):
            if f.name not in value or value[f.name] is None:
                if _optional(inner_hints[f.name]):
                    fields[f.name] = None
                    continue
                if _has_default(f):
                    continue
                raise refuse(f"an object with `{f.name}`")
            fields[f.name] = _check(
                frame_type, f"{name}.{f.name}", value[f.name], inner_hints[f.name], f.metadata
            )
        return hint(**fields)
    if hint is Any:
        for _key, inner in _walk({"": value}):
            if isinstance(inner, str):
                _valid_unicode(inner, refuse)
        return value
    raise TypeError(f"no check for {hint!r}")  # a frame declared with an unsupported type


def _walk(value: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                yield key, inner
                stack.append(inner)
        elif isinstance(item, list):
            for inner in item:
                yield "", inner
                stack.append(inner)


def _valid_unicode(value: str, refuse: Callable[[str], ProtocolError]) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse("valid Unicode text") from None


class Channel:
    """The frames one boundary carries, by type, and the reader for them."""

    def __init__(self, name: str, summary: str, *, max_bytes: int, key: str = "type") -> None:
        self.name = name
        self.summary = summary
        self.max_bytes = max_bytes
        self.key = key  # the member that names a frame on this channel
        self.frames: dict[str, type[Frame]] = {}

    def register(self, cls: type[F]) -> type[F]:
        if not cls.TYPE or cls.TYPE in self.frames:
            raise ValueError(f"{self.name}: frame type {cls.TYPE!r} missing or registered twice")
        if self.key != cls.KEY:
            raise ValueError(f"{self.name}: frames are named by `{self.key}`, not `{cls.KEY}`")
        self.frames[cls.TYPE] = cls
        return cls

    def logged_type(self, exc: ProtocolError) -> str | None:
        """What a log may say of the refused frame's type: a type of this channel, never
        text the sender made up (a log line holds nothing a peer wrote)."""
        return exc.frame_type if exc.frame_type in self.frames else None

    def parse(self, raw: str | bytes | dict[str, Any]) -> Frame:
        body = raw if isinstance(raw, dict) else read_json(raw, max_bytes=self.max_bytes)
        if not isinstance(body, dict):
            raise ProtocolError("A frame is a JSON object.")
        kind = body.get(self.key)
        if not isinstance(kind, str):
            raise ProtocolError(f"A frame needs a string `{self.key}`.")
        cls = self.frames.get(kind)
        if cls is None:
            shown = kind[:40] if _printable(kind) else None
            raise ProtocolError(f"Unknown frame type on {self.name}: {shown!r}.", frame_type=shown)
        return cls.from_dict(body)

    def parse_as(self, cls: type[F], raw: str | bytes | dict[str, Any]) -> F:
        """A body whose frame the endpoint names (an HTTP body): read as `cls` whether or
        not it says its type; one that names another type is refused."""
        if self.frames.get(cls.TYPE) is not cls:
            raise ValueError(f"{cls.__name__} is not a frame of {self.name}")
        body = raw if isinstance(raw, dict) else read_json(raw, max_bytes=self.max_bytes)
        if not isinstance(body, dict):
            raise ProtocolError("A frame is a JSON object.", frame_type=cls.TYPE)
        if body.get(self.key, cls.TYPE) != cls.TYPE:
            raise ProtocolError(f"Expected `{cls.TYPE}` here.", frame_type=cls.TYPE)
        return cls.from_dict(body)


def _printable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def handler_name(frame_type: str) -> str:
    """`call-invite` is handled by `handle_call_invite`."""
    return "handle_" + frame_type.replace("-", "_")


def dispatch(handler: object, frame: Frame, *args: Any) -> Any:
    """Call `handler.handle_<type>(frame, *args)`; a frame it has no handler for is refused."""
    method = getattr(handler, handler_name(frame.TYPE), None)
    if method is None:
        raise ProtocolError(f"`{frame.TYPE}` is not expected here.", frame_type=frame.TYPE)
    return method(frame, *args)
