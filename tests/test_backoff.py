"""The signaling socket's and the reconnect attempts' backoff: 1 s doubling to 30 s, jittered."""

from __future__ import annotations

from orbitd.rendezvous_client import backoff


def test_backoff_starts_at_a_second_doubles_caps_at_thirty_and_is_jittered() -> None:
    waits: list[float] = []
    previous = None
    for _ in range(12):
        previous = backoff(previous)
        waits.append(previous)
    assert 0.75 <= waits[0] <= 1.25
    assert all(w <= 30.0 * 1.25 for w in waits)
    assert waits[-1] >= 30.0 * 0.75  # reached the cap
    firsts = {backoff(None) for _ in range(20)}
    assert len(firsts) > 1  # jitter: not all at once
