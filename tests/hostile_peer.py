"""A hostile peer for tests/test_orbitd_hostile_peer.py: a guest that joins with an invite
and completes the real handshake (orbitd's own session code, in a process of its own,
since aiortc's loopback-only ICE patch is process-wide), then puts on the data channel
whatever text the test gives it, unchecked.

JSON lines on stdin/stdout; ``<-`` from the test, ``->`` to it:

    -> {"ready": true, "protocol": {...}}   the chat is verified (the session's snapshot)
    <- {"send": TEXT}                       TEXT as one data-channel message, raw
    <- {"chat": TEXT}                       a real chat message, as orbitd sends one
    -> {"received": TEXT}                   each data-channel message from the daemon
    -> {"event": {...}}                     each UI event of this side's session
    <- {"cmd": "quit"}

Run it as ``python -m tests.hostile_peer RENDEZVOUS_URL INVITE`` from the repository
root (the environment's ORBITD_ANNOUNCE_* hooks apply to it too). With ``--host`` in
place of the invite it is the host instead: it makes the invite and tells it first,

    -> {"invite": INVITE}                   for the daemon under test to join
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from orbitd import session as session_module
from orbitd.manager import Events, SessionManager
from orbitd.settings import Config


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Watch(Events):
    """The UI events of this side, to the test; `ready` once the chat is verified."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = asyncio.get_running_loop().create_future()

    def emit(self, event: dict[str, Any]) -> None:
        say({"event": event})
        session = event.get("session") if event.get("type") == "session" else None
        if session and session.get("phase") == "ready" and not self.ready.done():
            self.ready.set_result(session)
        if event.get("type") == "session-ended" and not self.ready.done():
            self.ready.set_exception(RuntimeError(f"session ended: {event}"))


def record_incoming() -> None:
    """Every data-channel message this side receives goes to the test first."""
    handle = session_module.ChatSession._peer_message

    def recording(self: session_module.ChatSession, text: str) -> None:
        say({"received": text})
        handle(self, text)

    session_module.ChatSession._peer_message = recording  # type: ignore[method-assign]


async def main() -> None:
    url, invite = sys.argv[1], sys.argv[2]
    record_incoming()
    watch = Watch()
    manager = SessionManager(Config(rendezvous=url, ice_loopback=True), watch)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        if invite == "--host":
            created = await manager.create({"validity_option": "day", "ttl_minutes": 60})
            say({"invite": created["invite"]})
        else:
            await manager.join(invite)
        ready = await asyncio.wait_for(watch.ready, 30)
        say({"ready": True, "protocol": ready.get("protocol")})
        session = manager.current()
        while line := await reader.readline():
            command = json.loads(line)
            if "send" in command:
                session.peer.send(command["send"])
            elif "chat" in command:
                session.send_message(command["chat"])
            elif command.get("cmd") == "quit":
                break
    finally:
        await manager.close()


if __name__ == "__main__":
    asyncio.run(main())
