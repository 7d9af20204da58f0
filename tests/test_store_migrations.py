"""The stores on a real file or server: migrations applied to an existing database
(SQLite and PostgreSQL), the SQLite file mode 0600."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from rendezvous import session as rules
from rendezvous.migrations import MIGRATIONS, migrate
from rendezvous.migrations_postgres import MIGRATIONS as PG_MIGRATIONS
from rendezvous.migrations_postgres import migrate as migrate_postgres
from rendezvous.session import Role, State
from rendezvous.store import SQLiteStore
from rendezvous.store_postgres import PostgresStore

T0 = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)


async def test_an_old_database_file_is_migrated_and_keeps_its_sessions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    assert migrate(old, target=1) == 1  # a database written by the first release
    old.execute(
        "INSERT INTO sessions (token, created_at, valid_until, ttl_minutes,"
        " max_message_length, host_id, host_joined_at)"
        " VALUES ('ABCD1234WXYZ', ?, ?, 30, 2000, 'alice', ?)",
        (T0.timestamp(), (T0 + timedelta(days=1)).timestamp(), T0.timestamp()),
    )
    old.close()

    store = SQLiteStore(str(path))
    assert store.schema_version == MIGRATIONS[-1][0]
    kept = await store.get_session("ABCD1234WXYZ")
    assert kept is not None
    assert (kept.state(T0), kept.end_reason) == (State.HOST_RESERVED, None)
    # Migration 3 replaced the stored credential by its digest: the seat is still alice's.
    assert kept.host_id == rules.seat_digest("alice") and kept.guest_id is None
    assert kept.role_of("alice") is Role.HOST and kept.role_of("mallory") is None
    report = await store.add_report(
        "ABCD1234WXYZ", "spam", "", None, T0
    )  # a table migration 2 added
    assert report.id == 1
    await store.close()

    again = SQLiteStore(str(path))  # opening a current file applies nothing twice
    assert again.schema_version == MIGRATIONS[-1][0]
    versions = again._db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v[0] for v in versions] == [n for n, _ in MIGRATIONS]
    await again.close()


async def test_the_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "rendezvous.db"
    store = SQLiteStore(str(path))
    await store.insert_session(rules.issue("ABCD1234WXYZ", T0, timedelta(days=1), 5, 2000))
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_counts_by_state_follow_the_clock(tmp_path: Path) -> None:
    store = SQLiteStore(":memory:")
    s = rules.issue("AAAAAAAAAAAA", T0, timedelta(days=1), 5, 2000)
    s, _, _ = rules.join(s, "h", T0)
    s, _, _ = rules.join(s, "g", T0)
    await store.insert_session(s)
    await store.insert_session(rules.issue("BBBBBBBBBBBB", T0, timedelta(days=1), 5, 2000))
    now = await store.count_by_state(T0 + timedelta(minutes=1))
    later = await store.count_by_state(T0 + timedelta(minutes=6))
    assert (now[State.ACTIVE], now[State.CREATED], now[State.ENDED]) == (1, 1, 0)
    assert (later[State.ACTIVE], later[State.CREATED], later[State.ENDED]) == (0, 1, 1)
    due = await store.sessions_due(T0 + timedelta(minutes=6))
    assert [d.token for d in due] == ["AAAAAAAAAAAA"]
    await store.close()


async def test_the_database_holds_no_raw_seat_credential(tmp_path: Path) -> None:
    path = tmp_path / "rendezvous.db"
    store = SQLiteStore(str(path))
    s = rules.issue("ABCD1234WXYZ", T0, timedelta(days=1), 5, 2000)
    s, _, _ = rules.join(s, "host-credential-0123456789", T0)
    s, _, _ = rules.join(s, "guest-credential-0123456789", T0)
    await store.insert_session(s)
    kept = await store.get_session("ABCD1234WXYZ")
    assert kept is not None and kept.role_of("guest-credential-0123456789") is Role.GUEST
    await store.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"ABCD1234WXYZ" in on_disk  # the file was written...
    assert b"credential-0123456789" not in on_disk  # ...without either credential
    assert rules.seat_digest("host-credential-0123456789").encode() in on_disk


async def test_an_old_postgres_database_is_migrated_and_keeps_its_sessions(
    postgres_url: str,
) -> None:
    """The same steps on PostgreSQL: migration 3 hashes the seats exactly as `seat_digest`."""
    old = await asyncpg.connect(postgres_url)
    assert await migrate_postgres(old, target=1) == 1  # a database written by the first release
    await old.execute(
        "INSERT INTO sessions (token, created_at, valid_until, ttl_minutes,"
        " max_message_length, host_id, guest_id, host_joined_at)"
        " VALUES ('ABCD1234WXYZ', $1, $2, 30, 2000, 'alice', 'bob ✓', $1)",
        T0.timestamp(),
        (T0 + timedelta(days=1)).timestamp(),
    )
    await old.close()

    store = await PostgresStore(postgres_url).open()
    assert store.schema_version == PG_MIGRATIONS[-1][0] == MIGRATIONS[-1][0]
    kept = await store.get_session("ABCD1234WXYZ")
    assert kept is not None and kept.end_reason is None
    assert kept.host_id == rules.seat_digest("alice")
    assert kept.guest_id == rules.seat_digest("bob ✓")
    assert kept.role_of("alice") is Role.HOST and kept.role_of("mallory") is None
    assert (await store.add_report("ABCD1234WXYZ", "spam", "", None, T0)).id == 1
    await store.close()

    again = await PostgresStore(postgres_url).open()  # a current database: nothing applied twice
    db = await asyncpg.connect(postgres_url)
    versions = await db.fetch("SELECT version FROM schema_version ORDER BY version")
    assert [v[0] for v in versions] == [n for n, _ in PG_MIGRATIONS]
    await db.close()
    await again.close()


async def test_instances_starting_together_migrate_a_postgres_database_once(
    postgres_url: str,
) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    db = await asyncpg.connect(postgres_url)
    versions = await db.fetch("SELECT version FROM schema_version ORDER BY version")
    await db.close()
    assert [v[0] for v in versions] == [n for n, _ in PG_MIGRATIONS]
    await asyncio.gather(*(s.close() for s in stores))


async def test_the_postgres_database_holds_no_raw_seat_credential(postgres_url: str) -> None:
    store = await PostgresStore(postgres_url).open()
    s = rules.issue("ABCD1234WXYZ", T0, timedelta(days=1), 5, 2000)
    s, _, _ = rules.join(s, "host-credential-0123456789", T0)
    s, _, _ = rules.join(s, "guest-credential-0123456789", T0)
    await store.insert_session(s)
    await store.close()
    db = await asyncpg.connect(postgres_url)
    rows = await db.fetch("SELECT * FROM sessions")
    await db.close()
    stored = " ".join(str(value) for row in rows for value in row.values())
    assert "ABCD1234WXYZ" in stored and "credential-0123456789" not in stored
    assert rules.seat_digest("host-credential-0123456789") in stored
