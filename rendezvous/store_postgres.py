"""The store on PostgreSQL (asyncpg), for several rendezvous instances sharing one database.

Chosen by a `postgresql://` URL in the `database` setting. The pool opens on
first use (the app is built outside the event loop) and applies the numbered
migrations of `migrations_postgres.py`. Times are stored as Unix seconds, as
in SQLite, so both backends answer the same queries. `update_session` locks
the row (`SELECT ... FOR UPDATE`), so a read-modify-write is atomic across
instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from .migrations_postgres import migrate
from .session import Session, State
from .store import (
    _SESSION_COLUMNS,
    PoolUse,
    Report,
    StoreUnavailable,
    TokenTaken,
    _report,
    _session,
    _session_row,
)

T = TypeVar("T")

_PLACEHOLDERS = ",".join(f"${i}" for i in range(1, 13))
_UPSERT = f"UPDATE sessions SET ({_SESSION_COLUMNS}) = ROW({_PLACEHOLDERS}) WHERE token = $1"


POOL_MAX = 10  # connections per instance


class PostgresStore:
    """The store in a PostgreSQL database named by a `postgresql://` URL."""

    def __init__(self, url: str, minute_seconds: float = 60.0) -> None:
        self.url = url
        self.minute_seconds = minute_seconds
        self.schema_version = 0
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def _db(self) -> Any:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    try:
                        pool = await asyncpg.create_pool(self.url, min_size=1, max_size=POOL_MAX)
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                        raise StoreUnavailable(
                            f"cannot open the PostgreSQL database: {type(exc).__name__}: {exc}"
                        ) from None
                    async with pool.acquire() as db:
                        self.schema_version = await migrate(db)
                    self._pool = pool
        return self._pool

    async def open(self) -> PostgresStore:
        """Connect and migrate now (a bad URL or password fails here, not on first request)."""
        await self._db()
        return self

    async def insert_session(self, session: Session) -> None:
        pool = await self._db()
        try:
            await pool.execute(
                f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                *_session_row(session),
            )
        except asyncpg.UniqueViolationError:
            raise TokenTaken(session.token) from None

    async def get_session(self, token: str) -> Session | None:
        pool = await self._db()
        row = await pool.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE token = $1", token
        )
        return _session(row, self.minute_seconds) if row else None

    async def update_session(
        self, token: str, change: Callable[[Session], tuple[Session, T]]
    ) -> tuple[Session, T] | None:
        pool = await self._db()
        async with pool.acquire() as db, db.transaction():
            row = await db.fetchrow(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE token = $1 FOR UPDATE", token
            )
            if row is None:
                return None
            old = _session(row, self.minute_seconds)
            new, result = change(old)
            if new != old:
                await db.execute(_UPSERT, *_session_row(new))
        return new, result

    async def sessions_due(self, now: datetime) -> list[Session]:
        """Sessions not marked ended whose countdown or validity window has run out."""
        pool = await self._db()
        rows = await pool.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE ended_at IS NULL AND ("
            " (activated_at IS NOT NULL AND activated_at + ttl_minutes * $1 <= $2)"
            " OR (activated_at IS NULL AND valid_until <= $2))",
            self.minute_seconds,
            now.timestamp(),
        )
        return [_session(r, self.minute_seconds) for r in rows]

    async def delete_ended_before(self, cutoff: datetime) -> int:
        pool = await self._db()
        status = await pool.execute(
            "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1",
            cutoff.timestamp(),
        )
        return int(status.split()[-1])  # "DELETE <n>"

    async def count_by_state(self, now: datetime) -> dict[State, int]:
        pool = await self._db()
        rows = await pool.fetch(
            "SELECT CASE"
            " WHEN ended_at IS NOT NULL THEN 'ENDED'"
            " WHEN activated_at IS NOT NULL AND activated_at + ttl_minutes * $1 <= $2 THEN 'ENDED'"
            " WHEN activated_at IS NULL AND valid_until <= $2 THEN 'ENDED'"
            " WHEN activated_at IS NOT NULL THEN 'ACTIVE'"
            " WHEN host_id IS NOT NULL THEN 'HOST_RESERVED'"
            " ELSE 'CREATED' END AS state, COUNT(*) FROM sessions GROUP BY 1",
            self.minute_seconds,
            now.timestamp(),
        )
        counts = dict.fromkeys(State, 0)
        for state, n in rows:
            counts[State(state)] = int(n)
        return counts

    async def add_report(
        self, token: str, reason: str, details: str, contact: str | None, now: datetime
    ) -> Report:
        pool = await self._db()
        row = await pool.fetchrow(
            "INSERT INTO reports (token, reason, details, contact, created_at)"
            " VALUES ($1,$2,$3,$4,$5) RETURNING *",
            token,
            reason,
            details,
            contact,
            now.timestamp(),
        )
        return _report(row)

    async def list_reports(self, include_handled: bool) -> list[Report]:
        pool = await self._db()
        where = "" if include_handled else "WHERE handled_at IS NULL"
        rows = await pool.fetch(f"SELECT * FROM reports {where} ORDER BY id DESC")
        return [_report(r) for r in rows]

    async def mark_report_handled(self, report_id: int, now: datetime) -> Report | None:
        pool = await self._db()
        row = await pool.fetchrow(
            "UPDATE reports SET handled_at = COALESCE(handled_at, $1) WHERE id = $2 RETURNING *",
            now.timestamp(),
            report_id,
        )
        return _report(row) if row else None

    async def add_admin_login(self, token_digest: str, expires_at: datetime) -> None:
        pool = await self._db()
        await pool.execute(
            "INSERT INTO admin_logins (token_digest, expires_at) VALUES ($1, $2)",
            token_digest,
            expires_at.timestamp(),
        )

    async def admin_login_live(self, token_digest: str, now: datetime) -> bool:
        """Whether the login is current (expired logins are deleted on the way)."""
        pool = await self._db()
        await pool.execute("DELETE FROM admin_logins WHERE expires_at <= $1", now.timestamp())
        found = await pool.fetchval(
            "SELECT 1 FROM admin_logins WHERE token_digest = $1", token_digest
        )
        return found is not None

    async def delete_admin_login(self, token_digest: str) -> None:
        pool = await self._db()
        await pool.execute("DELETE FROM admin_logins WHERE token_digest = $1", token_digest)

    def pool_use(self) -> PoolUse:
        pool = self._pool
        if pool is None:
            return PoolUse(size=0, idle=0, max=POOL_MAX)
        return PoolUse(size=pool.get_size(), idle=pool.get_idle_size(), max=pool.get_max_size())

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
