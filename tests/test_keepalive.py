"""The keepalive as a pure machine: record what it asks for at each `now`."""

from __future__ import annotations

import pytest

from orbitcore.protocol import peer as wire
from orbitd.keepalive import LinkDead, Liveness, Output, SendPing


def record(live: Liveness, times: list[float]) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []
    for now in times:
        for out in live.tick(now):
            seen.append((now, name(out)))
    return seen


def name(out: Output) -> str:
    if isinstance(out, SendPing):
        return f"ping {out.frame.n}"
    return f"dead after {out.silent_seconds:.1f}"


def test_pings_about_every_second_while_the_peer_answers() -> None:
    live = Liveness(interval=1.0, dead_after=4.5)
    live.start(100.0)
    seen = []
    for step in range(21):  # 10 s in half seconds, the peer answering every tick
        now = 100.0 + step / 2
        seen += [(now, name(o)) for o in live.tick(now)]
        live.heard(now)
    assert seen == [(100.0 + s, f"ping {s + 1}") for s in range(11)]


def test_silence_kills_the_link_once_after_dead_after() -> None:
    live = Liveness(interval=1.0, dead_after=4.5)
    live.start(0.0)
    live.heard(1.0)
    seen = record(live, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.4, 5.5, 6.0, 9.0])
    assert seen == [
        (0.0, "ping 1"),
        (1.0, "ping 2"),
        (2.0, "ping 3"),
        (3.0, "ping 4"),
        (4.0, "ping 5"),
        (5.0, "ping 6"),
        (5.5, "dead after 4.5"),
    ]


def test_a_new_connection_is_watched_afresh_and_a_stopped_one_not_at_all() -> None:
    live = Liveness(interval=1.0, dead_after=4.5)
    live.start(0.0)
    assert [type(o) for o in live.tick(10.0)] == [LinkDead]
    live.stop()
    live.heard(11.0)
    assert live.tick(30.0) == []
    live.start(40.0)
    assert record(live, [40.0, 44.0, 44.6]) == [
        (40.0, "ping 1"),
        (44.0, "ping 2"),
        (44.6, "dead after 4.6"),
    ]


def test_a_ping_is_answered_with_its_number_and_the_interval_is_checked() -> None:
    assert Liveness().pong(wire.Ping(7)) == wire.Pong(7)
    with pytest.raises(ValueError):
        Liveness(interval=5.0, dead_after=4.5)
