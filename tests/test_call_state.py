"""Calls as a pure state machine: two of them, the frames between them delivered by
hand as they would cross the data channel; what each asks for is recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orbitcore.protocol.frames import ProtocolError, dispatch
from orbitcore.protocol.peer import (
    CHANNEL,
    Ack,
    CallAccept,
    CallDecline,
    CallFrame,
    CallHangup,
    CallInvite,
    CallMute,
)
from orbitd.call_state import (
    CallControl,
    CallError,
    CallState,
    Notify,
    Output,
    ScheduleTick,
    SendToPeer,
    SetMuted,
    StateChanged,
    new_call_id,
)

ALICE_ID = "1" * 32
BOB_ID = "f" * 32


def ids(*values: str) -> Iterator[str]:
    yield from values


def control(*values: str) -> CallControl:
    it = ids(*values)
    return CallControl(new_id=lambda: next(it))


def name(out: Output) -> str:
    if isinstance(out, SendToPeer):
        return f"send {out.frame.TYPE}"
    if isinstance(out, StateChanged):
        return f"state {out.state.value}"
    if isinstance(out, Notify):
        event = out.event
        return f"notify {event['type']}" + (f" {event['reason']}" if "reason" in event else "")
    if isinstance(out, ScheduleTick):
        return f"tick at {out.at:g}"
    if isinstance(out, CallError):
        return f"error {out.code}"
    if isinstance(out, SetMuted):
        return f"mute {out.kind} {out.muted}"
    return type(out).__name__


def names(outputs: list[Output]) -> list[str]:
    return [name(o) for o in outputs]


def frames(outputs: list[Output]) -> list[dict[str, Any]]:
    return [json.loads(o.frame.encode()) for o in outputs if isinstance(o, SendToPeer)]


def deliver(to: CallControl, outputs: list[Output], now: float = 0) -> list[Output]:
    """The frames as they cross the data channel: encoded, read back, handed over."""
    got: list[Output] = []
    for out in outputs:
        if isinstance(out, SendToPeer):
            frame = CHANNEL.parse(out.frame.encode())
            assert isinstance(frame, CallFrame) and frame == out.frame
            got += to.handle(frame, now)
    return got


def connected(alice: CallControl, bob: CallControl, now: float = 0) -> None:
    """Alice calls, Bob accepts: both connecting."""
    deliver(bob, alice.call(now), now)
    deliver(alice, bob.accept(now + 1), now + 1)
    assert alice.state is bob.state is CallState.CONNECTING


def test_call_accept_hang_up_and_call_again() -> None:
    alice, bob = control(ALICE_ID, "2" * 32), control()
    invite = alice.call(0)
    assert names(invite) == ["send call-invite", "state outgoing", "tick at 45"]
    assert frames(invite) == [{"type": "call-invite", "call_id": ALICE_ID}]
    ringing = deliver(bob, invite, 1)
    assert names(ringing) == ["state incoming", "tick at 51", "notify call-incoming"]

    accepted = bob.accept(5)
    assert names(accepted) == ["send call-accept", "StartMedia", "state connecting", "tick at 35"]
    assert frames(accepted) == [{"type": "call-accept", "call_id": ALICE_ID}]
    assert names(deliver(alice, accepted, 5)) == ["StartMedia", "state connecting", "tick at 35"]

    assert names(alice.media_flowing(6)) == ["state active"]
    assert names(bob.media_flowing(6)) == ["state active"]
    assert alice.media_flowing(7) == []
    assert alice.tick(35) == []  # media flows: no connect timeout

    hangup = alice.hang_up(60)
    assert names(hangup) == [
        "send call-hangup",
        "StopMedia",
        "state idle",
        "notify call-ended hung_up",
    ]
    assert names(deliver(bob, hangup, 60)) == [
        "StopMedia",
        "state idle",
        "notify call-ended peer_hung_up",
    ]
    assert alice.call_id is None and bob.call_id is None

    again = alice.call(70)
    assert frames(again) == [{"type": "call-invite", "call_id": "2" * 32}]
    assert names(deliver(bob, again, 70))[0] == "state incoming"


def test_decline_returns_both_to_idle_and_a_call_after_works() -> None:
    alice, bob = control(ALICE_ID, BOB_ID), control()
    invite = alice.call(0)
    deliver(bob, invite)
    declined = bob.decline(2)
    assert names(declined) == ["send call-decline", "state idle", "notify call-ended declined"]
    assert frames(declined) == [{"type": "call-decline", "call_id": ALICE_ID, "reason": "declined"}]
    assert names(deliver(alice, declined, 2)) == ["state idle", "notify call-ended peer_declined"]
    assert alice.tick(45) == [] and bob.tick(50) == []  # no timer outlives its call

    deliver(bob, alice.call(3))
    assert bob.state is CallState.INCOMING and bob.call_id == BOB_ID


def test_hanging_up_a_ringing_call_cancels_it_at_the_peer() -> None:
    alice, bob = control(ALICE_ID), control()
    deliver(bob, alice.call(0))
    cancel = alice.hang_up(1)
    assert names(cancel) == ["send call-hangup", "state idle", "notify call-ended hung_up"]
    assert names(deliver(bob, cancel, 1)) == ["state idle", "notify call-ended peer_cancelled"]
    # Hanging up a call that rings here is declining it.
    deliver(bob, control(BOB_ID).call(2), 2)
    assert frames(bob.hang_up(3)) == [
        {"type": "call-decline", "call_id": BOB_ID, "reason": "declined"}
    ]


@pytest.mark.parametrize("first", ["alice's invite first", "bob's invite first"])
def test_both_call_at_once_and_end_up_in_one_call(first: str) -> None:
    alice, bob = control(ALICE_ID), control(BOB_ID)  # ALICE_ID < BOB_ID: alice's wins
    a_invite, b_invite = alice.call(0), bob.call(0)
    if first == "alice's invite first":
        b_got = deliver(bob, a_invite, 1)
        a_got = deliver(alice, b_invite, 1)
    else:
        a_got = deliver(alice, b_invite, 1)
        b_got = deliver(bob, a_invite, 1)
    assert a_got == []  # alice's invite has the lower id: she ignores bob's
    # bob's lost: he takes alice's as if it rang, and accepts it
    assert names(b_got) == ["send call-accept", "StartMedia", "state connecting", "tick at 31"]
    assert frames(b_got) == [{"type": "call-accept", "call_id": ALICE_ID}]
    a_accepted = deliver(alice, b_got, 2)
    assert names(a_accepted) == ["StartMedia", "state connecting", "tick at 32"]
    assert alice.call_id == bob.call_id == ALICE_ID
    assert alice.state is bob.state is CallState.CONNECTING
    assert names(alice.media_flowing(3)) == ["state active"]
    assert alice.tick(45) == []  # alice's ring timer went with her outgoing call
    hangup = bob.hang_up(10)
    assert names(deliver(alice, hangup, 10))[-1] == "notify call-ended peer_hung_up"


def test_equal_call_ids_still_make_one_call() -> None:
    alice, bob = control(ALICE_ID), control(ALICE_ID)
    a_invite, b_invite = alice.call(0), bob.call(0)
    a_got, b_got = deliver(alice, b_invite), deliver(bob, a_invite)
    assert names(a_got)[:2] == names(b_got)[:2] == ["send call-accept", "StartMedia"]
    assert deliver(alice, b_got) == [] and deliver(bob, a_got) == []  # already in it
    assert alice.state is bob.state is CallState.CONNECTING


def test_an_unanswered_invite_times_out_after_45_seconds() -> None:
    alice, bob = control(ALICE_ID), control()
    deliver(bob, alice.call(100), 100)
    assert alice.tick(144.9) == []
    timeout = alice.tick(145)
    assert names(timeout) == ["send call-hangup", "state idle", "notify call-ended no_answer"]
    assert frames(timeout) == [{"type": "call-hangup", "call_id": ALICE_ID, "reason": "no_answer"}]
    assert names(deliver(bob, timeout, 145)) == ["state idle", "notify call-ended no_answer"]


def test_the_ringing_side_gives_up_by_itself_if_the_withdrawal_is_lost() -> None:
    bob = control()
    bob.handle(CallInvite(ALICE_ID), 0)
    assert bob.tick(45) == []  # the caller withdraws first, normally
    assert names(bob.tick(50)) == ["state idle", "notify call-ended no_answer"]


def test_an_accept_that_crosses_the_timeout_is_an_error_naming_the_call() -> None:
    alice, bob = control(ALICE_ID), control()
    deliver(bob, alice.call(0))
    timeout = alice.tick(45)
    accept = bob.accept(45)  # at the same moment
    got = deliver(alice, accept, 45)
    assert got == [
        CallError(
            "unknown_call",
            f"A call-accept for call '{ALICE_ID}', which is not the call here (state idle).",
            CallAccept(ALICE_ID),
        )
    ]
    assert names(deliver(bob, timeout, 45)) == [
        "StopMedia",
        "state idle",
        "notify call-ended no_answer",
    ]


def test_the_session_ending_during_a_call_stops_the_media() -> None:
    alice, bob = control(ALICE_ID), control()
    connected(alice, bob)
    alice.media_flowing(2)
    out = alice.ended(3)
    assert names(out) == ["StopMedia", "state idle", "notify call-ended session_ended"]
    assert frames(out) == []  # nobody left to tell
    assert alice.ended(4) == []
    assert names(bob.ended(3)) == ["StopMedia", "state idle", "notify call-ended session_ended"]
    ringing = control()
    ringing.handle(CallInvite(BOB_ID), 0)
    assert names(ringing.ended(1)) == ["state idle", "notify call-ended session_ended"]


def test_media_that_never_flows_hangs_up() -> None:
    alice, bob = control(ALICE_ID), control()
    connected(alice, bob)
    out = alice.tick(31)
    assert names(out) == [
        "send call-hangup",
        "StopMedia",
        "state idle",
        "notify call-ended media_failed",
    ]
    assert names(deliver(bob, out, 31))[-1] == "notify call-ended media_failed"  # says why


def test_a_call_waits_for_a_rebuilt_connection_then_gives_up_with_media_failed() -> None:
    alice, bob = control(ALICE_ID), control()
    connected(alice, bob)
    alice.media_flowing(2)
    assert names(alice.link_lost(10)) == ["tick at 40"]
    assert alice.link_lost(11) == []  # once per outage
    assert alice.tick(39) == []
    alice.link_back(20)
    assert alice.tick(45) == [] and alice.state is CallState.ACTIVE  # it came back in time
    alice.link_lost(50)
    out = alice.tick(80)
    assert names(out) == [
        "send call-hangup",
        "StopMedia",
        "state idle",
        "notify call-ended media_failed",
    ]
    assert names(deliver(bob, out, 81))[-1] == "notify call-ended media_failed"
    assert alice.link_lost(90) == [] and alice.tick(200) == []  # no call, nothing to do


def test_an_invite_while_busy_is_declined_as_busy() -> None:
    alice, bob, carol = control(ALICE_ID), control(), control(BOB_ID)
    deliver(bob, alice.call(0))
    busy = deliver(bob, carol.call(1), 1)
    assert frames(busy) == [{"type": "call-decline", "call_id": BOB_ID, "reason": "busy"}]
    assert names(deliver(carol, busy, 1)) == ["state idle", "notify call-ended busy"]
    assert bob.state is CallState.INCOMING and bob.call_id == ALICE_ID
    # The same invite again (a resend) changes nothing.
    assert deliver(bob, [SendToPeer(CallInvite(ALICE_ID))]) == []


def test_mute_is_applied_here_and_shown_there() -> None:
    alice, bob = control(ALICE_ID), control()
    connected(alice, bob)
    out = alice.mute("audio", True, 2)
    assert out[0] == SetMuted("audio", True)
    assert frames(out) == [
        {"type": "call-mute", "call_id": ALICE_ID, "kind": "audio", "muted": True}
    ]
    assert alice.mute("audio", True, 3) == []
    assert deliver(bob, out) == [
        Notify({"type": "call-peer-muted", "call_id": ALICE_ID, "kind": "audio", "muted": True})
    ]
    assert deliver(bob, out) == []
    assert names(alice.mute("smell", True, 4)) == ["error bad_kind"]
    alice.hang_up(5)
    assert names(alice.mute("video", True, 6)) == ["error no_call"]
    assert alice.muted == {"audio": False, "video": False}


def test_errors_echo_what_they_answer() -> None:
    alice = control(ALICE_ID)
    assert alice.accept(0) == [
        CallError("no_incoming_call", "No call is ringing.", {"action": "accept"})
    ]
    assert names(alice.decline(0)) == ["error no_incoming_call"]
    assert names(alice.hang_up(0)) == ["error no_call"]
    frame: CallFrame
    for frame in (
        CallAccept(BOB_ID),
        CallDecline(BOB_ID, "declined"),
        CallHangup(BOB_ID, "hung_up"),
        CallMute(BOB_ID, "audio", True),
    ):
        (error,) = alice.handle(frame, 0)
        assert isinstance(error, CallError) and error.code == "unknown_call"
        assert error.answering == frame and BOB_ID in error.message
    with pytest.raises(ProtocolError, match="not expected here"):
        dispatch(alice, Ack("m1"), 0)  # not a call frame: not the call's to handle
    alice.call(0)
    assert names(alice.call(1)) == ["error busy"]
    (stale,) = alice.handle(CallAccept(BOB_ID), 1)
    assert isinstance(stale, CallError) and "state outgoing" in stale.message


def test_call_ids_are_128_random_bits_in_hex() -> None:
    made = {new_call_id() for _ in range(50)}
    assert len(made) == 50
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in made)


def test_calling_while_their_call_rings_here_answers_it() -> None:
    from orbitd.call_state import CallControl, CallState, SendToPeer

    alice, bob = CallControl(new_id=lambda: "a" * 32), CallControl(new_id=lambda: "b" * 32)
    invite = next(o for o in alice.call(0.0) if isinstance(o, SendToPeer)).frame
    bob.handle(invite, 0.1)
    assert bob.state is CallState.INCOMING
    out = bob.call(0.2)  # Bob presses call too, a moment too late for glare
    frames = [o.frame for o in out if isinstance(o, SendToPeer)]
    assert frames == [CallAccept("a" * 32)]
    assert str(bob.state) == "connecting"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "call-invite", "call_id": "not hex"}, "well-formed"),
        ({"type": "call-invite", "call_id": "A" * 32}, "well-formed"),  # lowercase only
        ({"type": "call-invite"}, "needs `call_id`"),
        ({"type": "call-decline", "call_id": BOB_ID, "reason": "bored"}, '"declined"'),
        ({"type": "call-hangup", "call_id": BOB_ID}, "needs `reason`"),
        ({"type": "call-mute", "call_id": BOB_ID, "kind": "smell", "muted": True}, "audio"),
        ({"type": "call-mute", "call_id": BOB_ID, "kind": "audio", "muted": 1}, "true or false"),
    ],
)
def test_malformed_call_frames_never_reach_the_machine(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason) as refused:
        CHANNEL.parse(json.dumps(body))
    assert refused.value.frame_type == body["type"]
