"""Issue #11's bad input on both HTTP servers: each answer a 4xx with a JSON reason,
never a 500, a traceback in the log or a lost e-mail."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rendezvous.app import create_app as create_rendezvous
from rendezvous.passwords import hash_password
from rendezvous.settings import load_config
from tests.conftest import MakeRendezvous, RendezvousClient, issue
from tests.http_apps import LOGIN_SECRET, Client, api_headers, daemon_app, daemon_client
from tests.test_reports_admin import Inbox, smtp_sink  # noqa: F401 (the fixture)

PASSWORD = "bad input admin"
JSON = {"Content-Type": "application/json"}
SURROGATE = '"\\ud800"'  # a lone surrogate as JSON spells it


async def refused(response: Any, status: int | None = None) -> dict[str, Any]:
    """The answer is a 4xx (that one, if given) with `error` and `reason`."""
    text = await response.text()
    assert 400 <= response.status < 500, (response.status, text)
    if status is not None:
        assert response.status == status, text
    body = json.loads(text)
    assert isinstance(body["error"], str) and isinstance(body["reason"], str), body
    return dict(body)


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


@pytest.fixture
async def daemon(aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path) -> Client:
    return await daemon_client(aiohttp_client, tmp_path)


@pytest.mark.parametrize("option", [[], {}, ["day"], {"day": 1}, 1, True])
async def test_a_validity_option_of_the_wrong_type_is_a_422(
    rv: RendezvousClient, daemon: Client, option: Any
) -> None:
    response = await rv.post("/api/tokens/issue", json={"validity_option": option})
    assert (await refused(response, 422))["error"] == "invalid_validity_option"
    response = await daemon.post(
        "/api/tokens", data=json.dumps({"validity_option": option}), headers=api_headers(daemon)
    )
    assert (await refused(response, 422))["error"] == "invalid_validity_option"


RENDEZVOUS_BODIES = {
    "/api/tokens/issue": '{"validity_option": %s}',
    "/api/tokens/join": '{"token": "AAAAAAAAAAAA", "client_identity": %s}',
    "/api/session/AAAAAAAAAAAA/end": '{"client_identity": %s}',
    "/api/reports": '{"token": "AAAAAAAAAAAA", "reason": %s}',
    "/api/admin/login": '{"password": %s}',
}
DAEMON_BODIES = {
    "/api/tokens": '{"validity_option": %s}',
    "/api/join": '{"invite": %s}',
    "/api/messages": '{"text": %s}',
    "/api/report": '{"reason": %s}',
    "/api/call/mute": '{"kind": %s, "muted": true}',
    "/api/media/offer": '{"sdp": %s}',
    "/api/preferences": '{"language": %s}',
    "/api/nearby/verify": '{"fingerprint": %s}',
    "/api/nearby/invite": '{"fingerprint": %s}',
    "/api/nearby/code": '{"request_id": %s, "code": "123456"}',
}


async def test_a_lone_surrogate_in_any_field_is_refused_before_use(
    make_rendezvous: MakeRendezvous, daemon: Client, caplog: pytest.LogCaptureFixture
) -> None:
    rv = await make_rendezvous(admin_password_hash=hash_password(PASSWORD))
    for path, template in RENDEZVOUS_BODIES.items():
        for where in (template % SURROGATE, '{"x": {' + SURROGATE + ": 1}}"):  # a value, a key
            response = await rv.post(path, data=where, headers=JSON)
            assert (await refused(response, 400))["error"] == "invalid_json", path
    for path, template in DAEMON_BODIES.items():
        response = await daemon.post(path, data=template % SURROGATE, headers=api_headers(daemon))
        assert (await refused(response, 400))["error"] == "invalid_json", path
    no_tracebacks(caplog)


async def test_a_lone_surrogate_in_a_report_never_reaches_the_store(rv: RendezvousClient) -> None:
    token = await issue(rv)
    for member in ("reason", "details", "contact"):
        body = f'{{"token": "{token}", "reason": "spam", "{member}": "a\\udfffb"}}'
        response = await rv.post("/api/reports", data=body, headers=JSON)
        await refused(response, 400)
    paired = f'{{"token": "{token}", "reason": "spam \\ud83d\\ude00"}}'  # a pair is fine
    response = await rv.post("/api/reports", data=paired, headers=JSON)
    assert response.status == 201, await response.text()


@pytest.fixture
async def failing_rendezvous(aiohttp_server: Any) -> AsyncIterator[str]:
    """A rendezvous that fails every request with its own 500 (or a 503 page)."""

    async def fail(request: web.Request) -> web.Response:
        if request.path.endswith("/join"):
            return web.Response(status=503, text="<html>upstream down</html>")
        return web.json_response({"error": "internal_error", "reason": "boom"}, status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fail)
    server = await aiohttp_server(app)
    yield f"http://127.0.0.1:{server.port}"


async def test_a_failing_rendezvous_is_a_502_with_a_reason_not_our_500(
    aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path, failing_rendezvous: str
) -> None:
    daemon = await daemon_client(aiohttp_client, tmp_path, rendezvous=failing_rendezvous)
    response = await daemon.post("/api/tokens", data="{}", headers=api_headers(daemon))
    body = await refused_upstream(response)
    assert body["error"] == "rendezvous_error" and "500" in body["reason"]
    invite = "AAAAAAAAAAAA-" + "A" * 43
    response = await daemon.post(
        "/api/join", data=json.dumps({"invite": invite}), headers=api_headers(daemon)
    )
    body = await refused_upstream(response)
    if body["error"] != "invalid_invite":  # the invite's own check may refuse it first
        assert body["error"] == "rendezvous_error" and "503" in body["reason"]


async def refused_upstream(response: Any) -> dict[str, Any]:
    text = await response.text()
    assert response.status in {422, 502}, (response.status, text)
    body: dict[str, Any] = json.loads(text)
    assert isinstance(body["reason"], str) and body["reason"]
    return body


@pytest.mark.parametrize("report_id", ["²", "9" * 30, "٣", "1e3", "-1", "0x10", "%C2%B2"])
async def test_a_report_id_that_is_no_integer_is_a_404(
    make_rendezvous: MakeRendezvous, report_id: str
) -> None:
    rv = await make_rendezvous(admin_password_hash=hash_password(PASSWORD))
    login = await rv.post("/api/admin/login", json={"password": PASSWORD})
    bearer = {"Authorization": f"Bearer {(await login.json())['token']}"}
    response = await rv.post(f"/api/admin/reports/{report_id}/handled", headers=bearer)
    assert (await refused(response, 404))["error"] == "report_not_found"


LONG_NAMES = ["a" * 5000, "a/" * 2000 + "x", "x" * 255 + "/" + "y" * 300, "%00", "..%2F..%2Fetc"]


@pytest.mark.parametrize("name", LONG_NAMES)
async def test_a_static_name_the_file_system_refuses_is_a_404(
    rv: RendezvousClient, daemon: Client, name: str
) -> None:
    for client in (rv, daemon):
        response = await client.get(f"/static/{name}")
        assert response.status == 404, await response.text()
    for client in (rv, daemon):  # the real files are still served
        response = await client.get("/static/css/app.css")
        assert response.status == 200 and "css" in response.content_type


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[dict[str, tuple[int, str]]]:
    """Both apps served as the programs serve them (an AppRunner, whose handlers go on
    when a client hangs up: the test server cancels them), each with the port and the
    Cookie header a logged-in browser sends."""
    apps = {
        "rendezvous": create_rendezvous(
            load_config(environ={}, overrides={"database": ":memory:"})
        ),
        "daemon": daemon_app(tmp_path),
    }
    runners, found = [], {}
    for name, app in apps.items():
        runner = web.AppRunner(app, access_log=None)  # as both programs run it
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            if name == "daemon":
                url = f"http://127.0.0.1:{port}/login?secret={LOGIN_SECRET}"
                async with http.get(url, allow_redirects=False) as response:
                    assert response.status == 303
        found[name] = (port, "; ".join(f"{c.key}={c.value}" for c in jar))
    yield found
    for runner in runners:
        await runner.cleanup()


async def test_a_client_hanging_up_mid_body_is_one_info_line(
    served: dict[str, tuple[int, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = "SECRETTOKEN9"  # a path may hold a token: the log names the route instead
    for name, path in (("rendezvous", f"/api/session/{token}/end"), ("daemon", "/api/messages")):
        port, cookies = served[name]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n"
            b"Content-Type: application/json\r\nCookie: %s\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n" % (path.encode(), port, port, cookies.encode())
        )
        assert (await reader.readline()).startswith(b"HTTP/1.1 100")  # the handler reads on
        await reader.readline()
        writer.write(b'{"text": "')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await wait_for_record(caplog, "client went away")
        assert not [r for r in caplog.records if token in str(vars(r))]
        caplog.clear()
    no_tracebacks(caplog)


class Seen(logging.Handler):
    """Sets `event` when a record with `message` arrives (no polling of caplog)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message, self.event = message, asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.message:
            self.event.set()


