"""A hostile peer on the data channel of a real daemon: garbage, unknown types, wrong
member types, deep nesting, lone surrogates. Each is answered with one `error` frame
(an `error` never), logged as `protocol_error` without its content, and the chat
goes on afterwards."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.processes import EVENT_WAIT, PYTHON, Daemon, start_daemon, start_rendezvous

MARKER = "Zebra-Quokka-7731"  # content that must never reach a log


@dataclass
class Hostile:
    proc: asyncio.subprocess.Process
    ready: dict[str, Any]

    async def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        assert line, "the hostile peer exited"
        message: dict[str, Any] = json.loads(line)
        return message

    async def received(self) -> dict[str, Any]:
        """The next data-channel frame the daemon sent us (UI events of ours skipped)."""
        async with asyncio.timeout(EVENT_WAIT):
            while True:
                message = await self._line()
                if "received" in message:
                    frame: dict[str, Any] = json.loads(message["received"])
                    return frame

    async def event(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(EVENT_WAIT):
            while True:
                message = await self._line()
                if message.get("event", {}).get("type") == kind:
                    event: dict[str, Any] = message["event"]
                    return event

    def tell(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.tell({"cmd": "quit"})
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def hostile_guest(
    tmp_path: Path, url: str, invite: str, environ: dict[str, str] | None = None
) -> Hostile:
    log = (tmp_path / "hostile.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "tests.hostile_peer",
        url,
        invite,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        env=os.environ | {"XDG_DATA_HOME": str(tmp_path / "hostile")} | (environ or {}),
    )
    log.close()
    hostile = Hostile(proc, {})
    async with asyncio.timeout(30):
        while "ready" not in (message := await hostile._line()):
            pass
    hostile.ready = message
    return hostile


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    rendezvous, url = await start_rendezvous(tmp_path)
    alice = await start_daemon(tmp_path, "alice", url)
    yield alice, url
    await alice.close()
    await rendezvous.stop()


async def meet(
    tmp_path: Path, alice: Daemon, url: str, environ: dict[str, str] | None = None
) -> Hostile:
    status, created = await alice.call(
        "POST", "/api/tokens", {"validity_option": "day", "ttl_minutes": 60}
    )
    assert status == 201, created
    # Without `reconnect`: a hostile peer that does not answer pings is not rebuilt.
    environ = {"ORBITD_ANNOUNCE_FEATURES": "chat,calls"} | (environ or {})
    hostile = await hostile_guest(tmp_path, url, created["invite"], environ)
    await alice.phase("ready")
    return hostile


async def chat_still_works(alice: Daemon, hostile: Hostile) -> None:
    status, sent = await alice.call("POST", "/api/messages", {"text": "still there?"})
    assert status == 201
    while (await hostile.received())["type"] != "message":
        pass
    await alice.event(
        "message-status", message_id=sent["message"]["message_id"], status="delivered"
    )
    hostile.tell({"chat": "yes"})
    assert (await alice.event("message"))["message"]["text"] == "yes"


GARBAGE: list[tuple[str, str | None]] = [  # what is sent, the `in_reply_to` expected
    (f"not json {MARKER}", None),
    ("[1, 2, 3]", None),
    (json.dumps({"kind": "message"}), None),
    (json.dumps({"type": f"teleport-{MARKER}"}), f"teleport-{MARKER}"),
    (json.dumps({"type": "message", "message_id": 5, "encrypted": MARKER}), "message"),
    (json.dumps({"type": "ack", "message_id": MARKER + "\ud800"}), "ack"),
    (json.dumps({"type": "delete", "message_id": "\udfff"}), "delete"),
    (
        json.dumps({"type": "call-mute", "call_id": "0" * 32, "kind": "smell", "muted": 1}),
        "call-mute",
    ),
    (json.dumps({"type": "rtc-candidate", "candidate": {"candidate": MARKER}}), "rtc-candidate"),
    ('{"type": "end", "x": ' + "[" * 5000 + "]" * 5000 + "}", None),
    (json.dumps({"type": "rtc-restart", "attempt": 2**60}), "rtc-restart"),
]


async def test_garbage_is_answered_with_one_error_each_and_the_chat_goes_on(
    tmp_path: Path, daemon: tuple[Daemon, str]
) -> None:
    alice, url = daemon
    hostile = await meet(tmp_path, alice, url)
    try:
        for text, in_reply_to in GARBAGE:
            hostile.tell({"send": text})
            error = await hostile.received()
            assert error["type"] == "error" and error["code"] == "protocol_error", text[:80]
            assert error.get("in_reply_to") == in_reply_to, text[:80]
            assert error["message"]
        # An error is never answered, not even a malformed one: the next answer is the
        # one to the frame after them.
        hostile.tell({"send": json.dumps({"type": "error", "code": "x", "message": "m"})})
        hostile.tell({"send": json.dumps({"type": "error", "code": 5})})
        hostile.tell({"send": json.dumps({"type": "nonsense"})})
        assert (await hostile.received()).get("in_reply_to") == "nonsense"
        # Unreadable text is also shown to the user, once each, as before.
        assert (await alice.event("error"))["code"] == "bad_peer_frame"
        await chat_still_works(alice, hostile)
        status, state = await alice.call("GET", "/api/state")
        assert status == 200 and state["session"]["phase"] == "ready"
    finally:
        await hostile.close()
    log = alice.process.log_path.read_text()
    assert "protocol_error" in log
    assert MARKER not in log  # what the peer sent is never logged


async def test_call_frames_from_a_peer_without_calls_are_refused(
    tmp_path: Path, daemon: tuple[Daemon, str]
) -> None:
    alice, url = daemon
    hostile = await meet(tmp_path, alice, url, {"ORBITD_ANNOUNCE_FEATURES": "chat"})
    try:
        assert hostile.ready["protocol"]["features"] == ["chat"]
        hostile.tell({"send": json.dumps({"type": "call-invite", "call_id": "a" * 32})})
        error = await hostile.received()
        assert (error["code"], error["in_reply_to"]) == ("feature_unavailable", "call-invite")
        status, refused = await alice.call("POST", "/api/call")
        assert (status, refused["error"]) == (409, "feature_unavailable")
        status, state = await alice.call("GET", "/api/state")
        assert state["session"]["call"]["state"] == "idle"
        await chat_still_works(alice, hostile)
    finally:
        await hostile.close()
