"""The shared rate limiters: the sliding window per key and the token bucket, on a given clock."""

from __future__ import annotations

from orbitcore.ratelimit import RateLimiter, TokenBucket


def test_a_window_allows_limit_hits_then_frees_a_slot_when_the_oldest_leaves() -> None:
    limiter = RateLimiter(10.0)
    verdicts = [limiter.hit("a", 3, now) for now in (100.0, 101.0, 102.0, 103.0)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[-1].reset_at == 110.0 and verdicts[-1].retry_after(103.0) == 7
    assert not limiter.hit("a", 3, 109.9).allowed  # refused hits are not recorded...
    assert limiter.hit("a", 3, 110.0).allowed  # ...so the first hit's slot frees on time
    assert limiter.hit("b", 3, 110.0).allowed  # each key has its own window


def test_peek_does_not_count_and_expire_forgets_idle_keys() -> None:
    limiter = RateLimiter(10.0)
    assert limiter.peek(("join", "10.0.0.1"), 1, 0.0).allowed
    assert limiter.hit(("join", "10.0.0.1"), 1, 0.0).allowed
    peeked = limiter.peek(("join", "10.0.0.1"), 1, 5.0)
    assert not peeked.allowed and peeked.headers() == {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "10",
    }
    limiter.hit("other", 1, 5.0)
    assert limiter.expire(9.0) == 0 and limiter.expire(10.0) == 1 and len(limiter) == 1


def test_keys_max_bounds_memory_forgetting_idle_keys_first_then_the_oldest() -> None:
    limiter = RateLimiter(60.0, keys_max=2)
    limiter.hit("old", 1, 0.0)
    limiter.hit("busy", 1, 30.0)
    assert limiter.hit("new", 1, 61.0).allowed  # "old" was idle: it goes
    assert len(limiter) == 2 and not limiter.allow("busy", 1, 61.0)
    assert limiter.hit("newer", 1, 62.0).allowed  # none idle: the oldest ("busy") goes
    assert limiter.allow("busy", 1, 62.0)  # forgotten, so allowed again


def test_the_token_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(1000.25)  # half a token
    assert bucket.take(1000.5) and not bucket.take(1000.5)
    assert [bucket.take(1100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst
