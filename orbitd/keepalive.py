"""Liveness of the peer connection: is the other daemon still there?

aioice notices a dead link only after about 30 s (consent checks every ~5 s, six
misses). When both daemons announce `reconnect`, each sends `ping` on the chat data
channel about every second and answers every `ping` with `pong`; any frame heard from
the peer counts as life. After `dead_after` seconds of silence the link is dead, once
per connection: the host then builds a new connection, the guest says "reconnecting"
and waits for the host's sealed reoffer.

A state machine with no I/O: the caller passes `now` (monotonic seconds) and sends
what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from orbitcore.protocol import peer as wire

INTERVAL_SECONDS = 1.0
DEAD_AFTER_SECONDS = 4.5


@dataclass(frozen=True)
class SendPing:
    frame: wire.Ping


@dataclass(frozen=True)
class LinkDead:
    """Nothing heard for `silent_seconds`: this connection is gone."""

    silent_seconds: float


Output = SendPing | LinkDead


class Liveness:
    def __init__(
        self, *, interval: float = INTERVAL_SECONDS, dead_after: float = DEAD_AFTER_SECONDS
    ) -> None:
        if not 0 < interval < dead_after:
            raise ValueError("the ping interval must be shorter than the silence that kills")
        self.interval = interval
        self.dead_after = dead_after
        self.running = False
        self.dead = False
        self._last_heard = 0.0
        self._next_ping = 0.0
        self._n = 0

    def start(self, now: float) -> None:
        """A (new) connection is open: watch it from `now`."""
        self.running, self.dead = True, False
        self._last_heard = now
        self._next_ping = now

    def stop(self) -> None:
        """No connection to watch (reconnecting, or the session ended)."""
        self.running = False

    def heard(self, now: float) -> None:
        """Any frame came from the peer."""
        if self.running:
            self._last_heard = max(self._last_heard, now)

    def pong(self, ping: wire.Ping) -> wire.Pong:
        return wire.Pong(ping.n)

    def tick(self, now: float) -> list[Output]:
        """What is due at `now`: a ping, or the verdict that the link is dead (once)."""
        if not self.running or self.dead:
            return []
        silent = now - self._last_heard
        if silent >= self.dead_after:
            self.dead = True
            return [LinkDead(silent)]
        if now < self._next_ping:
            return []
        self._n += 1
        self._next_ping = now + self.interval
        return [SendPing(wire.Ping(self._n))]
