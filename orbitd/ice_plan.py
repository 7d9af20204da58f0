"""Which ICE servers a connection uses: an ordered list of plans, and the one in use.

aiortc takes one STUN and one TURN server per connection and drops the rest
without a word (aioice #3). So the daemon chooses: from the servers the user
configured (`ice_servers`, `ice_username`, `ice_credential`) and those the
rendezvous handed out, it builds plans of at most one STUN and one TURN server
each, TURN over UDP first, then over TCP, then over TLS (`turns:`). A
connection that does not come up with one plan is rebuilt with the next
(`IcePlans.advance`). Every server no plan uses is logged once (its host and
why, never a credential).

`relay_only` ("hide my address from the other person"): every plan has a TURN
server and the transport policy "relay", so the peer learns only the TURN
server's address; with no TURN server known there is no plan at all, and the
caller says so. A LAN session uses no server at all (it works offline, and the
other daemon already knows this one's LAN address).

Pure: no aiortc here (`orbitd.ice.plan_configuration` makes the RTCConfiguration).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("orbitd.ice")

# As aiortc parses them (aiortc.rtcicetransport): a URL it cannot parse makes it raise.
_URL = re.compile(
    r"(?P<scheme>stun|stuns|turn|turns):(?P<host>[^?:]+)(:(?P<port>[0-9]+))?"
    r"(\?transport=(?P<transport>.*))?"
)
TURN_KINDS = ("turn-udp", "turn-tcp", "turn-tls")  # the order plans try them in


class HandedOut(Protocol):
    """One ICE server the rendezvous handed out, as `orbitcore.protocol.relay.IceServer`
    (WebRTC's RTCIceServer: its URLs, and for TURN a user name and credential)."""

    @property
    def urls(self) -> Sequence[str]: ...

    @property
    def username(self) -> str | None: ...

    @property
    def credential(self) -> str | None: ...


RendezvousIce = Sequence[HandedOut]


@dataclass(frozen=True)
class IceServer:
    url: str
    username: str = ""
    credential: str = ""
    origin: str = "settings"  # or "rendezvous"

    def __repr__(self) -> str:  # never the credential
        return f"IceServer({self.url!r}, origin={self.origin!r})"

    @property
    def host(self) -> str:
        match = _URL.fullmatch(self.url)
        return match["host"] if match else "?"

    @property
    def kind(self) -> str | None:
        """`stun`, `turn-udp`, `turn-tcp` or `turn-tls`; None when aiortc cannot use it."""
        match = _URL.fullmatch(self.url)
        if match is None:
            return None
        scheme, transport = match["scheme"], match["transport"]
        if scheme == "stun":
            return "stun" if transport is None else None
        if scheme == "turn":
            return {None: "turn-udp", "udp": "turn-udp", "tcp": "turn-tcp"}.get(transport)
        if scheme == "turns":
            return "turn-tls" if transport in (None, "tcp") else None
        return None  # stuns: aiortc has no STUN over TLS


@dataclass(frozen=True)
class IcePlan:
    """One connection's servers: at most one STUN and one TURN, and the policy."""

    stun: IceServer | None = None
    turn: IceServer | None = None
    relay_only: bool = False

    @property
    def policy(self) -> str:
        return "relay" if self.relay_only else "all"

    @property
    def servers(self) -> tuple[IceServer, ...]:
        return tuple(s for s in (self.stun, self.turn) if s is not None)

    def describe(self) -> str:
        """For logs and tests: kinds and hosts, no credential."""
        parts = [f"{s.kind}:{s.host}" for s in self.servers] or ["no servers"]
        return f"{' + '.join(parts)} ({self.policy})"


@dataclass(frozen=True)
class Dropped:
    server: IceServer
    reason: str


@dataclass(frozen=True)
class Plans:
    plans: tuple[IcePlan, ...]
    dropped: tuple[Dropped, ...]


def servers_of(
    configured: Sequence[str],
    username: str,
    credential: str,
    rendezvous: RendezvousIce | None,
) -> list[IceServer]:
    """The user's servers first, then the rendezvous's."""
    servers = [IceServer(url, username, credential) for url in configured]
    for handed in rendezvous or ():
        servers += [
            IceServer(url, handed.username or "", handed.credential or "", "rendezvous")
            for url in handed.urls
        ]
    return servers


def plan(servers: Sequence[IceServer], *, relay_only: bool, lan: bool) -> Plans:
    """The ordered plans for these servers (see the module's docstring)."""
    if lan:
        return Plans((IcePlan(),), tuple(Dropped(s, "lan_session") for s in servers))
    dropped: list[Dropped] = []
    stuns: list[IceServer] = []
    turns: list[IceServer] = []
    for server in servers:
        kind = server.kind
        if kind is None:
            dropped.append(Dropped(server, "unsupported_url"))
        elif kind == "stun":
            stuns.append(server)
        elif not (server.username and server.credential):
            dropped.append(Dropped(server, "no_credentials"))
        else:
            turns.append(server)
    turns.sort(key=lambda s: TURN_KINDS.index(s.kind or ""))  # stable: user's first
    if relay_only:
        dropped += [Dropped(s, "relay_only") for s in stuns]
        return Plans(tuple(IcePlan(None, t, True) for t in turns), tuple(dropped))
    if not turns:
        return Plans(tuple(IcePlan(s) for s in stuns) or (IcePlan(),), tuple(dropped))
    stun = stuns[0] if stuns else None
    dropped += [Dropped(s, "one_stun_per_connection") for s in stuns[1:]]
    return Plans(tuple(IcePlan(stun, t) for t in turns), tuple(dropped))


class IcePlans:
    """A session's plans and the one in use. `advance()` moves to the next (after the
    last: the first again) when a connection did not come up with the current one."""

    def __init__(
        self,
        configured: Sequence[str] = (),
        username: str = "",
        credential: str = "",
        *,
        rendezvous: RendezvousIce | None = None,
        relay_only: bool = False,
        lan: bool = False,
    ) -> None:
        self._configured = tuple(configured)
        self._user = (username, credential)
        self.relay_only = relay_only and not lan
        self.lan = lan
        self.index = 0
        self.tried = 1  # plans tried so far, the current one included
        self.plans: tuple[IcePlan, ...] = ()
        self._logged: set[tuple[str, str]] = set()
        self.refresh(rendezvous)

    def refresh(self, rendezvous: RendezvousIce | None) -> None:
        """The rendezvous's servers (or fresh credentials for them): the plans again,
        the position kept. Takes effect with the next connection."""
        servers = servers_of(self._configured, *self._user, rendezvous)
        made = plan(servers, relay_only=self.relay_only, lan=self.lan)
        self.plans = made.plans
        self.index = min(self.index, max(0, len(self.plans) - 1))
        for drop in made.dropped:
            key = (drop.server.url, drop.reason)
            if key not in self._logged:
                self._logged.add(key)
                log.info(
                    "ICE server not used",
                    extra={
                        "fields": {
                            "host": drop.server.host,
                            "origin": drop.server.origin,
                            "reason": drop.reason,
                        }
                    },
                )

    @property
    def usable(self) -> bool:
        """False when relay-only was asked for and no TURN server is known."""
        return bool(self.plans)

    @property
    def current(self) -> IcePlan:
        """The plan for the next connection (relay-only with no TURN: one that gathers
        nothing, which `usable` reports first)."""
        return self.plans[self.index] if self.plans else IcePlan(relay_only=True)

    @property
    def has_untried(self) -> bool:
        """A plan this session has not tried yet (for the first connection)."""
        return self.tried < len(self.plans)

    def advance(self) -> IcePlan:
        """The next plan, after the last the first again; returns it."""
        if self.plans:
            self.index = (self.index + 1) % len(self.plans)
            self.tried += 1
            log.info("next ICE plan", extra={"fields": {"plan": self.current.describe()}})
        return self.current
