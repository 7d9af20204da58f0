"""`GET /metrics` through prometheus-client: one `CollectorRegistry` per app, never the global one.

Counters are counted where things happen (`Metrics.token_issued()` and friends); what is true at
scrape time (sessions in the store, open sockets, relayed frames, the database pool, the figures
shared in Redis) is read when `/metrics` is asked (rendezvous/operations.py).

Every figure is this instance's (`orbit_instance_info{name}` says which instance answered),
except the `orbit_shared_*` ones, read from Redis: the same on every instance sharing it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .session import State
from .store import PoolUse

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "Scrape", "Shared"]
PROBE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Shared:
    """What every instance sharing Redis counts together, read from Redis at a scrape."""

    rate_limited: dict[str, int]
    """Requests refused by each limit, on every instance."""
    instances: int | None
    """Instances whose relay heartbeat is live (None: not read)."""


@dataclass(frozen=True)
class Scrape:
    """What is read for one /metrics answer."""

    sessions: dict[State, int]
    pool: PoolUse
    shared: Shared | None
    """None without Redis, or when Redis did not answer."""


class _SharedFigures(Collector):
    """The `orbit_shared_*` families, from the last scrape's reading of Redis."""

    def __init__(self) -> None:
        self.latest: Shared | None = None

    def collect(self) -> Iterable[Metric]:
        if self.latest is None:
            return
        limited = CounterMetricFamily(
            "orbit_shared_rate_limited",
            "Requests refused by a rate limit on every instance sharing Redis, by limit.",
            labels=["limit"],
        )
        for limit, n in sorted(self.latest.rate_limited.items()):
            limited.add_metric([limit], n)
        yield limited
        if self.latest.instances is not None:
            yield GaugeMetricFamily(
                "orbit_shared_instances",
                "Instances sharing Redis whose relay heartbeat is live.",
                value=self.latest.instances,
            )


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
        self._instance = Info("orbit_instance", "The instance that answered.", registry=r)
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
            buckets=PROBE_BUCKETS,
            registry=r,
        )
        self._probe_failures = Counter(
            "orbit_store_probe_failures",
            "Scrapes and health checks the database failed.",
            registry=r,
        )
        self._pool = Gauge(
            "orbit_db_pool_connections",
            "The database connections this instance holds, by state (in_use, idle).",
            ["state"],
            registry=r,
        )
        self._pool_max = Gauge(
            "orbit_db_pool_max_connections", "The most connections the pool opens.", registry=r
        )
        self._redis_ping = Histogram(
            "orbit_redis_ping_seconds",
            "Redis round-trip time: a PING at each scrape, health check and periodic probe.",
            buckets=PROBE_BUCKETS,
            registry=r,
        )
        self._redis_failures = Counter(
            "orbit_redis_ping_failures", "PINGs Redis did not answer in time.", registry=r
        )
        self._decided_locally = Counter(
            "orbit_rate_limit_local",
            "Requests a rate limit decided on this instance alone (Redis did not answer).",
            ["limit"],
            registry=r,
        )
        self._shared = _SharedFigures()
        r.register(self._shared)
        # The families a dashboard expects are there from the start, at zero.
        self._joins.labels("host")
        self._limited.labels("token")
        self._ended.labels("manually_ended")
        ProcessCollector(registry=r)  # this instance's CPU, memory and file descriptors

    def watch_relay(self, sockets: Callable[[], int], relayed: Callable[[], int]) -> None:
        self.registry.register(_Live(sockets, relayed))

    def name_instance(self, name: str) -> None:
        self._instance.info({"name": name})

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

    def redis_pinged(self, seconds: float, ok: bool) -> None:
        if ok:
            self._redis_ping.observe(seconds)
        else:
            self._redis_failures.inc()

    def rate_limit_decided_locally(self, limit: str) -> None:
        self._decided_locally.labels(limit).inc()

    def render(self, scrape: Scrape) -> bytes:
        for state, n in scrape.sessions.items():
            self._sessions.labels(state.value).set(n)
        pool = scrape.pool
        self._pool.labels("in_use").set(pool.size - pool.idle)
        self._pool.labels("idle").set(pool.idle)
        self._pool_max.set(pool.max)
        self._shared.latest = scrape.shared
        return generate_latest(self.registry)
