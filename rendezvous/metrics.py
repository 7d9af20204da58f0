"""Counters for `GET /metrics`, rendered in the Prometheus text format."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .session import State


@dataclass
class Metrics:
    tokens_issued: int = 0
    joins: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    sessions_ended: Counter[str] = field(default_factory=Counter)
    reports: int = 0
    ice_grants: int = 0

    def render(self, sessions: dict[State, int], open_sockets: int, relayed: int) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {value:g}")

        family(
            "orbit_sessions",
            "gauge",
            "Sessions in the store by state.",
            [(f'{{state="{s.value}"}}', n) for s, n in sessions.items()],
        )
        family("orbit_tokens_issued_total", "counter", "Tokens issued.", [("", self.tokens_issued)])
        family(
            "orbit_joins_total",
            "counter",
            "Join attempts by outcome.",
            [(f'{{result="{k}"}}', v) for k, v in sorted(self.joins.items())]
            or [('{result="host"}', 0)],
        )
        family(
            "orbit_rate_limited_total",
            "counter",
            "Requests refused by a rate limit, by limit.",
            [(f'{{limit="{k}"}}', v) for k, v in sorted(self.rate_limited.items())]
            or [('{limit="token"}', 0)],
        )
        family(
            "orbit_sessions_ended_total",
            "counter",
            "Sessions ended, by reason.",
            [(f'{{reason="{k}"}}', v) for k, v in sorted(self.sessions_ended.items())]
            or [('{reason="manually_ended"}', 0)],
        )
        family("orbit_reports_total", "counter", "Abuse reports filed.", [("", self.reports)])
        family(
            "orbit_ice_grants_total",
            "counter",
            "ICE server lists (with fresh TURN credentials) handed out, at join and on refresh.",
            [("", self.ice_grants)],
        )
        family("orbit_open_sockets", "gauge", "Open signaling WebSockets.", [("", open_sockets)])
        family(
            "orbit_relayed_messages_total",
            "counter",
            "Signaling messages relayed or held.",
            [("", relayed)],
        )
        return "\n".join(out) + "\n"
