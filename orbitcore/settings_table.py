"""Settings as one table in code: a frozen dataclass whose fields carry their help.

Shared by the rendezvous and the daemon. A setting comes from (lowest to
highest priority) its default, a TOML file, the environment (`PREFIX` + the
name in capitals) and command-line flags; `markdown` renders the table the
README shows (and the tests compare against).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import field
from typing import Any, TypeVar

C = TypeVar("C")


def setting(default: Any, help: str) -> Any:
    """A dataclass field with its help text; lists get a fresh copy each time."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


class SettingsError(ValueError):
    """A setting could not be understood; the message says which and why."""


def rows(cls: type[Any]) -> list[tuple[str, Any, str]]:
    """(name, default, help) for every setting, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append((f.name, default, f.metadata["help"]))
    return out


def markdown(cls: type[Any], prefix: str) -> str:
    lines = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for name, default, help in rows(cls):
        if isinstance(default, list):
            shown = ",".join(default)
        elif isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = str(default)
        lines.append(f"| `{name}` | `{prefix}{name.upper()}` | `{shown}` | {help} |")
    return "\n".join(lines) + "\n"


def _coerce(name: str, kind: str, value: Any) -> Any:
    try:
        if kind.startswith("list"):
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise TypeError
        if kind == "bool":
            if isinstance(value, bool):
                return value
            words = {"1": True, "true": True, "yes": True, "on": True}
            words |= {"0": False, "false": False, "no": False, "off": False}
            if isinstance(value, str) and value.lower() in words:
                return words[value.lower()]
            raise TypeError
        if kind in ("int", "float"):
            if isinstance(value, bool):
                raise TypeError
            return int(value) if kind == "int" else float(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name!r}: cannot read {value!r} as {kind}") from None


def load(
    cls: type[C],
    prefix: str,
    *,
    toml_path: str | None = None,
    section: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> C:
    """Merge defaults < TOML file < environment < overrides (flags) into a `cls`."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    if toml_path:
        try:
            with open(toml_path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {toml_path}: {exc}") from None
        table = data.get(section, data) if section else data
        for key, value in table.items():
            if key not in kinds:
                raise SettingsError(f"config file {toml_path}: unknown setting {key!r}")
            values[key] = _coerce(key, kinds[key], value)
    env = os.environ if environ is None else environ
    for name, kind in kinds.items():
        raw = env.get(prefix + name.upper())
        if raw is not None:
            values[name] = _coerce(name, kind, raw)
    for name, value in (overrides or {}).items():
        if name not in kinds:
            raise SettingsError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce(name, kinds[name], value)
    return cls(**values)


def add_flags(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """One `--some-setting` flag per setting (booleans get `--no-...` too)."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f.metadata["help"],
            )
        else:
            metavar = "LIST" if kind.startswith("list") else kind.upper()
            parser.add_argument(
                flag, dest=f.name, default=None, metavar=metavar, help=f.metadata["help"]
            )


def flag_values(args: argparse.Namespace, cls: type[Any]) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
