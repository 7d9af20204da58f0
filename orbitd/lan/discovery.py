"""LAN presence: advertise this daemon with zeroconf, list the nearby ones, keep the list live.

Three parts, all bound to the chosen LAN addresses only (the UI stays on 127.0.0.1):

- a small HTTP listener (`lan_app`, port `lan_port`) answering `GET /lan/hello?nonce=N`
  with this daemon's name, public key and an Ed25519 signature over the caller's
  nonce, the name, the fingerprint and the address the caller reached. Other LAN
  endpoints (invites) are added to the same `lan_app` before the daemon starts;
- a zeroconf service `_chatorbit._tcp.local.` whose TXT record carries `name`,
  `v` (protocol version) and `fp` (the identity fingerprint). No token, no secret;
- a browser that resolves every announced peer and then asks it for a hello
  every `poll_interval` (2 s; `retry_interval`, 1 s, after a failure). A peer is
  listed once it has answered. zeroconf is only a hint: it never reports a killed
  peer as gone (PTR lifetimes are clamped to >= 1125 s), so liveness is the
  hello's job. A peer is dropped after `max_failures` (3) failed hellos in a row
  or `max_silence` (8 s) without an answer, so a killed peer is gone within about
  4 s (refused connections) to 7 s (a vanished host: 1 s timeouts). Its records
  are then dropped from zeroconf's cache, so its next announcement (a restart)
  lists it again. Only addresses inside the subnets of our LAN interfaces are
  ever contacted, and redirects are not followed.

A peer is flagged when the key behind its hello is not the one its TXT record
announces (`key_mismatch`), when a name the user verified before comes with
another key (`known_name_other_key`), or when two nearby keys announce one name
and neither is verified (`duplicate_name`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from zeroconf import IPVersion, NonUniqueNameException, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from orbitcore.protocol import lan
from orbitcore.protocol.frames import ProtocolError

from ..adapters.zeroconf_internals import forget_service
from ..identity import Identity
from .hello import (
    HELLO_PATH,
    HELLO_STATE,
    PROTOCOL_VERSION,
    add_hello,
    check_hello,
)
from .networks import PRIVATE_NETWORKS as PRIVATE_NETWORKS  # re-exported
from .networks import LanInterface as LanInterface  # re-exported
from .networks import choose_interfaces as choose_interfaces  # re-exported
from .peers import FINGERPRINT, VerifiedPeers, name_key

log = logging.getLogger("orbitd.lan")

SERVICE_TYPE = "_chatorbit._tcp.local."
HELLO_MAX_BYTES = 4096
NAME_MAX_BYTES = 63
MAX_CANDIDATES = 64  # announcements tracked at once; more are ignored (a noisy LAN)

NearbyList = list[dict[str, Any]]


class LanError(RuntimeError):
    """LAN presence could not start; the message says why."""


# --- the nearby list --------------------------------------------------------------------


@dataclass(frozen=True)
class Announcement:
    name: str
    fingerprint: str
    version: str
    address: str
    port: int


@dataclass
class Candidate:
    """An announced peer: listed once it answers a hello, dropped when it stops."""

    service: str
    seen: Announcement
    since: float  # loop time of the last good answer (or of the announcement)
    answered: bool = False
    failures: int = 0
    mismatch: str | None = None  # why the hello did not prove the announced key
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def parse_announcement(
    info: AsyncServiceInfo, networks: list[ipaddress.IPv4Network]
) -> Announcement | str:
    """The announcement in `info`, or why it is ignored."""
    props = info.properties or {}
    raw_name, raw_fp, raw_v = props.get(b"name"), props.get(b"fp"), props.get(b"v")
    if raw_name is None or raw_fp is None or raw_v is None:
        return "TXT lacks name, fp or v"
    try:
        name, fp, version = raw_name.decode(), raw_fp.decode(), raw_v.decode()
    except UnicodeDecodeError:
        return "TXT is not UTF-8"
    if version != PROTOCOL_VERSION:
        return f"protocol version {version!r}"
    if not FINGERPRINT.fullmatch(fp):
        return "fp is not a fingerprint"
    if not name_key(name) or len(raw_name) > NAME_MAX_BYTES or not name.isprintable():
        return "name is empty, too long or not printable"
    if not info.port:
        return "no port"
    for address in info.parsed_addresses(IPVersion.V4Only):
        if any(ipaddress.IPv4Address(address) in net for net in networks):
            return Announcement(name, fp, version, address, info.port)
    return "no address on our LAN"


class LanPresence:
    """Advertise, browse and keep the `Nearby` list; `on_change(list)` after each change."""

    def __init__(
        self,
        identity: Identity,
        name: str,
        interfaces: list[LanInterface],
        port: int,
        store: VerifiedPeers,
        *,
        lan_app: web.Application | None = None,
        on_change: Callable[[NearbyList], None] | None = None,
        poll_interval: float = 2.0,
        retry_interval: float = 1.0,
        hello_timeout: float = 1.0,
        max_failures: int = 3,
        max_silence: float = 8.0,
        resolve_timeout: float = 3.0,
    ) -> None:
        if not interfaces:
            raise LanError("no LAN interface")
        self.identity = identity
        self.name = name
        self.interfaces = interfaces
        self.store = store
        self.on_change = on_change
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.hello_timeout = hello_timeout
        self.max_failures = max_failures
        self.max_silence = max_silence
        self.resolve_timeout = resolve_timeout
        self._wanted_port = port
        self.port = 0  # the real one, once started
        self.lan_app = lan_app if lan_app is not None else web.Application()
        if HELLO_STATE not in self.lan_app:  # else `add_hello` did (the daemon's app)
            add_hello(self.lan_app, identity, name)
        self._runner: web.AppRunner | None = None
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._http: aiohttp.ClientSession | None = None
        self._candidates: dict[str, Candidate] = {}
        self._resolving: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._published: NearbyList = []
        self._stopping = False
        self.withdrawn = False

    @property
    def addresses(self) -> list[str]:
        return [i.address for i in self.interfaces]

    @property
    def service_name(self) -> str | None:
        return self._info.name if self._info is not None else None

    # --- start and stop ---

    async def start(self) -> None:
        try:
            await self._listen()
            self._zc = AsyncZeroconf(interfaces=self.addresses, ip_version=IPVersion.V4Only)
        except (OSError, LanError) as exc:
            await self.stop()
            raise LanError(str(exc)) from None
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.hello_timeout),
            connector=aiohttp.TCPConnector(force_close=True, limit=16),
            headers={"User-Agent": "orbitd-lan/1"},
        )
        instance = f"chatorbit-{self.identity.fingerprint[:16]}"
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{instance}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in self.addresses],
            port=self.port,
            properties=self.txt_record(),
            server=f"{instance}.local.",
        )
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, [SERVICE_TYPE], handlers=[self._on_service]
        )
        self._spawn(self._register())
        log.info(
            "LAN presence started",
            extra={"fields": {"addresses": self.addresses, "port": self.port, "name": self.name}},
        )

    def txt_record(self) -> dict[str, str]:
        """What the announcement says: name, protocol version, fingerprint. Nothing secret."""
        return {"name": self.name, "v": PROTOCOL_VERSION, "fp": self.identity.fingerprint}

    async def _listen(self) -> None:
        self._runner = web.AppRunner(
            self.lan_app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        port = self._wanted_port
        bound: list[LanInterface] = []
        for iface in self.interfaces:
            try:
                await web.TCPSite(self._runner, iface.address, port).start()
            except OSError as exc:
                if bound or port == 0 or exc.errno != errno.EADDRINUSE:
                    log.warning(
                        "LAN listener: cannot listen",
                        extra={"fields": {"address": f"{iface.address}:{port}", "error": str(exc)}},
                    )
                    continue
                log.warning(
                    "LAN listener: port taken, using a free one",
                    extra={"fields": {"address": f"{iface.address}:{port}"}},
                )
                port = 0
                await web.TCPSite(self._runner, iface.address, port).start()
            port = int(self._runner.addresses[-1][1])
            bound.append(iface)
        if not bound:
            raise LanError("the LAN listener could not listen on any LAN address")
        self.interfaces, self.port = bound, port

    async def _register(self) -> None:
        assert self._zc is not None and self._info is not None
        try:
            # No probing (it would delay the first announcement by 1 to 1.25 s): the
            # instance name comes from this daemon's key, so it is unique unless the same
            # identity runs twice, which probing would only turn into a rename.
            task = await self._zc.async_register_service(self._info, cooperating_responders=True)
            await task
        except (NonUniqueNameException, OSError) as exc:
            log.warning("LAN: cannot announce this daemon", extra={"fields": {"error": str(exc)}})
            return
        log.debug("LAN: announced", extra={"fields": {"service": self._info.name}})

    async def withdraw(self) -> None:
        """Stop announcing (a goodbye) but keep the listener and the list: visibility
        ended while a LAN session still needs the listener for its signaling."""
        if self._zc is None or self._info is None or self.withdrawn:
            return
        self.withdrawn = True
        registering = list(self._tasks)
        await asyncio.gather(*registering, return_exceptions=True)
        try:
            task = await self._zc.async_unregister_service(self._info)
            await task
        except (KeyError, OSError) as exc:
            log.warning(
                "LAN: cannot withdraw the announcement", extra={"fields": {"error": str(exc)}}
            )
            return
        log.info("LAN: announcement withdrawn (the listener stays for the session)")

    def announce_again(self) -> None:
        """Visible again before the LAN session that kept us withdrawn ended."""
        if self._zc is None or not self.withdrawn:
            return
        self.withdrawn = False
        self._spawn(self._register())

    async def stop(self) -> None:
        self._stopping = True
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
        tasks = list(self._tasks) + [c.task for c in self._candidates.values() if c.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._candidates.clear()
        if self._runner is not None:  # first, so a peer's check after our goodbye fails
            await self._runner.cleanup()
            self._runner = None
        if self._zc is not None:
            try:  # says goodbye (TTL 0), so peers drop us at once
                await asyncio.wait_for(self._zc.async_close(), 3.0)
            except (TimeoutError, OSError) as exc:
                log.warning(
                    "LAN: zeroconf did not close cleanly", extra={"fields": {"error": str(exc)}}
                )
            self._zc = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- browsing ---

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_service(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if self._stopping:
            return
        if state_change is ServiceStateChange.Removed:
            self._spawn(self._confirm_gone(name))
        elif name not in self._resolving:
            self._spawn(self._resolve(name))

    async def _confirm_gone(self, service: str) -> None:
        """A goodbye (TTL 0) is unauthenticated: anyone on the LAN can send one. The
        peer is dropped only if it does not answer a hello either."""
        candidate = self._candidates.get(service)
        if candidate is not None and await self._ask_hello(candidate.seen) is None:
            self._drop(service, "said goodbye")

    async def _resolve(self, service: str) -> None:
        if self._zc is None or service == self.service_name:
            return
        self._resolving.add(service)
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, service)
            if not await info.async_request(self._zc.zeroconf, self.resolve_timeout * 1000):
                log.debug("LAN: unresolved", extra={"fields": {"service": service}})
                return
        finally:
            self._resolving.discard(service)
        seen = parse_announcement(info, [i.network for i in self.interfaces])
        if isinstance(seen, str):
            log.debug("LAN: ignored", extra={"fields": {"service": service, "why": seen}})
            return
        if (
            seen.fingerprint == self.identity.fingerprint
            and seen.port == self.port
            and seen.address in self.addresses
        ):
            return  # ourselves, under a name zeroconf changed
        known = self._candidates.get(service)
        if known is not None:
            if known.seen != seen:  # a new name, key or address: prove it again, now
                known.seen, known.mismatch = seen, None
                if known.task is not None:
                    known.task.cancel()
                known.task = asyncio.ensure_future(self._watch(known))
            return
        if len(self._candidates) >= MAX_CANDIDATES:
            log.warning("LAN: too many nearby announcements; ignoring one")
            return
        loop = asyncio.get_running_loop()
        candidate = Candidate(service, seen, since=loop.time())
        self._candidates[service] = candidate
        candidate.task = asyncio.ensure_future(self._watch(candidate))

    async def _watch(self, candidate: Candidate) -> None:
        """Ask for a hello until the peer stops answering, then drop it."""
        loop = asyncio.get_running_loop()
        while True:
            fresh = self._cached(candidate.service)  # zeroconf may have newer TXT/SRV/A
            if fresh is not None and fresh != candidate.seen:
                candidate.seen = fresh
            outcome = await self._ask_hello(candidate.seen)
            if outcome is None:
                candidate.failures += 1
                silent = loop.time() - candidate.since
                if candidate.failures >= self.max_failures or silent >= self.max_silence:
                    self._drop(candidate.service, f"no hello for {silent:.1f} s")
                    return
                await asyncio.sleep(self.retry_interval)
                continue
            seen, mismatch = candidate.seen, outcome or None
            if not candidate.answered:
                log.info(
                    "LAN: nearby peer",
                    extra={
                        "fields": {
                            "name": seen.name,
                            "fingerprint": seen.fingerprint,
                            "address": f"{seen.address}:{seen.port}",
                            "mismatch": mismatch,
                        }
                    },
                )
            elif mismatch != candidate.mismatch:
                log.info(
                    "LAN: nearby peer's proof changed",
                    extra={"fields": {"name": seen.name, "mismatch": mismatch}},
                )
            if mismatch is not None and mismatch != candidate.mismatch:
                log.warning(
                    "LAN: a nearby announcement is not backed by its key",
                    extra={
                        "fields": {
                            "name": seen.name,
                            "address": f"{seen.address}:{seen.port}",
                            "why": mismatch,
                        }
                    },
                )
            candidate.answered, candidate.failures, candidate.since = True, 0, loop.time()
            candidate.mismatch = mismatch
            self._publish()
            await asyncio.sleep(self.poll_interval)

    def _cached(self, service: str) -> Announcement | None:
        """The announcement as zeroconf's cache has it now, if complete and usable."""
        if self._zc is None:
            return None
        info = AsyncServiceInfo(SERVICE_TYPE, service)
        if not info.load_from_cache(self._zc.zeroconf):
            return None
        seen = parse_announcement(info, [i.network for i in self.interfaces])
        return seen if isinstance(seen, Announcement) else None

    async def _ask_hello(self, seen: Announcement) -> str | None:
        """None: no usable answer; "": the hello proves the announcement; else why it does not."""
        if self._http is None:
            return None
        nonce = secrets.token_urlsafe(24)
        address = f"{seen.address}:{seen.port}"
        try:
            async with self._http.get(
                f"http://{address}{HELLO_PATH}", params={"nonce": nonce}, allow_redirects=False
            ) as response:
                if response.status != 200:
                    return None
                body = await response.content.read(HELLO_MAX_BYTES + 1)
            if len(body) > HELLO_MAX_BYTES:
                return None
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None
        try:
            hello = lan.CHANNEL.parse_as(lan.Hello, body)
        except ProtocolError:
            log.info("protocol_error", extra={"fields": {"channel": "lan", "type": "hello"}})
            return None
        why = check_hello(
            hello, nonce=nonce, name=seen.name, fingerprint=seen.fingerprint, address=address
        )
        return "" if why is None else why

    def _drop(self, service: str, why: str) -> None:
        candidate = self._candidates.pop(service, None)
        if candidate is None:
            return
        if candidate.task is not None and candidate.task is not asyncio.current_task():
            candidate.task.cancel()
        self._forget_records(service)
        if candidate.answered:
            log.info(
                "LAN: nearby peer gone",
                extra={"fields": {"name": candidate.seen.name, "why": why}},
            )
        self._publish()

    def _forget_records(self, service: str) -> None:
        """Drop a gone peer's PTR, SRV and TXT from zeroconf's cache, so that its next
        announcement is news to the browser (a restarted peer is listed again)."""
        if self._zc is None:
            return
        forget_service(self._zc.zeroconf, SERVICE_TYPE, service)

    # --- the list ---

    def peers(self) -> NearbyList:
        """The nearby peers as the UI shows them, sorted by name."""
        live = [c for c in self._candidates.values() if c.answered]
        keys_by_name: dict[str, set[str]] = {}
        for c in live:
            keys_by_name.setdefault(name_key(c.seen.name), set()).add(c.seen.fingerprint)
        shown: dict[tuple[str, str, int], dict[str, Any]] = {}
        for c in live:
            seen = c.seen
            status = self.store.status(seen.name, seen.fingerprint)
            reason: str | None = None
            if c.mismatch is not None:
                reason = "key_mismatch"
            elif status == "mismatch":
                reason = "known_name_other_key"
            elif status == "unknown" and len(keys_by_name[name_key(seen.name)]) > 1:
                reason = "duplicate_name"
            shown[(seen.fingerprint, seen.address, seen.port)] = {
                "name": seen.name,
                "fingerprint": seen.fingerprint,
                "address": seen.address,
                "port": seen.port,
                "version": seen.version,
                "verified_before": status == "verified" and c.mismatch is None,
                "flagged": reason is not None,
                "reason": reason,
            }
        return sorted(shown.values(), key=lambda p: (name_key(p["name"]), p["fingerprint"]))

    def find(self, fingerprint: str) -> dict[str, Any] | None:
        """The listed peer with this fingerprint whose hello proved it, if any."""
        for peer in self.peers():
            if peer["fingerprint"] == fingerprint and peer["reason"] != "key_mismatch":
                return peer
        return None

    def _publish(self) -> None:
        """Tell `on_change` if the list changed (also after the store changed)."""
        if self._stopping:
            return
        current = self.peers()
        if current == self._published:
            return
        self._published = current
        if self.on_change is not None:
            try:
                self.on_change(current)
            except Exception:
                log.exception("LAN: on_change failed")

    def refresh(self) -> None:
        self._publish()
