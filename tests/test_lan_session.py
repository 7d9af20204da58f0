"""LAN sessions with no server at all: invite a nearby daemon, accept, type the code, chat.

Every daemon runs offline (`--rendezvous http://127.0.0.1:9`, nothing listens there) in
its own network namespace, on its namespace's address only, with no `--ice-loopback`:
ICE connects over the namespace LAN. The namespaces are built and deleted by the test
(tests/netns.py); without root the tests are skipped.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import expect

from orbitd.identity import Identity, load_or_create_identity
from tests.lan_daemons import invite, pair, phase, signed
from tests.netns import NetnsLan, NsDaemon, netns_lan_fixture

__all__ = ["netns_lan_fixture"]  # the fixture, used by name
expect.set_options(timeout=15_000)


# --- in network namespaces ---------------------------------------------------------------


@pytest.mark.parametrize("netns_lan", [2], indirect=True)
async def test_invite_accept_code_then_chat_both_ways(netns_lan: NetnsLan, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    alice, bob, alice_fp, bob_fp = await pair(netns_lan, tmp_path)
    try:
        # "Hide my address" does not apply on a LAN: no ICE server there (works offline).
        status, _ = await bob.call("POST", "/api/preferences", {"hide_address": True})
        assert status == 200
        began = loop.time()
        request = await invite(alice, bob, bob_fp, ttl_minutes=5, max_message_length=300)
        assert request == {
            "id": request["id"],
            "name": "alice",
            "fingerprint": alice_fp,
            "verified_before": False,
            "flagged": False,
            "reason": None,
            "ttl_minutes": 5,
            "max_message_length": 300,
            "state": "pending",
        }
        status, accepted = await bob.call("POST", f"/api/nearby/requests/{request['id']}/accept")
        assert status == 200, accepted
        code = accepted["code"]
        assert len(code) == 6 and code.isdigit()
        assert accepted["session"]["role"] == "guest"
        assert accepted["session"]["state"] == "ACTIVE"
        assert accepted["session"]["lan"] == {"name": "alice", "fingerprint": alice_fp}
        await alice.event("lan-accepted", request_id=request["id"])
        typed = loop.time()
        status, opened = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": code}
        )
        assert status == 200, opened
        assert opened["role"] == "host" and opened["session"]["lan"]["fingerprint"] == bob_fp
        ready_a, ready_b = await asyncio.gather(phase(alice, "ready"), phase(bob, "ready"))
        done = loop.time()
        print(
            f"\nLAN session: invite -> ready {done - began:.3f} s "
            f"(code typed -> ready {done - typed:.3f} s)"
        )
        assert ready_a["sas"] and ready_a["sas"] == ready_b["sas"]
        assert ready_a["token"] == ready_b["token"] == request["id"]
        for ready in (ready_a, ready_b):
            assert ready["max_message_length"] == 300 and ready["ttl_minutes"] == 5
            assert 280 <= ready["remaining_seconds"] <= 300
            assert (ready["path"], ready["relay_only"]) == ("lan-direct", False)

        # chat both ways, each delivered
        for sender, receiver, text in ((alice, bob, "hi bob"), (bob, alice, "hi alice")):
            status, sent = await sender.call("POST", "/api/messages", {"text": text})
            assert status == 201, sent
            got = await receiver.event("message")
            assert got["message"]["text"] == text and got["message"]["author"] == "peer"
            await sender.event("message-status", message_id=sent["message"]["message_id"])
        status, body = await alice.call("POST", "/api/messages", {"text": "x" * 301})
        assert (status, body["error"]) == (422, "message_too_long")

        # the code was spent; there is no server to report to
        status, body = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": code}
        )
        assert (status, body["error"]) == (409, "request_closed")
        status, body = await bob.call("POST", "/api/report", {"reason": "spam", "details": "x"})
        assert (status, body["error"]) == (409, "lan_session")

        status, _ = await alice.call("POST", "/api/session/end", {})
        assert status == 200
        ended = await bob.event("session-ended")
        assert ended["reason"] == "manually_ended"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
    spoken = re.compile(rf"(?<![0-9a-f]){code}(?![0-9a-f])")
    for daemon in (alice, bob):  # the code is never logged
        assert not spoken.search(Path(daemon.ready["log"]).read_text())


@pytest.mark.parametrize("netns_lan", [2], indirect=True)
async def test_decline_withdraw_and_a_wrong_code(netns_lan: NetnsLan, tmp_path: Path) -> None:
    alice, bob, _, bob_fp = await pair(netns_lan, tmp_path)
    try:
        # 1. bob declines
        request = await invite(alice, bob, bob_fp)
        status, body = await alice.call("POST", "/api/nearby/invite", {"fingerprint": bob_fp})
        assert (status, body["error"]) == (409, "invite_pending")  # one open invite at a time
        status, body = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": "123456"}
        )
        assert (status, body["error"]) == (409, "not_accepted")
        status, body = await bob.call("POST", f"/api/nearby/requests/{request['id']}/decline")
        assert (status, body) == (200, {"declined": True})
        declined = await alice.event("lan-declined", request_id=request["id"])
        assert declined["reason"] == "declined"
        status, body = await bob.call("POST", f"/api/nearby/requests/{request['id']}/accept")
        assert (status, body["error"]) == (409, "request_closed")

        # 2. alice withdraws her invite before bob answers
        request = await invite(alice, bob, bob_fp)
        status, body = await bob.call("GET", "/api/nearby/requests")
        assert [r["id"] for r in body["incoming"]] == [request["id"]]
        status, body = await alice.call("GET", "/api/nearby/requests")
        assert body["outgoing"]["id"] == request["id"] and body["outgoing"]["state"] == "waiting"
        status, body = await alice.call("DELETE", f"/api/nearby/invite/{request['id']}")
        assert (status, body) == (200, {"cancelled": True})
        gone = await bob.event("lan-request-withdrawn", request_id=request["id"])
        assert gone["reason"] == "withdrawn"
        status, body = await bob.call("GET", "/api/nearby/requests")
        assert body["incoming"] == []

        # 3. bob accepts, then gives up before alice types the code
        request = await invite(alice, bob, bob_fp)
        status, accepted = await bob.call("POST", f"/api/nearby/requests/{request['id']}/accept")
        assert status == 200, accepted
        await alice.event("lan-accepted", request_id=request["id"])
        status, body = await bob.call("GET", "/api/nearby/requests")
        assert body["incoming"][0]["code"] == accepted["code"]  # shown again after a reload
        status, _ = await bob.call("POST", "/api/session/end", {})
        assert status == 200
        declined = await alice.event("lan-declined", request_id=request["id"])
        assert declined["reason"] == "cancelled"

        # 4. bob accepts, then alice gives up: bob's waiting session ends
        request = await invite(alice, bob, bob_fp)
        status, accepted = await bob.call("POST", f"/api/nearby/requests/{request['id']}/accept")
        assert status == 200, accepted
        await alice.event("lan-accepted", request_id=request["id"])
        status, _ = await alice.call("DELETE", f"/api/nearby/invite/{request['id']}")
        assert status == 200
        ended_b = await bob.event("session-ended")
        assert ended_b["reason"] == "peer_aborted"

        # 5. a wrong code: both sides fail with invite_mismatch, nothing passes, code spent
        request = await invite(alice, bob, bob_fp)
        status, accepted = await bob.call("POST", f"/api/nearby/requests/{request['id']}/accept")
        assert status == 200, accepted
        await alice.event("lan-accepted", request_id=request["id"])
        status, body = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": "12345"}
        )
        assert (status, body["error"]) == (422, "invalid_code")  # a typo is not a guess
        wrong = f"{(int(accepted['code']) + 1) % 10**6:06d}"
        status, body = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": wrong}
        )
        assert status == 200, body
        errors = await asyncio.gather(alice.event("error"), bob.event("error"))
        assert [e["code"] for e in errors] == ["invite_mismatch", "invite_mismatch"]
        ended = await asyncio.gather(alice.event("session-ended"), bob.event("session-ended"))
        assert [e["reason"] for e in ended] == ["invite_mismatch", "invite_mismatch"]
        for daemon in (alice, bob):
            status, body = await daemon.call("POST", "/api/messages", {"text": "psst"})
            assert (status, body["error"]) == (409, "session_ended")
            status, state = await daemon.call("GET", "/api/state")
            assert state["session"]["sas"] is None and state["session"]["messages"] == []
        status, body = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": accepted["code"]}
        )
        assert (status, body["error"]) == (409, "request_closed")  # one guess only
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


async def test_forged_and_unknown_senders_are_refused_and_rate_limited(
    netns_lan: NetnsLan, tmp_path: Path
) -> None:
    alice, bob, alice_fp, bob_fp = await pair(netns_lan, tmp_path)
    h3 = netns_lan.hosts[2]
    mallory = await NsDaemon.start(h3, tmp_path / "mallory", "--raw")
    try:
        bob_lan = f"http://{netns_lan.hosts[1].address}:7171"

        async def nonce() -> str:
            status, body = await mallory.raw("GET", f"{bob_lan}/lan/invite/nonce")
            assert status == 200, body
            value: str = body["nonce"]
            return value

        async def refused(body: dict[str, Any]) -> tuple[int, str]:
            status, answer = await mallory.raw("POST", f"{bob_lan}/lan/invite", body)
            return status, answer["error"]

        stranger = Identity.from_private_key(Ed25519PrivateKey.generate())
        stolen = load_or_create_identity(tmp_path / "alice" / "data" / "chatorbit" / "alice")
        assert stolen.fingerprint == alice_fp

        # a key nobody announced
        first = await nonce()
        assert await refused(signed(stranger, to=bob_fp, nonce=first)) == (403, "not_nearby")
        # alice's fingerprint and public key, signed by another key
        forged = signed(stranger, to=bob_fp, nonce=await nonce()) | {
            "fingerprint": alice_fp,
            "public_key": stolen.public_key.hex(),
        }
        assert await refused(forged) == (403, "bad_signature")
        # alice's fingerprint with another public key
        claimed = signed(stranger, to=bob_fp, nonce=await nonce()) | {"fingerprint": alice_fp}
        assert await refused(claimed) == (403, "fingerprint_mismatch")
        # alice's own key, but from another address than the one alice announced
        relayed = signed(stolen, to=bob_fp, nonce=await nonce())
        assert await refused(relayed) == (403, "not_nearby")
        # a spent nonce (replay)
        assert await refused(signed(stolen, to=bob_fp, nonce=first)) == (403, "bad_nonce")
        # six in a minute from one address: the sixth is refused before anything else
        assert await refused(signed(stolen, to=bob_fp, nonce=await nonce())) == (
            429,
            "rate_limited",
        )
        status, body = await bob.call("GET", "/api/nearby/requests")
        assert body == {"incoming": [], "outgoing": None}

        # bad input from the UI gets clear errors
        for request_body, expected in (
            ({"fingerprint": "nope"}, (422, "invalid_fingerprint")),
            ({"fingerprint": "a" * 64}, (404, "not_nearby")),
            ({"fingerprint": bob_fp, "ttl_minutes": 0}, (422, "invalid_ttl_minutes")),
            (
                {"fingerprint": bob_fp, "max_message_length": "x"},
                (422, "invalid_max_message_length"),
            ),
        ):
            status, body = await alice.call("POST", "/api/nearby/invite", request_body)
            assert (status, body["error"]) == expected, body
        status, body = await bob.call("POST", "/api/nearby/requests/AAAAAAAAAAAA/accept")
        assert (status, body["error"]) == (404, "request_not_found")

        # alice herself, from her address, is still welcome
        await invite(alice, bob, bob_fp)
    finally:
        await asyncio.gather(alice.stop(), bob.stop(), mallory.stop())


async def test_an_impostor_under_a_verified_name_cannot_start_a_session(
    netns_lan: NetnsLan, tmp_path: Path
) -> None:
    """bob verified alice; mallory, on another host, calls itself alice with its own key.
    Bob's daemon flags it, refuses its invite (mallory's UI is told why, bob's UI hears
    of the attempt) and will not invite it; the real alice still gets through."""
    alice, bob, alice_fp, bob_fp = await pair(netns_lan, tmp_path)
    h3 = netns_lan.hosts[2]
    mallory = await NsDaemon.start(
        h3,
        tmp_path / "mallory",
        "--profile",
        "mallory",
        "--visible",
        "--",
        "--display-name",
        "alice",
    )
    try:
        status, body = await bob.call("POST", "/api/nearby/verify", {"fingerprint": alice_fp})
        assert status == 201, body
        status, state = await mallory.call("GET", "/api/state")
        mallory_fp = state["fingerprint"]
        assert mallory_fp != alice_fp
        await bob.nearby_until(
            lambda peers: any(
                p["fingerprint"] == mallory_fp and p["reason"] == "known_name_other_key"
                for p in peers
            )
        )
        await mallory.nearby_until(lambda peers: any(p["fingerprint"] == bob_fp for p in peers))
        status, body = await mallory.call("POST", "/api/nearby/invite", {"fingerprint": bob_fp})
        assert (status, body["error"]) == (409, "peer_knows_name_with_other_key"), body
        warned = await bob.event("lan-impostor")
        assert (warned["name"], warned["fingerprint"]) == ("alice", mallory_fp)
        status, body = await bob.call("GET", "/api/nearby/requests")
        assert body["incoming"] == []
        status, body = await bob.call("POST", "/api/nearby/invite", {"fingerprint": mallory_fp})
        assert (status, body["error"]) == (409, "name_verified_with_other_key"), body
        request = await invite(alice, bob, bob_fp)
        assert request["verified_before"] is True and request["fingerprint"] == alice_fp
    finally:
        await asyncio.gather(alice.stop(), bob.stop(), mallory.stop())
