"""ICE servers of real daemons and peer connections on 127.0.0.1: the path in the API,
"hide my address" (relay only) through a real coturn, and relay only refused clearly
when no TURN server is known."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orbitd.ice import use_loopback_only
from orbitd.ice_plan import IcePlans
from orbitd.peer import Peer
from orbitd.preferences import PreferenceError, PreferencesStore
from orbitd.settings import Config
from rendezvous.turn import mint
from tests.coturn import Coturn, coturn
from tests.processes import Daemon, start_daemon, start_rendezvous

__all__ = ["coturn"]  # the fixture

CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\w+)", re.M)


async def connect(alice: Daemon, bob: Daemon) -> list[dict[str, Any]]:
    body = {"validity_option": "day", "ttl_minutes": 60, "max_message_length": 200}
    status, created = await alice.call("POST", "/api/tokens", body)
    assert status == 201, created
    status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    assert status == 200, joined
    return list(await asyncio.gather(alice.phase("ready"), bob.phase("ready")))


def turn_flags(server: Coturn) -> list[str]:
    """A TURN server and credentials as a user sets them (minted as the rendezvous does)."""
    minted = mint(server.secret, 600, datetime.now(UTC), turn_urls=[server.turn_url])
    assert minted is not None
    handed = minted.ice_servers[0]
    assert handed.username and handed.credential
    return [
        "--ice-servers",
        server.turn_url,
        "--ice-username",
        handed.username,
        "--ice-credential",
        handed.credential,
    ]


async def test_the_path_of_a_chat_on_one_machine_is_loopback(
    tmp_path: Path, rendezvous: str
) -> None:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous), start_daemon(tmp_path, "bob", rendezvous)
    )
    try:
        ready = await connect(alice, bob)
        assert [(s["path"], s["relay_only"]) for s in ready] == [("loopback", False)] * 2
        _, state = await alice.call("GET", "/api/state")
        assert state["session"]["path"] == "loopback" and state["session"]["call"]["path"] == (
            "loopback"
        )
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_hide_my_address_without_a_turn_server_says_so(
    tmp_path: Path, rendezvous: str
) -> None:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous), start_daemon(tmp_path, "bob", rendezvous)
    )
    try:
        status, saved = await bob.call("POST", "/api/preferences", {"hide_address": True})
        assert status == 200 and saved["hide_address"] is True
        status, refused = await bob.call("POST", "/api/preferences", {"hide_address": "yes"})
        assert (status, refused["error"]) == (422, "invalid_preference")

        body = {"validity_option": "day", "ttl_minutes": 60, "max_message_length": 200}
        status, created = await alice.call("POST", "/api/tokens", body)
        assert status == 201 and created["session"]["relay_only"] is False
        status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
        assert status == 200, joined
        assert joined["session"]["relay_only"] is True
        error = await bob.event("error")
        assert error["code"] == "relay_unavailable" and "TURN" in error["message"]
        assert (await bob.event("session-ended"))["reason"] == "relay_unavailable"
        await alice.event("session-ended")  # the other side is not left waiting
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_hide_my_address_on_both_sides_runs_relayed_through_coturn(
    tmp_path: Path, rendezvous: str, coturn: Coturn
) -> None:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous, "--ice-relay-only", *turn_flags(coturn)),
        start_daemon(tmp_path, "bob", rendezvous, "--ice-relay-only", *turn_flags(coturn)),
    )
    try:
        ready = await connect(alice, bob)
        assert [(s["path"], s["relay_only"]) for s in ready] == [("relayed", True)] * 2
        status, _ = await alice.call("POST", "/api/messages", {"text": "via the relay"})
        assert status == 201
        assert (await bob.event("message"))["message"]["text"] == "via the relay"
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_hiding_my_address_with_the_rendezvous_s_turn_server_runs_relayed(
    tmp_path: Path, coturn: Coturn
) -> None:
    process, url = await start_rendezvous(
        tmp_path, "--turn-urls", coturn.turn_url, f"--turn-shared-secret={coturn.secret}"
    )
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
    )
    try:  # the user's switch, nothing in the daemon's settings
        status, _ = await bob.call("POST", "/api/preferences", {"hide_address": True})
        assert status == 200
        ready = await connect(alice, bob)
        assert [(s["path"], s["relay_only"]) for s in ready] == [
            ("relayed", False),
            ("relayed", True),
        ]
    finally:
        await asyncio.gather(alice.close(), bob.close())
        await process.stop()


class Quiet:
    """What a session hears of its Peer (nothing this test needs)."""

    def __init__(self, config: Config, plans: IcePlans) -> None:
        self.peer = Peer(config, lambda text: None, lambda state: None, plans)


async def test_with_relay_only_the_peer_learns_only_the_turn_servers_address(
    coturn: Coturn,
) -> None:
    minted = mint(coturn.secret, 600, datetime.now(UTC), turn_urls=[coturn.turn_url])
    assert minted is not None
    undo_loopback = use_loopback_only()  # the control's host candidate stays on 127.0.0.1
    sides = [
        Quiet(Config(), IcePlans(rendezvous=minted.ice_servers, relay_only=True)),
        Quiet(Config(), IcePlans(rendezvous=minted.ice_servers, relay_only=True)),
        Quiet(Config(), IcePlans(rendezvous=minted.ice_servers)),  # the control
    ]
    host, guest, control = (side.peer for side in sides)
    try:
        offer = await host.create_offer()  # what the sealed offer carries
        answer = await guest.accept_offer(offer)
        await host.accept_answer(answer)
        for sdp in (offer, answer):
            found = CANDIDATE.findall(sdp)
            assert found and {kind for _, kind in found} == {"relay"}, sdp
            assert {address for address, _ in found} == {coturn.host}
        async with asyncio.timeout(15):
            await asyncio.gather(host.wait_open(), guest.wait_open())
        assert host.path() == guest.path() == "relayed"

        # Without relay only, the same servers also give the host's own address away.
        kinds = {kind for _, kind in CANDIDATE.findall(await control.create_offer())}
        assert kinds == {"host", "relay"}
    finally:
        await asyncio.gather(*(side.peer.close() for side in sides))
        undo_loopback()


def test_the_hide_address_preference_overrides_the_setting_and_null_gives_it_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "preferences.json").write_text('{"hide_address": "yes"}')
    store = PreferencesStore(tmp_path)
    assert store.current.hide_address is None  # a stored value that is not a bool: ignored
    assert [store.current.relay_only(setting) for setting in (False, True)] == [False, True]
    store.update({"hide_address": False})
    assert store.current.relay_only(True) is False
    assert PreferencesStore(tmp_path).current.hide_address is False  # kept across a restart
    store.update({"hide_address": None})
    assert store.current.relay_only(True) is True
    with pytest.raises(PreferenceError):
        store.update({"hide_address": 1})
