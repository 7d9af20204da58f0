"""ICE plans (orbitd.ice_plan): which STUN and TURN server each connection uses, in
which order, and that nothing is dropped without a log line (recorded outputs)."""

from __future__ import annotations

import logging

import pytest

from orbitcore.protocol.relay import IceServer
from orbitd.ice import plan_configuration
from orbitd.ice_plan import IcePlans, RendezvousIce, plan, servers_of
from orbitd.ice_plan import IceServer as Server

USER = "1767225600:r4nd0m"
SECRET = "c2VjcmV0LWhtYWM="


def minted(user: str = USER, credential: str = SECRET) -> tuple[IceServer, ...]:
    """What the rendezvous hands out (its join response's `ice_servers`)."""
    return (
        IceServer(
            (
                "turns:turn.rv.example:5349",
                "turn:turn.rv.example:3478?transport=tcp",
                "turn:turn.rv.example:3478",
            ),
            user,
            credential,
        ),
        IceServer(("stun:stun.rv.example:3478",)),
    )


RENDEZVOUS = minted()


def described(configured: list[str], rendezvous: RendezvousIce | None, **kw: bool) -> list[str]:
    servers = servers_of(configured, "me", "pw", rendezvous)
    return [p.describe() for p in plan(servers, **{"relay_only": False, "lan": False} | kw).plans]


def test_turn_over_udp_then_tcp_then_tls_the_users_first_within_each() -> None:
    mine = ["stun:stun.mine.example", "turns:turn.mine.example", "turn:turn.mine.example"]
    assert described(mine, RENDEZVOUS) == [
        "stun:stun.mine.example + turn-udp:turn.mine.example (all)",
        "stun:stun.mine.example + turn-udp:turn.rv.example (all)",
        "stun:stun.mine.example + turn-tcp:turn.rv.example (all)",
        "stun:stun.mine.example + turn-tls:turn.mine.example (all)",
        "stun:stun.mine.example + turn-tls:turn.rv.example (all)",
    ]


def test_no_turn_one_plan_per_stun_and_none_at_all_without_servers() -> None:
    assert described(["stun:a.example", "stun:b.example:3479"], None) == [
        "stun:a.example (all)",
        "stun:b.example (all)",
    ]
    assert described([], None) == ["no servers (all)"]


def test_relay_only_every_plan_a_turn_server_and_no_stun() -> None:
    assert described(["stun:stun.mine.example"], RENDEZVOUS, relay_only=True) == [
        "turn-udp:turn.rv.example (relay)",
        "turn-tcp:turn.rv.example (relay)",
        "turn-tls:turn.rv.example (relay)",
    ]
    assert described(["stun:stun.mine.example"], None, relay_only=True) == []


def test_a_lan_session_uses_no_server_even_when_relay_only() -> None:
    plans = IcePlans(
        ["turn:turn.mine.example"], "me", "pw", rendezvous=RENDEZVOUS, relay_only=True, lan=True
    )
    assert [p.describe() for p in plans.plans] == ["no servers (all)"]
    assert plans.usable and not plans.relay_only


def test_what_aiortc_cannot_use_is_dropped_with_its_reason() -> None:
    servers = servers_of(
        [
            "stuns:stun.tls.example",
            "turn:turn.sctp.example?transport=sctp",
            "turns:turn.udp.example?transport=udp",
            "stun:stun.example?transport=udp",
            "turn:[2001:db8::1]:3478",
            "stun:one.example",
            "stun:two.example",
            "turn:turn.ok.example",
        ],
        "me",
        "pw",
        None,
    )
    made = plan(servers, relay_only=False, lan=False)
    assert [p.describe() for p in made.plans] == [
        "stun:one.example + turn-udp:turn.ok.example (all)"
    ]
    assert [(d.server.url, d.reason) for d in made.dropped] == [
        ("stuns:stun.tls.example", "unsupported_url"),
        ("turn:turn.sctp.example?transport=sctp", "unsupported_url"),
        ("turns:turn.udp.example?transport=udp", "unsupported_url"),
        ("stun:stun.example?transport=udp", "unsupported_url"),
        ("turn:[2001:db8::1]:3478", "unsupported_url"),
        ("stun:two.example", "one_stun_per_connection"),
    ]


def test_turn_without_credentials_is_dropped() -> None:
    made = plan([Server("turn:turn.example")], relay_only=False, lan=False)
    assert [p.describe() for p in made.plans] == ["no servers (all)"]
    assert [d.reason for d in made.dropped] == ["no_credentials"]


def test_advance_goes_round_and_counts_what_the_first_connection_tried() -> None:
    plans = IcePlans(rendezvous=RENDEZVOUS)
    untried = [plans.has_untried]
    kinds = [plans.current.describe()]
    for _ in range(3):
        kinds.append(plans.advance().describe())
        untried.append(plans.has_untried)
    assert kinds == [
        "stun:stun.rv.example + turn-udp:turn.rv.example (all)",
        "stun:stun.rv.example + turn-tcp:turn.rv.example (all)",
        "stun:stun.rv.example + turn-tls:turn.rv.example (all)",
        "stun:stun.rv.example + turn-udp:turn.rv.example (all)",
    ]
    assert untried == [True, True, False, False]


def test_relay_only_without_turn_is_unusable_and_its_plan_gathers_nothing() -> None:
    plans = IcePlans(["stun:stun.example"], relay_only=True)
    assert not plans.usable
    assert plans.current.servers == () and plans.current.policy == "relay"
    assert plans.advance() == plans.current


def test_refresh_takes_fresh_credentials_and_keeps_the_position() -> None:
    plans = IcePlans(rendezvous=RENDEZVOUS)
    plans.advance()
    plans.refresh(minted("1767229200:n3w", "bmV3"))
    assert plans.index == 1
    assert plans.current.turn is not None and plans.current.turn.username == "1767229200:n3w"


def test_each_dropped_server_is_logged_once_by_host_never_with_its_credential(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="orbitd.ice")
    plans = IcePlans(["stun:a.example", "stun:b.example"], rendezvous=RENDEZVOUS)
    plans.refresh(RENDEZVOUS)
    dropped = [r for r in caplog.records if r.getMessage() == "ICE server not used"]
    assert [r.fields for r in dropped] == [  # type: ignore[attr-defined]
        {"host": "b.example", "origin": "settings", "reason": "one_stun_per_connection"},
        {"host": "stun.rv.example", "origin": "rendezvous", "reason": "one_stun_per_connection"},
    ]
    text = caplog.text + repr(plans.plans)
    assert SECRET not in text and USER not in text


def test_the_rtc_configuration_of_a_plan() -> None:
    relay = IcePlans(rendezvous=RENDEZVOUS, relay_only=True).current
    config = plan_configuration(relay)
    assert config.iceTransportPolicy.value == "relay"
    assert [(s.urls, s.username, s.credential) for s in config.iceServers or []] == [
        ("turn:turn.rv.example:3478", USER, SECRET)
    ]
    open_plan = plan_configuration(IcePlans(["stun:a.example"]).current)
    assert open_plan.iceTransportPolicy.value == "all"
    assert [s.urls for s in open_plan.iceServers or []] == ["stun:a.example"]
