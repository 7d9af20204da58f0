"""`GET /metrics` through prometheus-client: one `CollectorRegistry` per app, never the global one.

Counters are counted where things happen (`Metrics.token_issued()` and friends); what is true at
scrape time (sessions in the store, open sockets, relayed frames) is read when `/metrics` is asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .session import State

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class _Live(Collector):
    """The per-instance figures the relay keeps, read at each scrape."""

    def __init__(self, sockets: Callable[[], int], relayed: Callable[[], int]) -> None:
        self._sockets, self._relayed = sockets, relayed

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "orbit_open_sockets", "Open signaling WebSockets.", value=self._sockets()
        )
        yield CounterMetricFamily(
            "orbit_relayed_messages", "Signaling messages relayed or held.", value=self._relayed()
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._sessions = Gauge(
            "orbit_sessions", "Sessions in the store by state.", ["state"], registry=r
        )
        self._tokens = Counter("orbit_tokens_issued", "Tokens issued.", registry=r)
        self._joins = Counter("orbit_joins", "Join attempts by outcome.", ["result"], registry=r)
        self._limited = Counter(
            "orbit_rate_limited",
            "Requests refused by a rate limit, by limit.",
            ["limit"],
            registry=r,
        )
        self._ended = Counter(
            "orbit_sessions_ended", "Sessions ended, by reason.", ["reason"], registry=r
        )
        self._reports = Counter("orbit_reports", "Abuse reports filed.", registry=r)
        self._ice = Counter(
            "orbit_ice_grants",
            "ICE server lists (with fresh TURN credentials) handed out, at join and on refresh.",
            registry=r,
        )
        self._probe = Histogram(
            "orbit_store_probe_seconds",
            "Time the database took to count sessions (at each scrape and health check).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self._probe_failures = Counter(
            "orbit_store_probe_failures",
            "Scrapes and health checks the database failed.",
            registry=r,
        )
        # The families a dashboard expects are there from the start, at zero.
        self._joins.labels("host")
        self._limited.labels("token")
        self._ended.labels("manually_ended")
        ProcessCollector(registry=r)  # this instance's CPU, memory and file descriptors

    def watch_relay(self, sockets: Callable[[], int], relayed: Callable[[], int]) -> None:
        self.registry.register(_Live(sockets, relayed))

    def token_issued(self) -> None:
        self._tokens.inc()

    def join(self, result: str) -> None:
        self._joins.labels(result).inc()

    def rate_limited(self, limit: str) -> None:
        self._limited.labels(limit).inc()

    def session_ended(self, reason: str) -> None:
        self._ended.labels(reason).inc()

    def report_filed(self) -> None:
        self._reports.inc()

    def ice_granted(self) -> None:
        self._ice.inc()

    def probed(self, seconds: float, ok: bool) -> None:
        self._probe.observe(seconds)
        if not ok:
            self._probe_failures.inc()

    def render(self, sessions: dict[State, int]) -> bytes:
        for state, n in sessions.items():
            self._sessions.labels(state.value).set(n)
        return generate_latest(self.registry)
