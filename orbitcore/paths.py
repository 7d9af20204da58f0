"""Where the programs keep their files by default: the XDG base directories.

`$XDG_DATA_HOME`, `$XDG_CONFIG_HOME` and `$XDG_STATE_HOME` when set to an absolute
path (the spec says a relative one is ignored), else `~/.local/share`, `~/.config`
and `~/.local/state`. The daemon keeps its files under `chatorbit/<profile>` of
these, the rendezvous under `chatorbit-rendezvous`; the daemon's control socket is in
`$XDG_RUNTIME_DIR/chatorbit/<profile>` when there is a runtime directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

APP = "chatorbit"
RENDEZVOUS_APP = "chatorbit-rendezvous"

Kind = Literal["data", "config", "state"]

_HOMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "data": ("XDG_DATA_HOME", (".local", "share")),
    "config": ("XDG_CONFIG_HOME", (".config",)),
    "state": ("XDG_STATE_HOME", (".local", "state")),
}


def xdg_home(kind: Kind, environ: Mapping[str, str] | None = None) -> Path:
    """The base directory of `kind`, from `environ` (default: the process environment)."""
    var, fallback = _HOMES[kind]
    value = (os.environ if environ is None else environ).get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home().joinpath(*fallback)


def daemon_dir(kind: Kind, profile: str, environ: Mapping[str, str] | None = None) -> Path:
    """The daemon's directory of `kind` for a profile: `<xdg home>/chatorbit/<profile>`."""
    return xdg_home(kind, environ) / APP / profile


def rendezvous_dir(kind: Kind, environ: Mapping[str, str] | None = None) -> Path:
    """The rendezvous' directory of `kind`: `<xdg home>/chatorbit-rendezvous`."""
    return xdg_home(kind, environ) / RENDEZVOUS_APP


def runtime_dir(profile: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """`$XDG_RUNTIME_DIR/chatorbit/<profile>` (the daemon's control socket), or None when
    `$XDG_RUNTIME_DIR` is unset or relative (the spec's user-only, per-login directory)."""
    value = (os.environ if environ is None else environ).get("XDG_RUNTIME_DIR", "")
    if value and os.path.isabs(value):
        return Path(value) / APP / profile
    return None
