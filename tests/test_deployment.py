"""The shipped deployment end to end (tests/deployment.py): two daemons with an https://
rendezvous URL, trusting the test's CA through `rendezvous_ca_file`, make and join a session
through nginx, chat both ways and hold a call; one without the CA setting is told clearly;
X-Forwarded-For counts only when nginx sets it; no path (a token) reaches nginx's access log."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from orbitd.ice import use_loopback_only
from tests.coturn import binding_request
from tests.deployment import Topology, deployment
from tests.processes import EVENT_WAIT, Daemon, start_daemon
from tests.test_orbitd_call import browser_link, call_state, frames_arrive

__all__ = ["deployment"]  # the fixture
pytestmark = pytest.mark.asyncio(loop_scope="module")
ISSUE = {"validity_option": "day", "ttl_minutes": 10, "max_message_length": 2000}


async def start_trusting(topology: Topology, tmp_path: Path, name: str, *flags: str) -> Daemon:
    return await start_daemon(
        tmp_path, name, topology.url, "--rendezvous-ca-file", str(topology.pki.ca_file), *flags
    )


@pytest_asyncio.fixture(loop_scope="module")
async def pair(
    deployment: Topology, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    request.addfinalizer(use_loopback_only())  # the browser stand-in of the call
    alice, bob = await asyncio.gather(
        start_trusting(
            deployment, tmp_path, "alice", "--video-source", "testpattern", "--audio-source", "tone"
        ),
        start_trusting(deployment, tmp_path, "bob", "--ice-relay-only"),
    )
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())


async def test_two_daemons_chat_and_call_through_nginx_tls_and_coturn(
    deployment: Topology, pair: tuple[Daemon, Daemon]
) -> None:
    alice, bob = pair
    status, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
    assert status == 201, created
    status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    assert status == 200, joined
    ready = await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
    # Bob hides his address: the connection runs through the shipped coturn, with the
    # credentials the instances minted.
    assert [(s["path"], s["relay_only"]) for s in ready] == [
        ("relayed", False),
        ("relayed", True),
    ]

    status, sent = await alice.call("POST", "/api/messages", {"text": "Hello over TLS"})
    assert status == 201
    assert (await bob.event("message"))["message"]["text"] == "Hello over TLS"
    await alice.event(
        "message-status", message_id=sent["message"]["message_id"], status="delivered"
    )
    status, _ = await bob.call("POST", "/api/messages", {"text": "Hi back"})
    assert status == 201
    assert (await alice.event("message"))["message"]["text"] == "Hi back"

    status, _ = await alice.call("POST", "/api/call")
    assert status == 200
    await bob.event("call-incoming")
    status, _ = await bob.call("POST", "/api/call/accept")
    assert status == 200
    await call_state(bob, "active")
    pc, counters = await browser_link(bob)
    await frames_arrive(counters)
    assert counters == sorted(counters) and counters[-1] > counters[0]
    await pc.close()
    status, _ = await bob.call("POST", "/api/call/hangup")
    assert status == 200

    # nginx's access log shows the requests, never a path (the token is in them).
    access = (deployment.shared / "nginx" / "access.log").read_text()
    assert " POST 200 " in access  # (a socket is logged when it closes)
    token, secret = created["invite"].split("-", 1)
    assert token not in access and "/api/" not in access

    # No log of the deployment holds the chat, the invite's secret or the TURN secret.
    logs = [
        *deployment.root.glob("rendezvous-*.log"),
        *deployment.root.glob("coturn/*.log"),
        *(deployment.shared / "nginx").glob("*.log"),
        alice.process.log_path,
        bob.process.log_path,
    ]
    assert len(logs) >= 8  # two instances, coturn's two, nginx's three, two daemons
    turn_secret = deployment.instance_env["ORBIT_RENDEZVOUS_TURN_SHARED_SECRET"]
    for path in logs:
        text = path.read_text(errors="replace")
        for private in ("Hello over TLS", "Hi back", secret, turn_secret):
            assert private not in text, (path.name, private)


async def test_a_daemon_without_the_ca_setting_is_told_what_to_set(
    deployment: Topology, tmp_path: Path
) -> None:
    carol = await start_daemon(tmp_path, "carol", deployment.url)
    try:
        status, error = await carol.call("POST", "/api/tokens", {"ttl_minutes": 60})
    finally:
        await carol.close()
    assert (status, error["error"]) == (502, "rendezvous_untrusted")
    assert "rendezvous_ca_file" in error["reason"] and deployment.url in error["reason"]


async def issue_until_refused(
    url: str, local_address: str, forged: str, trust: ssl.SSLContext | bool = True
) -> list[int]:
    """Token issues from `local_address`, each forging another X-Forwarded-For (`forged`
    and a number), until one is refused (at most 20): their statuses."""
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(local_addr=(local_address, 0), ssl=trust)
    async with aiohttp.ClientSession(connector=connector) as http:
        for n in range(1, 21):
            headers = {"X-Forwarded-For": f"{forged}.{n}"}
            async with http.post(url + "/api/tokens/issue", json=ISSUE, headers=headers) as got:
                statuses.append(got.status)
            if got.status == 429:
                break
    return statuses


def token_limited(topology: Topology) -> set[str]:
    """The addresses the instances logged as refused a token (the rate limit's key)."""
    return {
        line["ip"]
        for name in topology.instances
        for line in topology.log(name)
        if line.get("msg") == "rate limited" and line.get("limit") == "token"
    }


async def test_x_forwarded_for_is_believed_only_from_nginx(deployment: Topology) -> None:
    limit = 10  # tokens one address may issue in an hour (the default), shared in Redis
    # Through nginx from 127.0.0.3, forging another address each time: nginx replaces the
    # header with the client's own address, believed because nginx connects from 127.0.0.2
    # (the instances' trusted_proxies): the 11th is refused, counted as 127.0.0.3.
    trusting = ssl.create_default_context(cafile=str(deployment.pki.ca_file))
    through_nginx = await issue_until_refused(deployment.url, "127.0.0.3", "203.0.113", trusting)
    assert through_nginx == [200] * limit + [429]
    # Straight to an instance from 127.0.0.4, forging the same way: not from the proxy, so
    # the header is ignored and the address itself counts.
    instance = f"http://127.0.0.1:{deployment.instance_ports['a']}"
    direct = await issue_until_refused(instance, "127.0.0.4", "198.51.100")
    assert direct == [200] * limit + [429]
    refused = token_limited(deployment)
    assert {"127.0.0.3", "127.0.0.4"} <= refused
    assert not any(ip.startswith(("203.0.113.", "198.51.100.", "127.0.0.2")) for ip in refused)


async def test_coturn_answers_over_tls_with_the_certificate(deployment: Topology) -> None:
    """The shipped coturn's `turns:` port: TLS with the server's certificate, and STUN in it."""
    trusting = ssl.create_default_context(cafile=str(deployment.pki.ca_file))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", deployment.turn_tls_port, ssl=trusting
    )
    try:
        request, transaction = binding_request()
        writer.write(request)
        header = await asyncio.wait_for(reader.readexactly(20), EVENT_WAIT)
    finally:
        writer.close()
    assert header[:2] == b"\x01\x01" and header[8:20] == transaction  # Binding success


async def test_the_site_hides_metrics_and_nginx_s_version_and_asks_for_https(
    deployment: Topology,
) -> None:
    trusting = ssl.create_default_context(cafile=str(deployment.pki.ca_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as http:
        async with http.get(deployment.url + "/healthz") as health:
            assert health.status == 200
            assert health.headers["Server"] == "nginx"  # no version
            assert health.headers["Strict-Transport-Security"].startswith("max-age=")
        async with http.get(deployment.url + "/metrics") as metrics:
            assert metrics.status == 404  # scraped on each instance's own port
        instance = f"http://127.0.0.1:{deployment.instance_ports['a']}/metrics"
        async with http.get(instance) as metrics:
            assert metrics.status == 200
        plain = f"http://127.0.0.1:{deployment.http_port}/api/tokens/issue"
        async with http.post(plain, json=ISSUE, allow_redirects=False) as redirected:
            assert redirected.status == 308  # to https, the method kept; nothing proxied
            assert redirected.headers["Location"].startswith("https://")
