"""The localhost UI's defences, over real HTTP on 127.0.0.1: Host, Origin, login, headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from orbitd.app import create_app
from orbitd.identity import load_or_create_identity
from orbitd.security import CSP, LoginGate
from orbitd.settings import load_config

SECRET = "test-login-secret-" + "x" * 30
SOCKET_PATH = "/api/_test/socket"  # test-only routes: the real API may not have them yet
POST_PATH = "/api/_test/change"
Client = TestClient[web.Request, web.Application]


async def _socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("hello")
    await ws.close()
    return ws


async def _change(request: web.Request) -> web.Response:
    return web.json_response({"changed": True})


async def _cors_leak(request: web.Request) -> web.Response:
    return web.json_response({}, headers={"Access-Control-Allow-Origin": "*"})


async def _crash(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    config = load_config(
        environ={}, overrides={"data_dir": str(tmp_path), "profile": "alice", "lan_enabled": False}
    )
    gate = LoginGate(profile=config.profile, login_secret=SECRET)
    app = create_app(config, load_or_create_identity(tmp_path), gate)
    app.router.add_get(SOCKET_PATH, _socket)
    app.router.add_post(POST_PATH, _change)
    app.router.add_get("/api/_test/cors", _cors_leak)
    app.router.add_get("/api/_test/crash", _crash)
    return await aiohttp_client(app)


def port_of(client: Client) -> int:
    assert client.port is not None
    return client.port


def origin(client: Client) -> str:
    return f"http://127.0.0.1:{port_of(client)}"


async def log_in(client: Client) -> None:
    response = await client.get(f"/login?secret={SECRET}")
    assert response.status == 200  # 303 followed to the index page
    assert "orbit_ui_alice" in {c.key for c in client.session.cookie_jar}


@pytest.fixture
async def logged_in(client: Client) -> Client:
    await log_in(client)
    return client


async def test_health_is_open(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/login?secret=" + SECRET, "/api/state", "/"])
async def test_a_foreign_host_is_refused(logged_in: Client, path: str) -> None:
    for host in ("evil.example", f"evil.example:{port_of(logged_in)}", "127.0.0.1.evil.example"):
        response = await logged_in.get(path, headers={"Host": host}, allow_redirects=False)
        assert response.status == 403, host
        body = await response.json()
        assert body["error"] == "host_not_allowed" and body["reason"]


async def test_loopback_hosts_with_or_without_the_port_are_allowed(client: Client) -> None:
    port = port_of(client)
    for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"LocalHost:{port}", "[::1]"):
        response = await client.get("/healthz", headers={"Host": host})
        assert response.status == 200, host
    wrong_port = await client.get("/healthz", headers={"Host": f"127.0.0.1:{port + 1}"})
    assert wrong_port.status == 403


async def test_the_ui_name_of_this_profile_is_allowed_and_no_other(logged_in: Client) -> None:
    port = port_of(logged_in)
    own = f"alice.orbitd.localhost:{port}"
    for host in (own, "Alice.orbitd.localhost", "alice.orbitd.localhost"):
        response = await logged_in.get("/healthz", headers={"Host": host})
        assert response.status == 200, host
    for host in (
        f"bob.orbitd.localhost:{port}",  # another profile's daemon
        f"x.alice.orbitd.localhost:{port}",
        f"alice.orbitd.localhost.evil.example:{port}",
        f"alice.orbitd.localhost:{port + 1}",
    ):
        response = await logged_in.get("/healthz", headers={"Host": host})
        assert response.status == 403, host
    changed = await logged_in.post(
        POST_PATH, headers={"Host": own, "Origin": f"http://{own}"}, json={}
    )
    assert changed.status == 200
    foreign = await logged_in.post(
        POST_PATH, headers={"Host": own, "Origin": f"http://bob.orbitd.localhost:{port}"}, json={}
    )
    assert foreign.status == 403


async def test_no_cookie_means_401_for_api_and_pages(client: Client) -> None:
    api = await client.get("/api/state")
    assert api.status == 401
    assert (await api.json())["error"] == "login_required"
    paths = ("/", "/static/js/session.js")
    for path in paths:
        page = await client.get(path)
        assert page.status == 401
        assert page.content_type == "text/html"
        assert "login link" in await page.text()
    await log_in(client)  # the same paths exist: a logged-in client gets them
    for path in paths:
        page = await client.get(path)
        assert page.status == 200, path


async def test_a_wrong_cookie_is_not_a_login(client: Client) -> None:
    for value in ("0" * 64, "nope", "é"):
        client.session.cookie_jar.clear()
        response = await client.get("/api/state", headers={"Cookie": f"orbit_ui_alice={value}"})
        assert response.status == 401


async def test_login_link_sets_a_strict_httponly_cookie_and_redirects(client: Client) -> None:
    response = await client.get(f"/login?secret={SECRET}", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.cookies["orbit_ui_alice"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert len(cookie.value) >= 43  # random per login (token_urlsafe(32)), kept in memory
    assert "domain" not in cookie or not cookie["domain"]  # host-only
    assert SECRET not in response.headers["Set-Cookie"]
    state = await client.get("/api/state")
    assert state.status == 200
    assert isinstance(await state.json(), dict)
    index = await client.get("/")
    assert index.status == 200
    text = await index.text()
    assert 'data-page="home"' in text and "alice" in text


async def test_the_login_link_works_once(client: Client) -> None:
    first = await client.get(f"/login?secret={SECRET}", allow_redirects=False)
    assert first.status == 303
    client.session.cookie_jar.clear()  # another browser tries the same link
    second = await client.get(f"/login?secret={SECRET}", allow_redirects=False)
    assert second.status == 403
    assert "orbitd open" in await second.text()
    assert "Set-Cookie" not in second.headers
    assert (await client.get("/api/state")).status == 401


async def test_wrong_secrets_are_refused_and_do_not_spend_the_link(client: Client) -> None:
    for secret in ("", "wrong", "é", SECRET + "x", SECRET[:-1]):
        response = await client.get("/login", params={"secret": secret}, allow_redirects=False)
        assert response.status == 403, secret
    as_json = await client.get(
        "/login?secret=wrong", headers={"Accept": "application/json"}, allow_redirects=False
    )
    assert (await as_json.json())["error"] == "login_refused"
    assert (await client.get(f"/login?secret={SECRET}", allow_redirects=False)).status == 303


async def test_a_logged_in_browser_may_reopen_the_spent_link(logged_in: Client) -> None:
    again = await logged_in.get(f"/login?secret={SECRET}", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/"


async def test_state_changes_need_the_daemons_own_origin(logged_in: Client) -> None:
    port = port_of(logged_in)
    refused = [
        {},  # no Origin at all
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.1:{port + 1}"},  # another local server: same site, not us
        {"Origin": f"https://127.0.0.1:{port}"},
        {"Origin": f"http://127.0.0.1:{port}/"},
    ]
    for headers in refused:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await logged_in.request(method, POST_PATH, headers=headers)
            assert response.status == 403, (method, headers)
            assert (await response.json())["error"] == "origin_not_allowed"
    for allowed in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"):
        response = await logged_in.post(POST_PATH, headers={"Origin": allowed})
        assert response.status == 200, allowed
        assert await response.json() == {"changed": True}


async def test_a_foreign_origin_is_refused_on_reads_too(logged_in: Client) -> None:
    response = await logged_in.get("/api/state", headers={"Origin": "https://evil.example"})
    assert response.status == 403
    preflight = await logged_in.options(
        POST_PATH,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 403
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-")]


async def test_the_origin_check_comes_before_the_login(client: Client) -> None:
    response = await client.post(POST_PATH, headers={"Origin": "https://evil.example"})
    assert response.status == 403
    no_cookie = await client.post(POST_PATH, headers={"Origin": origin(client)})
    assert no_cookie.status == 401


async def test_cross_origin_websocket_is_refused_before_the_upgrade(logged_in: Client) -> None:
    for path in ("/api/events", SOCKET_PATH):
        for headers in ({"Origin": "https://evil.example"}, {}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await logged_in.ws_connect(path, headers=headers)
            assert refused.value.status == 403, (path, headers)
    ws = await logged_in.ws_connect(SOCKET_PATH, headers={"Origin": origin(logged_in)})
    assert await ws.receive_str() == "hello"
    await ws.close()


async def test_websocket_needs_the_login_too(client: Client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(SOCKET_PATH, headers={"Origin": origin(client)})
    assert refused.value.status == 401


async def test_security_headers_on_every_response(logged_in: Client) -> None:
    responses = [
        await logged_in.get("/api/state"),
        await logged_in.get("/"),
        await logged_in.get("/healthz"),
        await logged_in.get("/api/nothing-here"),
        await logged_in.get("/healthz", headers={"Host": "evil.example"}),
        await logged_in.post(POST_PATH, headers={"Origin": "https://evil.example"}),
    ]
    logged_in.session.cookie_jar.clear()
    responses.append(await logged_in.get("/api/state"))
    responses.append(await logged_in.get("/login?secret=spent", allow_redirects=False))
    for response in responses:
        headers = response.headers
        assert headers["X-Frame-Options"] == "DENY", response.url
        assert headers["Content-Security-Policy"] == CSP
        assert "frame-ancestors 'none'" in CSP
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Access-Control-Allow-Origin" not in headers
    api = await logged_in.get("/api/state")
    assert api.headers["Cache-Control"] == "no-store"


async def test_no_cors_header_even_if_a_handler_sets_one(logged_in: Client) -> None:
    response = await logged_in.get("/api/_test/cors", headers={"Origin": origin(logged_in)})
    assert response.status == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


async def test_errors_are_json_without_tracebacks(logged_in: Client) -> None:
    missing = await logged_in.get("/api/nothing-here")
    assert missing.status == 404
    assert (await missing.json())["error"] == "not_found"
    wrong_method = await logged_in.put("/api/state", headers={"Origin": origin(logged_in)})
    assert wrong_method.status == 405
    assert (await wrong_method.json())["error"] == "method_not_allowed"
    crash = await logged_in.get("/api/_test/crash")
    assert crash.status == 500
    text = await crash.text()
    assert "internal_error" in text
    assert "Traceback" not in text and "secret internals" not in text


def test_the_gate_spends_its_secret_once() -> None:
    gate = LoginGate(profile="bob")
    assert gate.cookie_name == "orbit_ui_bob"
    assert len(gate.login_secret) >= 43  # token_urlsafe(32)
    assert gate.login_path() == f"/login?secret={gate.login_secret}"
    assert not gate.redeem("nope")
    assert not gate.used
    assert gate.redeem(gate.login_secret)
    assert gate.used
    assert not gate.redeem(gate.login_secret)
    assert LoginGate(profile="bob").login_secret != gate.login_secret


async def test_pages_and_static_files_are_gzipped_but_the_api_is_not(client: Client) -> None:
    await log_in(client)
    gzip = {"Accept-Encoding": "gzip"}
    for path in ("/", "/static/css/app.css", "/static/js/lib/api.js"):
        response = await client.get(path, headers=gzip)
        assert response.status == 200, path
        assert response.headers.get("Content-Encoding") == "gzip", path
        assert len(await response.read()) > 100  # decoded transparently by the client
    api = await client.get("/api/state", headers=gzip)
    assert "Content-Encoding" not in api.headers
    plain = await client.get("/", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
