"""An idle daemon has not loaded what only a session, LAN mode or an invite needs.

This is the guard of the idle daemon's memory (`make bench` measures the RSS
itself): the daemon runs as `python -m orbitd` does, with LAN mode allowed (the
default) but not visible (the default: nothing is sent on the LAN), its UI logged
in, listening to events and loading its pages; when it stops, it writes the
modules it had loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp

from .processes import spawn

# Runs the daemon as `python -m orbitd`, and on exit writes `sys.modules` to $MODULES_OUT.
LAUNCHER = """
import atexit, json, os, sys
atexit.register(
    lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules)))
)
from orbitd.cli import main
sys.exit(main())
"""
# What a session, LAN mode or a drawn invite loads, and nothing else does.
HEAVY = ("aiortc", "aioice", "av", "cryptography", "spake2", "segno", "zeroconf", "ifaddr")
UI_GETS = (
    "/",
    "/session",
    "/help",
    "/api/state",
    "/api/preferences",
    "/api/nearby",
    "/api/nearby/visibility",
)


def top_level(modules: list[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in modules}


async def test_an_idle_daemon_with_its_ui_open_loads_no_session_lan_or_qr_code(
    tmp_path: Path,
) -> None:
    out = tmp_path / "modules.json"
    env = os.environ | {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "MODULES_OUT": str(out),
    }
    flags = ["--port", "0", "--rendezvous", "http://127.0.0.1:9"]
    process = await spawn(["-c", LAUNCHER, *flags], tmp_path / "orbitd.log", env)
    try:
        link = process.ready_line.split()[-1]
        base = link.split("/login")[0]
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(headers={"Origin": base}, cookie_jar=jar) as http:
            async with http.get(link, allow_redirects=False) as response:
                assert response.status == 303
            async with http.ws_connect(base + "/api/events") as ws:
                first = await ws.receive_json(timeout=10)
                assert first["type"] == "state"
                for path in UI_GETS:
                    async with http.get(base + path) as response:
                        assert response.status == 200, path
                async with http.get(base + "/api/invite.svg") as response:
                    assert response.status == 404  # no session, so no invite to draw
    finally:
        assert await process.stop() == 0
    loaded = top_level(json.loads(out.read_text()))
    assert "orbitd" in loaded and "jinja2" in loaded  # it ran, and rendered its pages
    assert sorted(loaded.intersection(HEAVY)) == []
