"""The SQLite store on a real file: migrations applied to an existing database, mode 0600."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rendezvous import session as rules
from rendezvous.migrations import MIGRATIONS, migrate
from rendezvous.session import Role, State
from rendezvous.store import SQLiteStore

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