async def wait_for_record(caplog: pytest.LogCaptureFixture, message: str) -> None:
    seen = Seen(message)
    logging.getLogger().addHandler(seen)
    try:
        if not any(r.getMessage() == message for r in caplog.records):
            async with asyncio.timeout(5):
                await seen.event.wait()
    finally:
        logging.getLogger().removeHandler(seen)
    gone = [r for r in caplog.records if r.getMessage() == message]
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in gone)


@pytest.mark.parametrize(
    "reason", ["spam\nBcc: victim@example.org", "a\rb", "tab\there", "\x00\x1b[31m"]
)
async def test_a_control_character_in_the_reason_still_mails_the_admin(
    make_rendezvous: MakeRendezvous,
    smtp_sink: tuple[int, Inbox],  # noqa: F811 (the fixture, imported)
    reason: str,
) -> None:
    port, inbox = smtp_sink
    rv = await make_rendezvous(smtp_host="127.0.0.1", smtp_port=port, smtp_to="abuse@example.org")
    token = await issue(rv)
    response = await rv.post("/api/reports", json={"token": token, "reason": reason})
    assert response.status == 201, await response.text()
    async with asyncio.timeout(10):
        recipients, message = await inbox.messages.get()
    assert recipients == ["abuse@example.org"]
    assert message["Bcc"] is None
    subject = str(message["Subject"])
    assert subject.startswith("[ChatOrbit] abuse report #") and "\n" not in subject
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes) and b"Reason: " in body  # the text itself, in the body


async def test_a_crash_is_a_logged_500_with_no_stack_in_the_body(
    make_rendezvous: MakeRendezvous, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_rendezvous(load_config(environ={}, overrides={"database": ":memory:"}))

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/api/_test/crash", crash)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/_test/crash")
        assert response.status == 500
        text = await response.text()
    assert json.loads(text)["error"] == "internal_error"
    assert "secret internals" not in text and "Traceback" not in text
    assert any(r.getMessage() == "unhandled error" and r.exc_info for r in caplog.records)


async def test_http_aiohttp_cannot_parse_is_one_info_line(
    rv: RendezvousClient, daemon: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for client in (rv, daemon):
        response = await client.get("/api/session/" + "A" * 9000 + "/status")
        assert response.status == 400  # aiohttp's own answer: the line is over 8 KiB
    refused_lines = [r for r in caplog.records if r.getMessage() == "bad HTTP request refused"]
    assert len(refused_lines) == 2 and all(r.levelno == logging.INFO for r in refused_lines)
    no_tracebacks(caplog)
