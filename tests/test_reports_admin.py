"""Abuse reports, the admin API behind a hashed password, and the SMTP notice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from rendezvous.passwords import check_password, hash_password
from tests.conftest import FakeClock, MakeRendezvous, RendezvousClient, issue

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)


@pytest.fixture
def rendezvous_database(both_databases: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return both_databases


class Inbox:
    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[list[str], Message]] = asyncio.Queue()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        await self.messages.put((list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 OK"


@pytest.fixture
async def smtp_sink() -> AsyncIterator[tuple[int, Inbox]]:
    """A real SMTP server on 127.0.0.1, on a free port."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, inbox
    server.close()
    await server.wait_closed()


async def admin_token(rv: RendezvousClient) -> str:
    response = await rv.post("/api/admin/login", json={"password": PASSWORD})
    assert response.status == 200, await response.text()
    token: str = (await response.json())["token"]
    return token


async def report(rv: RendezvousClient, token: str, **extra: Any) -> int:
    body = {"token": token, "reason": "harassment", "details": "they said awful things"} | extra
    response = await rv.post("/api/reports", json=body)
    assert response.status == 201, await response.text()
    report_id: int = (await response.json())["id"]
    return report_id


def test_password_hash_checks_in_constant_time_and_rejects_garbage() -> None:
    assert PASSWORD not in PASSWORD_HASH
    assert check_password(PASSWORD, PASSWORD_HASH)
    assert not check_password("wrong", PASSWORD_HASH)
    assert not check_password(PASSWORD, "not-a-hash")
    assert not check_password(PASSWORD, "scrypt$x$y$z$a$b")


async def test_report_then_admin_lists_and_marks_handled(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(admin_password_hash=PASSWORD_HASH)
    token = await issue(rv)
    first = await report(rv, token, contact="me@example.org")
    second = await report(rv, token, reason="spam", details="")

    bearer = {"Authorization": f"Bearer {await admin_token(rv)}"}
    listed = await (await rv.get("/api/admin/reports", headers=bearer)).json()
    assert [r["id"] for r in listed["reports"]] == [second, first]
    assert listed["reports"][1] | {"created_at": None} == {
        "id": first,
        "token": token,
        "reason": "harassment",
        "details": "they said awful things",
        "contact": "me@example.org",
        "created_at": None,
        "handled_at": None,
        "handled": False,
    }

    handled = await rv.post(f"/api/admin/reports/{first}/handled", headers=bearer)
    assert handled.status == 200
    assert (await handled.json())["handled"] is True
    open_only = await (await rv.get("/api/admin/reports", headers=bearer)).json()
    assert [r["id"] for r in open_only["reports"]] == [second]
    everything = await (await rv.get("/api/admin/reports?include_handled=1", headers=bearer)).json()
    assert len(everything["reports"]) == 2

    missing = await rv.post("/api/admin/reports/9999/handled", headers=bearer)
    assert missing.status == 404
    nonsense = await rv.post("/api/admin/reports/abc/handled", headers=bearer)
    assert nonsense.status == 404


async def test_report_input_is_checked(rv: RendezvousClient) -> None:
    token = await issue(rv)
    for body, status, code in (
        ({"token": "ZZZZZZZZZZZZ", "reason": "spam"}, 404, "token_not_found"),
        ({"token": token}, 422, "invalid_reason"),
        ({"token": token, "reason": "x" * 201}, 422, "invalid_reason"),
        ({"token": token, "reason": "spam", "details": 5}, 422, "invalid_details"),
        ({"token": token, "reason": "spam", "contact": "c" * 500}, 422, "invalid_contact"),
    ):
        response = await rv.post("/api/reports", json=body)
        assert response.status == status, body
        assert (await response.json())["error"] == code


async def test_admin_needs_the_password(make_rendezvous: MakeRendezvous, clock: FakeClock) -> None:
    rv = await make_rendezvous(admin_password_hash=PASSWORD_HASH, admin_login_rate_limit_per_hour=2)
    assert (await rv.get("/api/admin/reports")).status == 401
    forged = await rv.get("/api/admin/reports", headers={"Authorization": "Bearer made-up"})
    assert forged.status == 401
    wrong = await rv.post("/api/admin/login", json={"password": "guess"})
    assert wrong.status == 401
    assert (await wrong.json())["error"] == "wrong_password"

    bearer = {"Authorization": f"Bearer {await admin_token(rv)}"}
    assert (await rv.get("/api/admin/reports", headers=bearer)).status == 200

    limited = await rv.post("/api/admin/login", json={"password": PASSWORD})
    assert limited.status == 429  # 2 attempts an hour, right or wrong
    assert "Retry-After" in limited.headers

    clock.advance(minutes=61)  # the admin login has expired
    assert (await rv.get("/api/admin/reports", headers=bearer)).status == 401


async def test_admin_logout_ends_the_login(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(admin_password_hash=PASSWORD_HASH)
    bearer = {"Authorization": f"Bearer {await admin_token(rv)}"}
    assert (await rv.post("/api/admin/logout", headers=bearer)).status == 200
    assert (await rv.get("/api/admin/reports", headers=bearer)).status == 401


async def test_admin_is_off_without_a_password(rv: RendezvousClient) -> None:
    response = await rv.post("/api/admin/login", json={"password": ""})
    assert response.status == 404
    assert (await response.json())["error"] == "admin_disabled"


async def test_a_new_report_is_mailed(
    make_rendezvous: MakeRendezvous, smtp_sink: tuple[int, Inbox]
) -> None:
    port, inbox = smtp_sink
    rv = await make_rendezvous(
        smtp_host="127.0.0.1", smtp_port=port, smtp_to="abuse@example.org,ops@example.org"
    )
    token = await issue(rv)
    report_id = await report(rv, token, details="line one\nline two")
    recipients, mail = await asyncio.wait_for(inbox.messages.get(), 5)
    assert recipients == ["abuse@example.org", "ops@example.org"]
    assert mail["Subject"] == f"[ChatOrbit] abuse report #{report_id}: harassment"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"line one\r\nline two" in body and token.encode() in body


async def test_an_unreachable_mail_server_does_not_lose_the_report(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(smtp_host="127.0.0.1", smtp_port=1, smtp_to="abuse@example.org")
    token = await issue(rv)
    report_id = await report(rv, token)
    assert report_id >= 1
