"""The I/O of the first connection's plans (`orbitd.first_connect`, which decides): the
timer of its deadlines, and the next plan's new connection (the host's offer, the
guest's answer to the newest reoffer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .first_connect import AnswerReoffer, FirstConnect, FirstOutput, NextPlan
from .peer import Peer

log = logging.getLogger("orbitd.session")


class Connecting:
    def __init__(
        self, first: FirstConnect, peer: Peer, due: Callable[[list[FirstOutput]], None]
    ) -> None:
        self.first = first
        self.peer = peer
        self._due = due  # gets what `FirstConnect.tick` says at a deadline
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """The keys exist: the first plan's time starts."""
        self.first.start(asyncio.get_running_loop().time())
        self.arm()

    def arm(self) -> None:
        """The timer at the next deadline (none once the first connection is decided)."""
        self.cancel()
        if self.first.due is not None and not self.first.done:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(self.first.due, self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        outputs = self.first.tick(asyncio.get_running_loop().time())
        self.arm()
        self._due(outputs)

    async def next_plan(self, out: NextPlan | AnswerReoffer) -> list[FirstOutput]:
        """A new connection with the next ICE plan: the host's sealed `reoffer`, or the
        guest's sealed `reanswer` (none when a newer connection replaced it meanwhile)."""
        self.arm()  # the guest's deadline moved with the reoffer
        self.peer.plans.advance()
        try:
            generation = await self.peer.replace()
            if isinstance(out, NextPlan):
                sdp = await self.peer.create_offer()
                sealed = self.first.reoffer(generation, sdp)
            else:
                sdp = await self.peer.accept_offer(out.sdp)
                sealed = self.first.reanswer(out.generation, sdp)
        except Exception as exc:  # a bad offer, a connection closed meanwhile: the next plan's
            error = {"error": type(exc).__name__}  # not its text: it may quote the peer's SDP
            log.warning("the next plan's connection broke", extra={"fields": error})
            return []
        return sealed if self.peer.generation == generation else []
