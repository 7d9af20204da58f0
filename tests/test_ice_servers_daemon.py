"""The daemon's view of the rendezvous's ICE servers (orbitd.ice_servers): read from the
join response through the relay channel, when to ask for fresh ones."""

from __future__ import annotations

import logging

import pytest

from orbitcore.protocol import relay
from orbitd.ice_servers import IceServers, from_join

TURN = {"urls": ["turn:127.0.0.1:3478"], "username": "1800000000:abc", "credential": "c2VjcmV0"}
STUN = {"urls": ["stun:127.0.0.1:3478"]}


def test_a_join_response_with_turn_gives_servers_and_a_refresh_time() -> None:
    joined = {"role": "host", "ice_servers": [TURN, STUN], "ice_ttl_seconds": 100}
    ice = from_join(joined, now=1000.0)
    assert ice is not None
    assert [s.urls for s in ice.servers] == [("turn:127.0.0.1:3478",), ("stun:127.0.0.1:3478",)]
    assert ice.servers[0].username == "1800000000:abc"
    assert ice.expires_at == 1100.0
    assert ice.refresh_at == 1080.0  # a fifth of the life left


def test_stun_only_never_needs_a_refresh_and_nothing_is_nothing() -> None:
    ice = from_join({"ice_servers": [STUN]}, now=5.0)
    assert ice is not None and ice.expires_at is None and ice.refresh_at is None
    assert from_join({"role": "guest", "session_status": {}}, now=5.0) is None


@pytest.mark.parametrize(
    "ice_servers",
    [
        "turn:127.0.0.1",
        [{"urls": "turn:127.0.0.1"}],
        [{"username": "x"}],
        [{"urls": ["turn:127.0.0.1"], "credential": 7}],
        [{"urls": ["x" * 600]}],
    ],
)
def test_malformed_ice_servers_are_logged_and_left_out(
    ice_servers: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert from_join({"ice_servers": ice_servers, "ice_ttl_seconds": 60}, now=0.0) is None
    assert [r.getMessage() for r in caplog.records] == ["protocol_error"]


def test_a_fresh_frame_replaces_the_clock_and_no_credential_is_in_a_repr() -> None:
    frame = relay.CHANNEL.parse(
        relay.IceServers(
            ice_servers=(
                relay.IceServer(urls=("turn:127.0.0.1",), username="u", credential="s3cr3t-cred"),
            ),
            ttl_seconds=10,
        ).encode()
    )
    assert isinstance(frame, relay.IceServers)
    ice = IceServers.of(frame, now=50.0)
    assert (ice.expires_at, ice.refresh_at) == (60.0, 58.0)
    assert "s3cr3t-cred" not in repr(ice)
