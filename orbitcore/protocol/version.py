"""Which protocol a daemon speaks, and what two daemons agree on.

Announced inside the sealed handshake (`signal.Confirm`). Majors must match; the minor
only says which optional features may exist. A feature is used only when both sides
announce it. A `confirm` without `protocol` comes from a daemon older than versioning:
it speaks 1.0 with chat and calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROTOCOL_VERSION = "1.4"
FEATURES: tuple[str, ...] = (
    "chat",
    "calls",
    "reconnect",
    "resume",
    "keyed-signature",
    "bound-boxes",
    "files",
    "large-packets",
)
LEGACY_VERSION = "1.0"
LEGACY_FEATURES: tuple[str, ...] = ("chat", "calls")
VERSION_RE = r"[0-9]{1,4}\.[0-9]{1,4}"
FEATURE_RE = r"[a-z][a-z0-9-]{0,31}"
_VERSION = re.compile(VERSION_RE)


def major(version: str) -> int:
    if not _VERSION.fullmatch(version):
        raise ValueError(f"not a protocol version: {version!r}")
    return int(version.split(".", 1)[0])


@dataclass(frozen=True)
class Agreement:
    """Both sides can talk: these features are on."""

    peer_version: str
    peer_software: str | None
    features: frozenset[str]


@dataclass(frozen=True)
class Incompatible:
    """The majors differ: what to tell the user."""

    peer_version: str
    peer_software: str | None
    local_version: str

    def message(self) -> str:
        who = f"{self.peer_software}, " if self.peer_software else ""
        newer = major(self.peer_version) > major(self.local_version)
        advice = (
            "Update orbitd on this computer to talk to them."
            if newer
            else "Ask the other person to update orbitd."
        )
        return (
            f"The other person's ChatOrbit ({who}protocol {self.peer_version}) cannot talk to "
            f"this one (protocol {self.local_version}). {advice}"
        )


def negotiate(
    peer_version: str,
    peer_features: tuple[str, ...] | list[str],
    peer_software: str | None = None,
    *,
    local_version: str = PROTOCOL_VERSION,
    local_features: tuple[str, ...] = FEATURES,
) -> Agreement | Incompatible:
    if major(peer_version) != major(local_version):
        return Incompatible(peer_version, peer_software, local_version)
    return Agreement(peer_version, peer_software, frozenset(local_features) & set(peer_features))
