"""Where sessions and reports live: a small interface, and its SQLite implementation.

Every method is a coroutine so that a networked store (Redis, for several
instances) can stand in later. `update_session` is the one read-modify-write:
the store runs the given pure function atomically.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from .migrations import migrate
from .session import EndReason, Session, State

T = TypeVar("T")


@dataclass(frozen=True)
class Report:
    id: int
    token: str
    reason: str
    details: str
    contact: str | None
    created_at: datetime
    handled_at: datetime | None


@dataclass(frozen=True)
class PoolUse:
    """The store's database connections (for /metrics)."""

    size: int
    """Connections open now."""
    idle: int
    """Of those, the ones no request is using."""
    max: int
    """The most the store opens."""


class TokenTaken(Exception):
    """The token already exists (a collision of random tokens: mint another)."""


class StoreUnavailable(Exception):
    """The database cannot be reached or opened (the message names no password)."""


class Store(Protocol):
    async def open(self) -> Self: ...
    async def insert_session(self, session: Session) -> None: ...
    async def get_session(self, token: str) -> Session | None: ...
    async def update_session(
        self, token: str, change: Callable[[Session], tuple[Session, T]]
    ) -> tuple[Session, T] | None: ...
    async def sessions_due(self, now: datetime) -> list[Session]: ...
    async def delete_ended_before(self, cutoff: datetime) -> int: ...
    async def count_by_state(self, now: datetime) -> dict[State, int]: ...
    async def add_report(
        self, token: str, reason: str, details: str, contact: str | None, now: datetime
    ) -> Report: ...
    async def list_reports(self, include_handled: bool) -> list[Report]: ...
    async def mark_report_handled(self, report_id: int, now: datetime) -> Report | None: ...
    async def add_admin_login(self, token_digest: str, expires_at: datetime) -> None: ...
    async def admin_login_live(self, token_digest: str, now: datetime) -> bool: ...
    async def delete_admin_login(self, token_digest: str) -> None: ...
    def pool_use(self) -> PoolUse: ...
    async def close(self) -> None: ...


