"""One contract, both stores: SQLite and a real PostgreSQL (tests/postgres.py) answer alike."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from rendezvous import session as rules
from rendezvous.migrations import MIGRATIONS
from rendezvous.session import EndReason, Role, Session, State
from rendezvous.store import SQLiteStore, Store, TokenTaken, open_store
from rendezvous.store_postgres import PostgresStore
from tests.conftest import MakeRendezvous
from tests.postgres import Cluster
from tests.test_cli import run_cli
from tests.test_reports_admin import PASSWORD_HASH, admin_token

T0 = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = "sqlite://:memory:"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = open_store(url, minute_seconds=60.0)
    assert isinstance(opened, SQLiteStore if request.param == "sqlite" else PostgresStore)
    yield opened
    await opened.close()


def _active(token: str) -> Session:
    s = rules.issue(token, T0, timedelta(days=1), 5, 2000)
    s, _, _ = rules.join(s, "host-credential", T0)
    s, _, _ = rules.join(s, "guest-credential", T0)
    return s


async def test_a_session_round_trips_and_a_token_is_taken_once(store: Store) -> None:
    s = _active("AAAAAAAAAAAA")
    await store.insert_session(s)
    assert await store.get_session("AAAAAAAAAAAA") == s
    assert await store.get_session("ZZZZZZZZZZZZ") is None
    with pytest.raises(TokenTaken):
        await store.insert_session(rules.issue("AAAAAAAAAAAA", T0, timedelta(days=1), 5, 2000))
    kept = await store.get_session("AAAAAAAAAAAA")
    assert kept is not None and kept.role_of("guest-credential") is Role.GUEST


async def test_update_changes_a_session_and_reports_the_result(store: Store) -> None:
    await store.insert_session(_active("AAAAAAAAAAAA"))

    def end(s: Session) -> tuple[Session, str]:
        return rules.end(s, "host-credential", T0 + timedelta(minutes=1)), "ended"

    changed = await store.update_session("AAAAAAAAAAAA", end)
    assert changed is not None and changed[1] == "ended"
    kept = await store.get_session("AAAAAAAAAAAA")
    assert kept == changed[0] and kept.end_reason is EndReason.MANUALLY_ENDED
    assert await store.update_session("ZZZZZZZZZZZZ", end) is None


async def test_a_failing_change_leaves_the_session_as_it_was(store: Store) -> None:
    s = _active("AAAAAAAAAAAA")
    await store.insert_session(s)

    def broken(_: Session) -> tuple[Session, None]:
        raise ValueError("refused")

    with pytest.raises(ValueError):
        await store.update_session("AAAAAAAAAAAA", broken)
    assert await store.get_session("AAAAAAAAAAAA") == s


async def test_concurrent_updates_are_each_applied(store: Store) -> None:
    """Read-modify-write is atomic: twenty concurrent increments of the TTL all count."""
    await store.insert_session(rules.issue("AAAAAAAAAAAA", T0, timedelta(days=1), 1, 2000))

    def longer(s: Session) -> tuple[Session, None]:
        return dataclasses.replace(s, ttl_minutes=s.ttl_minutes + 1), None

    await asyncio.gather(*(store.update_session("AAAAAAAAAAAA", longer) for _ in range(20)))
    kept = await store.get_session("AAAAAAAAAAAA")
    assert kept is not None and kept.ttl_minutes == 21


async def test_counts_due_sessions_and_the_sweep(store: Store) -> None:
    await store.insert_session(_active("AAAAAAAAAAAA"))
    await store.insert_session(rules.issue("BBBBBBBBBBBB", T0, timedelta(days=1), 5, 2000))
    now = await store.count_by_state(T0 + timedelta(minutes=1))
    later = await store.count_by_state(T0 + timedelta(minutes=6))
    assert (now[State.ACTIVE], now[State.CREATED], now[State.ENDED]) == (1, 1, 0)
    assert (later[State.ACTIVE], later[State.CREATED], later[State.ENDED]) == (0, 1, 1)
    due = await store.sessions_due(T0 + timedelta(minutes=6))
    assert [d.token for d in due] == ["AAAAAAAAAAAA"]
    ended = rules.end_if_due(due[0], T0 + timedelta(minutes=6))
    assert ended.end_reason is EndReason.TIMER_EXPIRED
    await store.update_session("AAAAAAAAAAAA", lambda _: (ended, None))
    assert await store.delete_ended_before(T0 + timedelta(minutes=5)) == 0
    assert await store.delete_ended_before(T0 + timedelta(minutes=7)) == 1
    assert await store.get_session("AAAAAAAAAAAA") is None
    assert await store.get_session("BBBBBBBBBBBB") is not None


async def test_reports_are_filed_listed_and_handled_once(store: Store) -> None:
    first = await store.add_report("AAAAAAAAAAAA", "spam", "details ✓", None, T0)
    second = await store.add_report("BBBBBBBBBBBB", "abuse", "", "me@example.org", T0)
    assert (first.id, first.details, first.created_at, first.handled_at) == (
        1,
        "details ✓",
        T0,
        None,
    )
    assert [r.id for r in await store.list_reports(include_handled=False)] == [2, 1]
    handled = await store.mark_report_handled(second.id, T0 + timedelta(hours=1))
    assert handled is not None and handled.handled_at == T0 + timedelta(hours=1)
    again = await store.mark_report_handled(second.id, T0 + timedelta(hours=2))
    assert again is not None and again.handled_at == T0 + timedelta(hours=1)
    assert [r.id for r in await store.list_reports(include_handled=False)] == [1]
    assert [r.contact for r in await store.list_reports(include_handled=True)] == [
        "me@example.org",
        None,
    ]
    assert await store.mark_report_handled(999, T0) is None


async def test_both_stores_reach_the_same_schema_version(store: Store) -> None:
    await store.get_session("AAAAAAAAAAAA")  # PostgreSQL connects and migrates on first use
    assert isinstance(store, SQLiteStore | PostgresStore)
    assert store.schema_version == MIGRATIONS[-1][0]


def test_a_database_that_cannot_be_opened_stops_the_start_with_the_reason(
    postgres_cluster: Cluster,
) -> None:
    url = postgres_cluster.url("no_such_db").replace("postgres@", "postgres:hunter2secret@")
    done = run_cli("--port", "0", "--database", url)
    assert done.returncode == 1, done.stderr
    assert "cannot open the PostgreSQL database" in done.stderr
    assert "no_such_db" in done.stderr and "Traceback" not in done.stderr
    assert "hunter2secret" not in done.stderr + done.stdout


@pytest.fixture(params=["sqlite-file", "postgres"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database two rendezvous instances share: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite-file":
        return f"sqlite://{tmp_path / 'shared.db'}"
    url = request.getfixturevalue("postgres_url")
    assert isinstance(url, str)
    return url


async def test_an_admin_login_holds_on_every_instance_until_logout(
    make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    """Behind a load balancer: a login made on one instance works on the other, and a
    logout on either ends it on both. The database keeps only the token's digest."""
    one = await make_rendezvous(database=shared_database, admin_password_hash=PASSWORD_HASH)
    two = await make_rendezvous(database=shared_database, admin_password_hash=PASSWORD_HASH)
    token = await admin_token(one)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await two.get("/api/admin/reports", headers=bearer)).status == 200
    assert (await two.post("/api/admin/logout", headers=bearer)).status == 200
    assert (await one.get("/api/admin/reports", headers=bearer)).status == 401

    again = {"Authorization": f"Bearer {await admin_token(two)}"}
    assert (await one.get("/api/admin/reports", headers=again)).status == 200
    dump = await _admin_logins(shared_database)
    assert len(dump) == 1 and token not in dump[0] and again["Authorization"][7:] not in dump[0]


async def _admin_logins(database: str) -> list[str]:
    if database.startswith("sqlite://"):
        with sqlite3.connect(database.removeprefix("sqlite://")) as db:
            rows = db.execute("SELECT * FROM admin_logins").fetchall()
        return [" ".join(map(str, row)) for row in rows]
    db = await asyncpg.connect(database)
    try:
        return [
            " ".join(map(str, r.values())) for r in await db.fetch("SELECT * FROM admin_logins")
        ]
    finally:
        await db.close()


async def test_an_expired_admin_login_is_refused_and_forgotten(store: Store) -> None:
    await store.add_admin_login("digest-a", T0 + timedelta(minutes=30))
    assert await store.admin_login_live("digest-a", T0 + timedelta(minutes=29))
    assert not await store.admin_login_live("digest-b", T0)
    assert not await store.admin_login_live("digest-a", T0 + timedelta(minutes=30))
    await store.add_admin_login("digest-a", T0 + timedelta(hours=2))  # the old row is gone
    await store.delete_admin_login("digest-a")
    assert not await store.admin_login_live("digest-a", T0)
