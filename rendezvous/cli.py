"""`orbit-rendezvous` / `python -m rendezvous`: serve, hash an admin password, list settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import signal
import sys

from aiohttp import web

from orbitcore.jsonlog import setup_logging
from orbitcore.settings_table import add_flags, flag_values

from .app import create_app
from .passwords import hash_password
from .redis_link import RedisUnavailable
from .settings import Config, SettingsError, load_config, settings_markdown
from .store import StoreUnavailable

log = logging.getLogger("rendezvous")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orbit-rendezvous",
        description="ChatOrbit rendezvous: tokens, session rules and first signaling.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "hash-password", "settings"],
        help="serve (default), hash-password (reads the password from stdin or a prompt), "
        "settings (print the settings table)",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file of settings")
    add_flags(parser, Config)
    return parser


async def serve(config: Config) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, shutdown_timeout=5.0)
    await site.start()
    server = site._server  # the bound port is needed when port 0 was asked for
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else config.port
    url = f"http://{config.host}:{port}"
    print(f"rendezvous listening on {url}", flush=True)
    log.info("listening", extra={"fields": {"url": url}})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "settings":
        sys.stdout.write(settings_markdown())
        return 0
    if args.command == "hash-password":
        password = (
            getpass.getpass("Admin password: ")
            if sys.stdin.isatty()
            else sys.stdin.readline().rstrip("\n")
        )
        if not password:
            print("orbit-rendezvous: an empty password is not allowed", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0
    overrides = flag_values(args, Config)
    try:
        config = load_config(toml_path=args.config, overrides=overrides)
    except SettingsError as exc:
        print(f"orbit-rendezvous: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(config))
    except (StoreUnavailable, RedisUnavailable) as exc:
        print(f"orbit-rendezvous: {exc}", file=sys.stderr)
        return 1
    return 0
