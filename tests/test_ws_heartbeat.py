"""Signaling sockets' heartbeats are spread as the sockets' opening times are.

aiohttp rounds a timer longer than the server's `timeout_ceil_threshold` (5 s by default)
up to a whole second of the loop's clock, so every socket opened within one second sends
its ping in one event-loop iteration: with 1,000 sockets opened a second (`bench scale`)
that is a 10-50 ms stall every second, each 30 s. The rendezvous keeps its heartbeat
under the threshold, so each socket's ping falls 30 s after its own last traffic.
"""

from __future__ import annotations

import math

from rendezvous.ws import HEARTBEAT_SECONDS
from tests.conftest import MakeRendezvous, active_session, service
from tests.test_ws_relay import HOST, next_of_type


async def test_a_sockets_heartbeat_is_not_rounded_to_a_whole_second(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous()
    token = await active_session(rv)
    async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        await next_of_type(host, "session-status")
        (server_side,) = service(rv).relay.local_sockets(token)
        # aiohttp's own record of when the next ping is due (read only, in this test)
        when = server_side._heartbeat_when
        assert when is not None
        assert when != math.ceil(when), "the heartbeat was rounded up to a whole second"
        assert server_side._heartbeat == HEARTBEAT_SECONDS