class _Row(Protocol):
    """A result row read by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


def open_store(database: str, minute_seconds: float = 60.0) -> Store:
    """The store a `database` setting names: a `postgresql://` URL, a `sqlite:///path`
    URL, a plain SQLite file path, or `:memory:`."""
    if database.startswith(("postgresql://", "postgres://")):
        from .store_postgres import PostgresStore  # asyncpg imported only when used

        return PostgresStore(database, minute_seconds)
    if database.startswith("sqlite://"):
        database = database.removeprefix("sqlite://") or ":memory:"
    return SQLiteStore(database, minute_seconds)


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


_SESSION_COLUMNS = (
    "token, created_at, valid_until, ttl_minutes, max_message_length, host_id, guest_id, "
    "host_joined_at, guest_joined_at, activated_at, ended_at, end_reason"
)


def _session_row(s: Session) -> tuple[object, ...]:
    return (
        s.token,
        _ts(s.created_at),
        _ts(s.valid_until),
        s.ttl_minutes,
        s.max_message_length,
        s.host_id,
        s.guest_id,
        _ts(s.host_joined_at),
        _ts(s.guest_joined_at),
        _ts(s.activated_at),
        _ts(s.ended_at),
        s.end_reason.value if s.end_reason else None,
    )


def _session(row: _Row, minute_seconds: float) -> Session:
    return Session(
        token=row["token"],
        created_at=_dt(row["created_at"]) or datetime.fromtimestamp(0, UTC),
        valid_until=_dt(row["valid_until"]) or datetime.fromtimestamp(0, UTC),
        ttl_minutes=row["ttl_minutes"],
        max_message_length=row["max_message_length"],
        host_id=row["host_id"],
        guest_id=row["guest_id"],
        host_joined_at=_dt(row["host_joined_at"]),
        guest_joined_at=_dt(row["guest_joined_at"]),
        activated_at=_dt(row["activated_at"]),
        ended_at=_dt(row["ended_at"]),
        end_reason=EndReason(row["end_reason"]) if row["end_reason"] else None,
        minute_seconds=minute_seconds,
    )


def _report(row: _Row) -> Report:
    return Report(
        id=row["id"],
        token=row["token"],
        reason=row["reason"],
        details=row["details"],
        contact=row["contact"],
        created_at=_dt(row["created_at"]) or datetime.fromtimestamp(0, UTC),
        handled_at=_dt(row["handled_at"]),
    )


class SQLiteStore:
    """The store in one SQLite file (or `:memory:`), used from one event loop.

    Each call finishes without awaiting, so a read-modify-write is atomic
    within the process; the transactions keep the file consistent on a crash.
    """

    def __init__(self, path: str, minute_seconds: float = 60.0) -> None:
        self.minute_seconds = minute_seconds
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute(
            "PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY"
        )
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.schema_version = migrate(self._db)

    async def open(self) -> Self:
        return self  # opened by the constructor

    async def insert_session(self, session: Session) -> None:
        try:
            self._db.execute(
                f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                _session_row(session),
            )
        except sqlite3.IntegrityError:
            raise TokenTaken(session.token) from None

    async def get_session(self, token: str) -> Session | None:
        row = self._db.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE token = ?", (token,)
        ).fetchone()
        return _session(row, self.minute_seconds) if row else None

    async def update_session(
        self, token: str, change: Callable[[Session], tuple[Session, T]]
    ) -> tuple[Session, T] | None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE token = ?", (token,)
            ).fetchone()
            if row is None:
                self._db.execute("ROLLBACK")
                return None
            old = _session(row, self.minute_seconds)
            new, result = change(old)
            if new != old:
                self._db.execute(
                    f"REPLACE INTO sessions ({_SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    _session_row(new),
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return new, result

    async def sessions_due(self, now: datetime) -> list[Session]:
        """Sessions not marked ended whose countdown or validity window has run out."""
        t = now.timestamp()
        rows = self._db.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE ended_at IS NULL AND ("
            " (activated_at IS NOT NULL AND activated_at + ttl_minutes * ? <= ?)"
            " OR (activated_at IS NULL AND valid_until <= ?))",
            (self.minute_seconds, t, t),
        ).fetchall()
        return [_session(r, self.minute_seconds) for r in rows]

    async def delete_ended_before(self, cutoff: datetime) -> int:
        cur = self._db.execute(
            "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?",
            (cutoff.timestamp(),),
        )
        return cur.rowcount

    async def count_by_state(self, now: datetime) -> dict[State, int]:
        t = now.timestamp()
        rows = self._db.execute(
            "SELECT CASE"
            " WHEN ended_at IS NOT NULL THEN 'ENDED'"
            " WHEN activated_at IS NOT NULL AND activated_at + ttl_minutes * :m <= :t THEN 'ENDED'"
            " WHEN activated_at IS NULL AND valid_until <= :t THEN 'ENDED'"
            " WHEN activated_at IS NOT NULL THEN 'ACTIVE'"
            " WHEN host_id IS NOT NULL THEN 'HOST_RESERVED'"
            " ELSE 'CREATED' END AS state, COUNT(*) FROM sessions GROUP BY state",
            {"t": t, "m": self.minute_seconds},
        ).fetchall()
        counts = dict.fromkeys(State, 0)
        for state, n in rows:
            counts[State(state)] = n
        return counts

    async def add_report(
        self, token: str, reason: str, details: str, contact: str | None, now: datetime
    ) -> Report:
        cur = self._db.execute(
            "INSERT INTO reports (token, reason, details, contact, created_at) VALUES (?,?,?,?,?)",
            (token, reason, details, contact, now.timestamp()),
        )
        row = self._db.execute("SELECT * FROM reports WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _report(row)

    async def list_reports(self, include_handled: bool) -> list[Report]:
        where = "" if include_handled else "WHERE handled_at IS NULL"
        rows = self._db.execute(f"SELECT * FROM reports {where} ORDER BY id DESC").fetchall()
        return [_report(r) for r in rows]

    async def mark_report_handled(self, report_id: int, now: datetime) -> Report | None:
        self._db.execute(
            "UPDATE reports SET handled_at = COALESCE(handled_at, ?) WHERE id = ?",
            (now.timestamp(), report_id),
        )
        row = self._db.execute("SELECT * FROM reports WHERE id = ?", (report_id,)).fetchone()
        return _report(row) if row else None

    async def add_admin_login(self, token_digest: str, expires_at: datetime) -> None:
        self._db.execute(
            "INSERT INTO admin_logins (token_digest, expires_at) VALUES (?, ?)",
            (token_digest, expires_at.timestamp()),
        )

    async def admin_login_live(self, token_digest: str, now: datetime) -> bool:
        """Whether the login is current (expired logins are deleted on the way)."""
        self._db.execute("DELETE FROM admin_logins WHERE expires_at <= ?", (now.timestamp(),))
        row = self._db.execute(
            "SELECT 1 FROM admin_logins WHERE token_digest = ?", (token_digest,)
        ).fetchone()
        return row is not None

    async def delete_admin_login(self, token_digest: str) -> None:
        self._db.execute("DELETE FROM admin_logins WHERE token_digest = ?", (token_digest,))

    def pool_use(self) -> PoolUse:
        """One connection, never held across an await: idle whenever this can be asked."""
        return PoolUse(size=1, idle=1, max=1)

    async def close(self) -> None:
        self._db.close()
