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
import signal
import sys

from aiohttp import web

from orbitcore.jsonlog import setup_logging
from orbitcore.settings_table import add_flags, flag_values

from .app import create_app
from .identity import Identity, IdentityError, load_or_create_identity, load_or_create_ui_secret
from .security import LoginGate
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
        choices=["serve", "settings"],
        help="serve (default), settings (print the settings table)",
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


async def serve(config: Config, identity: Identity, gate: LoginGate) -> int:
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
    # The one line a user (or a script) reads: the login link. Never logged.
    print(
        f"orbitd {config.profile} ready: {ui_url(config.host, port)}{gate.login_path()}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
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
    setup_logging(config.log_level)
    if config.log_level.lower() != "debug":  # aioice narrates every candidate pair at info
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    data_dir = config.data_path()
    try:
        identity = load_or_create_identity(data_dir)
        gate = LoginGate(load_or_create_ui_secret(data_dir), profile=config.profile)
    except IdentityError as exc:
        print(f"orbitd: {exc}", file=sys.stderr)
        return 1
    log.info(
        "identity ready",
        extra={"fields": {"data_dir": str(data_dir), "fingerprint": identity.fingerprint}},
    )
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(serve(config, identity, gate))
    return code
