"""`orbitd` / `python -m orbitd`: serve the local UI (default) or print the settings table.

Start-up stays light (an idle daemon is under 40 MiB): a session loads aiortc,
PyAV, cryptography and spake2, LAN mode zeroconf, an invite's QR code segno, the
first page jinja2. `tests/test_orbitd_idle.py` keeps it so; `make bench` measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import webbrowser
from collections.abc import Mapping

from aiohttp import web

from orbitcore.jsonlog import setup_logging
from orbitcore.protocol.control import LoginLink
from orbitcore.settings_table import add_flags, flag_values

from . import event_loop
from .app import create_app
from .control import ControlError, ControlServer, request_login_link, socket_path
from .identity import IDENTITY_FILE, Identity, IdentityError, load_or_create_identity
from .security import LoginGate, ui_host_name
from .settings import Config, SettingsError, load_settings, settings_markdown

log = logging.getLogger("orbitd")
SHUTDOWN_TIMEOUT = 5.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orbitd",
        description="ChatOrbit daemon: your local chat UI, end-to-end encrypted to your peer.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "open", "join", "login-link", "settings"],
        help="serve (default); open (log a browser in to the running daemon); join INVITE "
        "(open the join page with the invite filled in, starting the daemon if it does not "
        "run); login-link (print a fresh one-time login link of the running daemon); "
        "settings (print the settings table)",
    )
    parser.add_argument(
        "invite", nargs="?", help="join: the invite (TOKEN-secret) or its link (...#TOKEN-secret)"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings (default: $XDG_CONFIG_HOME/chatorbit/<profile>/orbitd.toml "
        "if it exists)",
    )
    add_flags(parser, Config)
    return parser


def ui_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def stdout_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether stdout goes to the systemd journal (`$JOURNAL_STREAM` names its device
    and inode): a login link printed there would be kept in the journal."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        info = os.fstat(sys.stdout.fileno())
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        return False


def ready_line(config: Config, base: str, named: str, gate: LoginGate) -> str:
    """The one line a user (or a script) reads: the login link, never logged. On a
    terminal it is on the UI's own name (its cookie reaches no other local server), the
    loopback form after it; for a script (a pipe) the loopback link is the last word;
    under systemd (stdout is the journal) there is no link, only how to get one."""
    ready = f"orbitd {config.profile} ready:"
    if stdout_is_journal():
        return f"{ready} {base} (run `orbitd open` to log in)"
    if sys.stdout.isatty():
        return (
            f"{ready} {named}{gate.login_path()}\n"
            f"  (where {ui_host_name(config.profile)} does not resolve: {base}{gate.login_path()})"
        )
    return f"{ready} {base}{gate.login_path()}"


async def serve(
    config: Config, identity: Identity, gate: LoginGate, *, first_start: bool = False
) -> int:
    stop = asyncio.Event()  # handlers first: a script may signal as soon as it reads the line
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(config, identity, gate)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"orbitd: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    port = int(runner.addresses[0][1])  # the real port, also when port 0 was asked for
    base, named = ui_url(config.host, port), f"http://{ui_host_name(config.profile)}:{port}"
    control = ControlServer(
        socket_path(config),
        lambda: LoginLink(named + (path := gate.new_link()), base + path),
    )
    await control.start()
    log.info(
        "listening",
        extra={
            "fields": {
                "url": ui_url(config.host, port),
                "profile": config.profile,
                "fingerprint": identity.fingerprint,
            }
        },
    )
    print(ready_line(config, base, named, gate), flush=True)
    # A user's very first start, at a terminal: the UI opens where there is a browser
    # (a link of its own: the printed one stays good for another browser).
    at_terminal = sys.stdout.isatty() and not stdout_is_journal()
    if first_start and at_terminal and await asyncio.to_thread(open_link, named + gate.new_link()):
        print(f"orbitd: opened your UI in the browser ({named})", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await control.close()
        await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "settings":
        sys.stdout.write(settings_markdown())
        return 0
    overrides = flag_values(args, Config)
    try:
        config = load_settings(args.config, overrides=overrides)
    except SettingsError as exc:
        print(f"orbitd: {exc}", file=sys.stderr)
        return 2
    if args.command == "join":
        from .join import join

        return join(config, args.invite, daemon_args(argv, args.invite))
    if args.invite is not None:
        print(
            f"orbitd: {args.command} takes no invite (did you mean `orbitd join`?)", file=sys.stderr
        )
        return 2
    if args.command in ("open", "login-link"):
        return open_ui(config, browser=args.command == "open")
    setup_logging(config.log_level)
    if config.log_level.lower() != "debug":  # aioice narrates every candidate pair at info
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    data_dir = config.data_path()
    first_start = not (data_dir / IDENTITY_FILE).exists()
    try:
        identity = load_or_create_identity(data_dir)
        gate = LoginGate(profile=config.profile)
    except IdentityError as exc:
        print(f"orbitd: {exc}", file=sys.stderr)
        return 1
    log.info(
        "identity ready",
        extra={"fields": {"data_dir": str(data_dir), "fingerprint": identity.fingerprint}},
    )
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = event_loop.run(
            serve(config, identity, gate, first_start=first_start), config.event_loop
        )
    return code


def daemon_args(argv: list[str] | None, invite: str | None) -> list[str]:
    """The flags of `orbitd ... join INVITE`, for starting the daemon they describe."""
    rest = list(sys.argv[1:] if argv is None else argv)
    for word in (invite, "join"):  # the last ones: a flag's value may be the same word
        if word in rest:
            del rest[len(rest) - 1 - rest[::-1].index(word)]
    return rest


def open_link(url: str) -> bool:
    """Open `url` in the user's browser (`$BROWSER` too); False where there is none."""
    try:
        return webbrowser.get().open(url)
    except webbrowser.Error:
        return False


def open_ui(config: Config, *, browser: bool) -> int:
    """`orbitd open` / `orbitd login-link`: a fresh one-time link from the running daemon,
    opened in the browser (`open`, where there is one) or printed."""
    try:
        link = asyncio.run(request_login_link(socket_path(config), config.profile))
    except ControlError as exc:
        print(f"orbitd: {exc}", file=sys.stderr)
        return 1
    if browser:
        if open_link(link.url):
            print(f"orbitd: opened the login page of profile {config.profile} in your browser")
            return 0
        print("orbitd: no browser found here; open this link once, within 5 minutes:")
    print(link.url)
    print(f"(or, where {ui_host_name(config.profile)} does not resolve: {link.fallback_url})")
    return 0
