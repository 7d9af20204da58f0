"""The control channel: `orbitd open` / `orbitd login-link` asking the running daemon
for a fresh one-time login link over its Unix socket (orbitd/control.py).

Only the same OS user can reach the socket (mode 0600 in a 0700 directory of theirs):
the link never goes through a log, a journal or a command line. One JSON frame per
line each way: the request, then the answer or an `error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .frames import Channel, Frame, Text

MAX_BYTES = 1024

CHANNEL = Channel(
    "control",
    "The daemon's control socket, `orbitd.sock` in `$XDG_RUNTIME_DIR/chatorbit/<profile>`"
    " (else in the profile's data directory), mode 0600: one JSON frame per line (at most"
    " 1024 bytes), a request from `orbitd open` or `orbitd login-link`, then the daemon's"
    " answer, then the daemon closes the connection. A request it cannot read is answered"
    " with `error`.",
    max_bytes=MAX_BYTES,
)


@CHANNEL.register
@dataclass(frozen=True)
class LoginLinkRequest(Frame):
    """Asks for a fresh one-time login link (valid 5 minutes, once)."""

    TYPE = "login-link-request"


@CHANNEL.register
@dataclass(frozen=True)
class LoginLink(Frame):
    """The answer: `url` is the login link on the UI's own host name
    (`http://<profile>.orbitd.localhost:<port>/login?secret=...`); `fallback_url` the same
    link on the address the daemon listens on, for a browser that does not resolve
    `.localhost` names."""

    TYPE = "login-link"
    url: Annotated[str, Text(300)]
    fallback_url: Annotated[str, Text(300)]


@CHANNEL.register
@dataclass(frozen=True)
class Error(Frame):
    """The request was refused: `code` (`protocol_error`) and a sentence in English."""

    TYPE = "error"
    code: Annotated[str, Text(64)]
    message: Annotated[str, Text(300)]
