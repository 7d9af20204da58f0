"""The baseline: the least an aiohttp server can do for the same traffic.

`POST /api/tokens/issue` reads the JSON body and answers a random token.
`WS /ws/{room}` pairs the sockets that open the same path and forwards each
text frame, unread, to the other one. `GET /stats` counts the open sockets.

Run as `python -m bench.baseline_server --port 0`; it prints
`baseline listening on http://127.0.0.1:PORT` and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal

from aiohttp import WSMsgType, web

ROOMS = web.AppKey("rooms", dict[str, list[web.WebSocketResponse]])


async def issue(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"token": secrets.token_hex(6).upper()})


async def relay(request: web.Request) -> web.WebSocketResponse:
    rooms, room = request.app[ROOMS], request.match_info["room"]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    peers = rooms.setdefault(room, [])
    peers.append(ws)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                for peer in peers:
                    if peer is not ws and not peer.closed:
                        await peer.send_str(msg.data)
    finally:
        peers.remove(ws)
        if not peers:
            del rooms[room]
    return ws


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"open_sockets": sum(map(len, request.app[ROOMS].values()))})


async def serve(port: int) -> None:
    app = web.Application()
    app[ROOMS] = {}
    app.add_routes(
        [
            web.post("/api/tokens/issue", issue),
            web.get("/ws/{room}", relay),
            web.get("/stats", stats),
        ]
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=2.0)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"baseline listening on http://127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="Bare aiohttp relay and JSON handler.")
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
