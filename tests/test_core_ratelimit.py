"""The shared rate limiters: the sliding window per key and the token bucket, on a given clock."""

from __future__ import annotations

from orbitcore.ratelimit import RateLimiter, TokenBucket, address_key


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


def test_only_a_recorded_hit_makes_an_entry() -> None:
    limiter = RateLimiter(10.0)
    for n in range(1000):
        assert limiter.peek(f"10.0.{n // 256}.{n % 256}", 5, 0.0).allowed
    assert len(limiter) == 0  # a peek (status of a real token, a socket's first look) keeps none
    assert not limiter.hit("x", 0, 0.0).allowed and len(limiter) == 0  # nor does a refusal
    limiter.hit("x", 1, 0.0)
    assert len(limiter) == 1


def test_the_least_recently_hit_key_goes_first_and_expire_stops_at_a_live_one() -> None:
    limiter = RateLimiter(60.0, keys_max=3)
    for key, now in (("a", 0.0), ("b", 1.0), ("c", 2.0)):
        limiter.hit(key, 5, now)
    limiter.hit("a", 5, 3.0)  # "a" is now the most recent
    limiter.hit("d", 5, 4.0)  # full: "b", the least recently hit, goes
    assert limiter.peek("b", 5, 4.0).remaining == 5
    assert limiter.peek("a", 5, 4.0).remaining == 3
    assert limiter.expire(62.5) == 1 and len(limiter) == 2  # "c" (hit at 2) only


def test_address_keys_group_an_ipv6_client_by_its_network() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert address_key("2001:db8:1:2::1", 56) == "2001:db8:1::/56"
    assert address_key("2001:db8:1:2::1", 128) == "2001:db8:1:2::1/128"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("::ffff:203.0.113.9") == "203.0.113.9"  # IPv4-mapped: its IPv4 address
    assert address_key("203.0.113.9") == "203.0.113.9"
    assert address_key("unknown") == "unknown"
