"""`python -m bench ui`: the daemon's UI page weight, in real Chromium with the cache off.

The rendezvous and two orbitd daemons (host and guest, `--ice-loopback`) run
as subprocesses on 127.0.0.1, as in the orbitd suite; a Playwright-driven
Chromium logs in to each through its one-time link and goes through a session
as a person would: the landing page, a token (after the terms), the invite
with its QR code, the guest's join, the connected session page and a few
messages, then the help page. Every tab records what it transfers through the
DevTools protocol (`bench.ui_network`): a page's weight is every request made
for it, counted in bytes received on the wire, but for the events WebSocket
and the API calls made after its load event, which are listed apart.

The guest comes in as a newcomer would (issue #12): the invite link opens the
rendezvous's invite page (weighed in a tab of its own, budget 30 kB), its button hands
the invite to the guest's daemon; the time from opening that link to both sides
connected is reported (`invite_to_chat_seconds`).

The session page is held to a budget of 100 kB and compared with the seed's
Next.js session page (about 280 kB gzipped). A miss is reported, not an error.
A table goes to stdout and the figures to bench/results/ui-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Error

from . import report, ui_report
from .daemons import READY
from .procs import BenchError, Server, log_summary, python_module, running
from .runner import Suite, say
from .suite_orbitd import GUEST, HOST, rendezvous_argv
from .ui_browser import chromium, connected, hand_over, logged_in, request_token, send, settled
from .ui_network import Recorder
from .ui_report import PageWeight

PARAMETERS = ("ui_messages", "server_log_level")
DAEMON_LOG_LEVEL = "info"
MAX_MESSAGES = 50


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ui suite")
    group.add_argument(
        "--ui-messages",
        type=int,
        default=4,
        help="messages exchanged on the session page before it is weighed (in turns)",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.ui_messages <= MAX_MESSAGES:
        parser.error(f"--ui-messages must be from 1 to {MAX_MESSAGES}")


@contextlib.asynccontextmanager
async def orbitd(name: str, rendezvous: str, home: Path, log_path: Path) -> AsyncIterator[Server]:
    """`orbitd --profile name` as `bench.daemons.daemon` starts it, but with its one-time
    login link left for the browser (the server's `url`)."""
    argv = python_module(
        "orbitd",
        *("--port", "0", "--profile", name, "--rendezvous", rendezvous),
        *("--ice-loopback", "--no-lan-enabled", "--log-level", DAEMON_LOG_LEVEL),
    )
    env = {"XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    async with running(name, argv, log_path, ready=READY, env=env) as server:
        yield server


def base_of(server: Server) -> str:
    return server.url.split("/login", 1)[0]


def text_of(n: int) -> str:
    """A chat message of ordinary length."""
    return f"Message {n + 1}: a few words to see what the page moves for a line of chat."


async def walk(
    browser: Browser, host: Server, guest: Server, messages: int
) -> tuple[list[PageWeight], set[str], float]:
    """Through the UI, host and guest, each tab recorded with its cache off: the pages,
    the Accept-Encoding values the browser sent, and the seconds from opening the invite
    link (the rendezvous's invite page, orbitd running) to both sides connected."""
    host_base, guest_base = base_of(host), base_of(guest)
    host_context, host_login = await logged_in(browser, host.url)
    guest_context, guest_login = await logged_in(browser, guest.url)

    host_page = await host_context.new_page()
    host_tab = await Recorder.attach(host_context, host_page)
    await host_login.close()
    await host_page.goto(f"{host_base}/")
    await settled(host_page)
    invite = await request_token(host_page)
    await settled(host_page)
    say("ui: the host's session page shows the invite and its QR code")

    link = await host_page.get_by_label("Link for their browser").input_value()
    invite_page = await guest_context.new_page()
    invite_tab = await Recorder.attach(guest_context, invite_page)
    await invite_page.goto(link)
    await settled(invite_page)
    await invite_page.close()
    say("ui: the guest's invite page on the rendezvous")

    guest_page = await guest_context.new_page()
    guest_tab = await Recorder.attach(guest_context, guest_page)
    await guest_login.close()
    port = int(guest_base.rsplit(":", 1)[1])
    clock = time.perf_counter()
    await hand_over(guest_page, link, port, invite)
    await asyncio.gather(connected(host_page), connected(guest_page))
    invite_to_chat = time.perf_counter() - clock
    say(f"ui: invite link to chat-ready in {invite_to_chat:.2f} s")
    await settled(guest_page)
    for n in range(messages):
        sender, receiver = (host_page, guest_page) if n % 2 == 0 else (guest_page, host_page)
        await send(sender, receiver, text_of(n))
    await asyncio.sleep(0.5)  # the last status events
    say(f"ui: connected, {messages} messages exchanged")

    # a tab of its own: the session page asks before it is left
    help_page = await host_context.new_page()
    help_tab = await Recorder.attach(host_context, help_page)
    await help_page.goto(f"{host_base}/help")
    await settled(help_page)

    tabs = (host_tab, invite_tab, guest_tab, help_tab)
    await asyncio.gather(*(tab.settle() for tab in tabs))
    foreign = set().union(*(tab.foreign_hosts for tab in tabs))
    if foreign:
        raise BenchError(f"the browser asked for hosts other than 127.0.0.1: {sorted(foreign)}")
    pages = [
        PageWeight.of("landing", "host, /", host_tab.load("/")),
        PageWeight.of("invite page", "guest, rendezvous /join#invite", invite_tab.load("/join")),
        PageWeight.of("join", "guest, /join#invite", guest_tab.load("/join")),
        PageWeight.of(
            "session host",
            f"invite + QR, then connected, {messages} messages",
            host_tab.load("/session"),
        ),
        PageWeight.of(
            "session guest", f"connected, {messages} messages", guest_tab.load("/session")
        ),
        PageWeight.of("help", "host, /help", help_tab.load("/help")),
    ]
    for tab in tabs:
        await tab.detach()
    return pages, set().union(*(tab.accept_encoding for tab in tabs)), invite_to_chat


@dataclass(frozen=True)
class Measured:
    pages: list[PageWeight]
    accept_encoding: set[str]
    chromium: str
    logs: dict[str, dict[str, Any]]
    invite_to_chat_seconds: float


async def measure(args: argparse.Namespace, tmp: Path) -> Measured:
    logs = {name: tmp / f"{name}.log" for name in ("rendezvous", HOST, GUEST)}
    async with running("rendezvous", rendezvous_argv(args), logs["rendezvous"]) as rendezvous:
        url = rendezvous.url
        async with (
            orbitd(HOST, url, tmp / HOST, logs[HOST]) as host,
            orbitd(GUEST, url, tmp / GUEST, logs[GUEST]) as guest,
        ):
            say(f"ui: host {base_of(host)}, guest {base_of(guest)}; Chromium via Playwright")
            try:
                async with chromium() as browser:
                    pages, accept_encoding, invite_to_chat = await walk(
                        browser, host, guest, args.ui_messages
                    )
                    browser_version = browser.version
            except (Error, AssertionError) as exc:  # a step of the UI did not happen in time
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise BenchError(f"the browser: {first}") from None
    summaries = {name: log_summary(path) for name, path in logs.items()}
    return Measured(pages, accept_encoding, browser_version, summaries, invite_to_chat)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatorbit-bench-ui-") as name:
        measured = await measure(args, Path(name))
    pages = measured.pages
    sessions = [page for page in pages if page.path == "/session"]
    verdict = ui_report.session_verdict(sessions)
    invite_verdict = ui_report.invite_page_verdict(
        [page for page in pages if page.name == "invite page"]
    )
    print()
    print(ui_report.table(pages))
    print()
    for line in ui_report.after_load_lines(pages):
        print(f"after load: {line}")
    for note in ui_report.notes(pages, measured.accept_encoding):
        print(f"note: {note}")
    print(report.verdict_line(verdict))
    print(report.verdict_line(invite_verdict))
    print(f"invite link to chat-ready: {measured.invite_to_chat_seconds:.2f} s", flush=True)
    document = {
        "benchmark": "ui",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - clock, 1),
        "machine": report.machine_info()
        | {"chromium": measured.chromium, "playwright": version("playwright")},
        "parameters": {k: getattr(args, k) for k in PARAMETERS}
        | {"daemon_log_level": DAEMON_LOG_LEVEL, "timeout": args.timeout or SUITE.default_timeout},
        "targets": [verdict, invite_verdict],
        "invite_to_chat_seconds": round(measured.invite_to_chat_seconds, 3),
        "ratios": {"session_kb_to_seed_gzipped": verdict.get("ratio_to_seed")},
        "pages": [{"name": page.name, "figures": page.summary(), "detail": page} for page in pages],
        "accept_encoding": sorted(measured.accept_encoding),
        "logs": measured.logs,
    }
    path = report.write_json(document, args.results_dir, started, "ui")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="ui",
    summary=(
        "the daemon's UI in Chromium: bytes per page, the session page against 100 kB, "
        "the invite page against 30 kB, invite link to chat-ready"
    ),
    default_timeout=60.0,
    add_options=add_options,
    check=check,
    run=run,
)
