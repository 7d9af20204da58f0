"""The Nearby switch: LAN presence runs only while the user made this daemon visible.

`LanSwitch` reads the visibility from the preferences file, looks at the LAN
interfaces and their networks (no zeroconf), and starts `LanPresence` (zeroconf,
the LAN listener, the browser) only when `Visibility.visible`; it stops it when the
timer ends, when the user turns it off, or when we leave a remembered network
(interfaces are looked at again every `LOOK_SECONDS`). Invisible means nothing at
all on the LAN: no announcement, no listener, no browsing (an invisible daemon
could not invite anyone anyway: the invitee checks that the inviter's key answers
a hello at its address). A LAN session that is running when visibility ends keeps
the listener until the session ends (its signaling link goes through it): the
announcement is withdrawn at once (a goodbye), the rest stops after the session.

UI routes (behind the daemon's Host/Origin/login checks):

    GET    /api/nearby/visibility                 <visibility>
    POST   /api/nearby/visibility {"mode"}        off | timed | network -> <visibility>
    DELETE /api/nearby/visibility/networks/{id}   forget a remembered network

and the event `{"type": "nearby-visibility", ...<visibility>}` on every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbitcore.errors import Refusal, json_object

from .networks import LanInterface, Network, choose_interfaces, identify
from .visibility import MODES, Visibility, VisibilityError

if TYPE_CHECKING:
    from .discovery import LanPresence

log = logging.getLogger("orbitd.lan")

LOOK_SECONDS = 10.0  # how often the interfaces (and a running LAN session) are looked at


class LanSwitch:
    """Starts and stops presence by the visibility; `start_presence(interfaces)` makes
    and starts one (None: it could not), `stop_presence()` stops the running one."""

    def __init__(
        self,
        *,
        enabled: bool,
        wanted_interfaces: list[str],
        visible_seconds: float,
        load: Callable[[], dict[str, Any]],
        save: Callable[[dict[str, Any]], None],
        start_presence: Callable[[list[LanInterface]], Any],
        stop_presence: Callable[[], Any],
        running: Callable[[], LanPresence | None],
        lan_session: Callable[[], bool],
        emit: Callable[[dict[str, Any]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.enabled = enabled
        self.wanted_interfaces = wanted_interfaces
        self.visible_seconds = visible_seconds
        self.visibility = Visibility.from_json(load())
        self._save = save
        self._start_presence = start_presence
        self._stop_presence = stop_presence
        self._running = running
        self._lan_session = lan_session
        self._emit = emit
        self.clock = clock
        self.interfaces: list[LanInterface] = []
        self.here: list[Network] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._shown: dict[str, Any] | None = None

    # -- what the UI sees ------------------------------------------------------------
    def public(self) -> dict[str, Any]:
        shown = self.visibility.public(self.clock(), self.here)
        return shown | {
            "enabled": self.enabled,
            "running": self._running() is not None,
            "timed_seconds": int(self.visible_seconds),
        }

    def _announce(self) -> None:
        shown = self.public()
        steady = {k: v for k, v in shown.items() if k != "remaining_seconds"}
        if steady != self._shown:
            self._shown = steady
            self._emit({"type": "nearby-visibility", **shown})

    # -- lifetime --------------------------------------------------------------------
    def _needs_look(self) -> bool:
        """Only what could make us visible is worth looking at the interfaces for."""
        return (
            bool(self.visibility.networks)
            or self._running() is not None
            or bool(self.visibility.remaining(self.clock()))
        )

    async def start(self) -> None:
        if self._needs_look():
            self.look()
        await self.apply()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._running() is not None:
            await self._stop_presence()

    def look(self) -> None:
        """The LAN interfaces and their networks, now."""
        self.interfaces, missing = choose_interfaces(self.wanted_interfaces)
        if missing and not self.here:  # said once, at the start
            for why in missing:
                log.warning(
                    "LAN: an interface in lan_interfaces is missing", extra={"fields": {"why": why}}
                )
        self.here = identify(self.interfaces)

    async def _run(self) -> None:
        while True:
            now = self.clock()
            wait = LOOK_SECONDS
            change = self.visibility.next_change(now)
            if change is not None:
                wait = min(wait, max(0.05, change - now))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._needs_look():
                    self.look()
                await self.apply()
            except Exception:
                log.exception("LAN: the visibility check failed")

    # -- the user's choices ----------------------------------------------------------
    async def choose(self, mode: str) -> dict[str, Any]:
        if not self.enabled:
            raise Refusal(409, "lan_disabled", "LAN mode is turned off in the settings.")
        if mode not in MODES:
            raise Refusal(422, "invalid_mode", "mode: off, timed or network.")
        self.look()
        try:
            chosen = self.visibility.choose(mode, self.clock(), self.here, self.visible_seconds)
        except VisibilityError as exc:
            raise Refusal(409, "no_network", str(exc)) from None
        self._set(chosen)
        log.info("LAN: visibility chosen", extra={"fields": {"mode": mode}})
        await self.apply()
        return self.public()

    async def forget(self, network_id: str) -> dict[str, Any]:
        kept = self.visibility.forget(network_id)
        if kept is None:
            raise Refusal(404, "network_not_found", "No remembered network has this id.")
        self._set(kept)
        await self.apply()
        return self.public()

    def _set(self, visibility: Visibility) -> None:
        self.visibility = visibility
        self._save(visibility.to_json())
        self._wake.set()  # the timer may have changed

    # -- starting and stopping ---------------------------------------------------------
    async def apply(self) -> None:
        async with self._lock:
            ids = {n.id for n in self.here}
            want = self.enabled and self.visibility.visible(self.clock(), ids)
            presence = self._running()
            if want and presence is None:
                await self._start_presence(self.interfaces)
            elif want and presence is not None and presence.withdrawn:
                presence.announce_again()
            elif presence is not None and not want:
                if self._lan_session():
                    if not presence.withdrawn:
                        log.info("LAN: invisible; the listener stays until the LAN session ends")
                        await presence.withdraw()
                else:
                    await self._stop_presence()
                    log.info("LAN: invisible")
            self._announce()


def add_routes(app: web.Application, switch: Callable[[], LanSwitch]) -> None:
    async def _get(request: web.Request) -> web.Response:
        return web.json_response(switch().public())

    async def _choose(request: web.Request) -> web.Response:
        body = await json_object(request)
        mode = body.get("mode")
        return web.json_response(await switch().choose(mode if isinstance(mode, str) else ""))

    async def _forget(request: web.Request) -> web.Response:
        return web.json_response(await switch().forget(request.match_info["id"]))

    app.router.add_get("/api/nearby/visibility", _get)
    app.router.add_post("/api/nearby/visibility", _choose)
    app.router.add_delete("/api/nearby/visibility/networks/{id}", _forget)
