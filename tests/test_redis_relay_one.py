"""One instance on Redis behaves as one instance in memory: test_ws_relay's socket tests
(close codes, caps, held messages, replacement, ends) run again with `redis_url` set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rendezvous.app import create_app
from rendezvous.relay_redis import RedisRelay
from rendezvous.settings import load_config
from tests.conftest import FakeClock, MakeRendezvous, RendezvousClient, service
from tests.test_ws_relay import (
    test_a_second_socket_of_the_same_identity_replaces_the_first,
    test_bad_frames_get_errors_and_the_socket_stays_usable,
    test_held_messages_are_bounded,
    test_manual_end_tells_both_and_closes,
    test_messages_for_an_absent_peer_are_held_until_it_connects,
    test_oversize_messages_close_with_1009,
    test_per_socket_rate_limit,
    test_refusals_have_their_close_codes,
    test_relay_both_ways_forwards_the_exact_text,
    test_status_on_connect_and_pushed_to_both_on_every_change,
    test_sweep_ends_expired_sessions_and_tells_their_sockets,
    test_the_countdown_timer_ends_a_connected_session,
)

__all__ = [
    "test_a_second_socket_of_the_same_identity_replaces_the_first",
    "test_bad_frames_get_errors_and_the_socket_stays_usable",
    "test_held_messages_are_bounded",
    "test_manual_end_tells_both_and_closes",
    "test_messages_for_an_absent_peer_are_held_until_it_connects",
    "test_oversize_messages_close_with_1009",
    "test_per_socket_rate_limit",
    "test_refusals_have_their_close_codes",
    "test_relay_both_ways_forwards_the_exact_text",
    "test_status_on_connect_and_pushed_to_both_on_every_change",
    "test_sweep_ends_expired_sessions_and_tells_their_sockets",
    "test_the_countdown_timer_ends_a_connected_session",
]


@pytest.fixture
def make_rendezvous(
    redis_url: str,
    aiohttp_client: Callable[..., Awaitable[RendezvousClient]],
    clock: FakeClock,
) -> MakeRendezvous:
    """conftest's, with the relay on a real redis-server."""

    async def make(**settings: Any) -> RendezvousClient:
        settings.setdefault("database", ":memory:")
        settings.setdefault("redis_url", redis_url)
        config = load_config(environ={}, overrides=settings)
        client = await aiohttp_client(create_app(config, clock=clock))
        assert isinstance(service(client).relay, RedisRelay)
        return client

    return make
