"""The daemon's event loop (setting `event_loop`): asyncio by default; uvloop when asked
for, where a session and a file work as on asyncio; a wrong or missing loop is refused
with its reason."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from orbitd import event_loop
from orbitd.settings import SettingsError, load_config
from tests.files_client import MiB, download, expected_sha256, file_event, offer, upload
from tests.processes import Daemon, start_daemon, start_rendezvous
from tests.test_orbitd_chat import connect


def test_asyncio_is_the_default_and_a_wrong_loop_is_refused() -> None:
    assert load_config(environ={}).event_loop == "asyncio"
    assert load_config(environ={"ORBIT_EVENT_LOOP": "uvloop"}).event_loop == "uvloop"
    with pytest.raises(SettingsError, match="event_loop: asyncio or uvloop"):
        load_config(environ={"ORBIT_EVENT_LOOP": "fast"})


def test_uvloop_missing_is_refused_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else found(name, *a)
    )
    assert not event_loop.available("uvloop") and event_loop.available("asyncio")
    with pytest.raises(SettingsError, match=r"pip install 'chatorbit\[uvloop\]'"):
        load_config(environ={"ORBIT_EVENT_LOOP": "uvloop"})


def loop_logged(daemon: Daemon) -> list[str]:
    lines = (json.loads(x) for x in daemon.process.log_path.read_text().splitlines() if x)
    return [x["loop"] for x in lines if x.get("msg") == "event loop"]


async def test_two_daemons_on_uvloop_chat_and_move_a_file(tmp_path: Path) -> None:
    rendezvous, url = await start_rendezvous(tmp_path)
    uv = {"ORBIT_EVENT_LOOP": "uvloop"}
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", url, environ=uv), start_daemon(tmp_path, "bob", url)
    )
    try:
        assert loop_logged(alice) == ["uvloop"] and loop_logged(bob) == ["asyncio"]
        await connect(alice, bob)
        status, _ = await alice.call("POST", "/api/messages", {"text": "on uvloop"})
        assert status == 201
        assert (await bob.event("message"))["message"]["text"] == "on uvloop"
        size = 6 * MiB + 3
        sent = await offer(alice, "uv.bin", size)
        await file_event(bob, sent["id"], "offered")
        uploading = asyncio.create_task(upload(alice, sent["id"], size))
        assert (await bob.call("POST", f"/api/files/{sent['id']}/accept"))[0] == 200
        assert await download(bob, sent["id"]) == (200, expected_sha256(size), size)
        assert await uploading == size
    finally:
        await asyncio.gather(alice.close(), bob.close())
        await rendezvous.stop()
