"""A real coturn checks the rendezvous's TURN credentials: a fresh one allocates a relay
that carries data; an expired one and a forged one (wrong secret) are refused with 401."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from rendezvous.turn import mint
from tests.coturn import Coturn
from tests.processes import start_rendezvous


class Received(asyncio.DatagramProtocol):
    """Collects datagrams."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


async def joined_ice(tmp_path: Path, coturn: Coturn) -> dict[str, Any]:
    """Issue a token at a real rendezvous process set up for `coturn`, join it, and
    return the join response (with its `ice_servers`)."""
    process, url = await start_rendezvous(
        tmp_path,
        "--turn-urls",
        f"{coturn.turn_url},{coturn.turn_tcp_url}",
        "--stun-urls",
        coturn.stun_url,
        "--turn-credential-ttl-seconds",
        "600",
        "--log-level",
        "debug",
        # (a flag for brevity; the README advises the environment for a real secret)
        f"--turn-shared-secret={coturn.secret}",  # `=`: a secret may start with "-"
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/api/tokens/issue", json={}) as issued:
                token = (await issued.json())["token"]
            body = {"token": token, "client_identity": "host-identity-for-coturn"}
            async with http.post(url + "/api/tokens/join", json=body) as joined:
                answer: dict[str, Any] = await joined.json()
    finally:
        await process.stop()
    logged = process.log_path.read_text()
    assert "joined" in logged  # the log is there, and holds no secret
    turn = answer["ice_servers"][0]
    for secret in (coturn.secret, turn["credential"], turn["username"]):
        assert secret not in logged
    return answer


async def allocate(coturn: Coturn, username: str, password: str, transport: str = "udp") -> Any:
    turn, _ = await create_turn_endpoint(
        Received,
        server_addr=(coturn.host, coturn.port),
        username=username,
        password=password,
        transport=transport,
    )
    return turn


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_credentials_minted_by_the_rendezvous_allocate_a_relay_that_carries_data(
    tmp_path: Path, coturn: Coturn, transport: str
) -> None:
    answer = await joined_ice(tmp_path, coturn)
    server = answer["ice_servers"][0]
    assert coturn.turn_url in server["urls"]
    turn = await allocate(coturn, server["username"], server["credential"], transport)
    try:
        relayed = turn.get_extra_info("sockname")
        assert relayed[0] == "127.0.0.1"
        loop = asyncio.get_running_loop()
        peer_transport, peer = await loop.create_datagram_endpoint(
            Received, local_addr=("127.0.0.1", 0)
        )
        try:
            peer_addr = peer_transport.get_extra_info("sockname")
            turn.sendto(b"through the relay", peer_addr)
            data, source = await asyncio.wait_for(peer.queue.get(), 10)
            assert data == b"through the relay"
            assert source == tuple(relayed)  # it came from the relayed address
        finally:
            peer_transport.close()
    finally:
        turn.close()


async def test_expired_credentials_are_refused(coturn: Coturn) -> None:
    stale = mint(
        coturn.secret,
        600,
        datetime.now(UTC) - timedelta(hours=1),  # expired 50 minutes ago
        turn_urls=[coturn.turn_url],
    )
    assert stale is not None
    server = stale.ice_servers[0]
    assert server.username is not None and server.credential is not None
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(coturn, server.username, server.credential)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_forged_credentials_are_refused(coturn: Coturn) -> None:
    now = datetime.now(UTC)
    same_id = "same-random-id"
    forged = mint("not-the-secret", 600, now, turn_urls=[coturn.turn_url], make_id=lambda: same_id)
    assert forged is not None
    server = forged.ice_servers[0]
    assert server.username is not None and server.credential is not None
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(coturn, server.username, server.credential)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    # The same user name with the right secret is accepted: the secret made the difference.
    right = mint(coturn.secret, 600, now, turn_urls=[coturn.turn_url], make_id=lambda: same_id)
    assert right is not None
    good = right.ice_servers[0]
    assert good.username == server.username
    assert good.username is not None and good.credential is not None
    (await allocate(coturn, good.username, good.credential)).close()
