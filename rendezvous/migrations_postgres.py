"""Numbered schema migrations for the PostgreSQL store (the same steps as `migrations.py`).

Append new steps; never edit a step that has shipped. The numbers match the
SQLite steps, so one version means one schema on either backend. Several
rendezvous instances may start at once: the steps run under an advisory lock.
"""

from __future__ import annotations

import asyncpg

# Any fixed number: the lock that serialises instances migrating one database.
_LOCK = 0x0C4A7_0B17

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE sessions (
            token TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL,
            valid_until DOUBLE PRECISION NOT NULL,
            ttl_minutes INTEGER NOT NULL,
            max_message_length INTEGER NOT NULL,
            host_id TEXT,
            guest_id TEXT,
            host_joined_at DOUBLE PRECISION,
            guest_joined_at DOUBLE PRECISION,
            activated_at DOUBLE PRECISION,
            ended_at DOUBLE PRECISION
        );
        CREATE INDEX idx_sessions_created_at ON sessions(created_at);
        CREATE INDEX idx_sessions_activated_at ON sessions(activated_at);
        """,
    ),
    (
        2,
        """
        ALTER TABLE sessions ADD COLUMN end_reason TEXT;
        CREATE INDEX idx_sessions_ended_at ON sessions(ended_at);
        CREATE TABLE reports (
            id BIGSERIAL PRIMARY KEY,
            token TEXT NOT NULL,
            reason TEXT NOT NULL,
            details TEXT NOT NULL,
            contact TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            handled_at DOUBLE PRECISION
        );
        """,
    ),
    (
        3,
        # The seats hold the SHA-256 of their client_identity, not the credential itself.
        """
        UPDATE sessions SET host_id = encode(sha256(convert_to(host_id, 'UTF8')), 'hex')
            WHERE host_id IS NOT NULL;
        UPDATE sessions SET guest_id = encode(sha256(convert_to(guest_id, 'UTF8')), 'hex')
            WHERE guest_id IS NOT NULL;
        """,
    ),
    (
        4,
        # Admin logins, shared by every instance: the SHA-256 of the bearer token, never the token.
        """
        CREATE TABLE admin_logins (
            token_digest TEXT PRIMARY KEY,
            expires_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX idx_admin_logins_expires_at ON admin_logins(expires_at);
        """,
    ),
]


async def current_version(db: asyncpg.Connection) -> int:
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    version = await db.fetchval("SELECT MAX(version) FROM schema_version")
    return int(version) if version is not None else 0


async def migrate(db: asyncpg.Connection, target: int | None = None) -> int:
    """Apply every step above the database's version (up to `target`); return the version."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        version = await current_version(db)
        for number, script in MIGRATIONS:
            if number <= version or (target is not None and number > target):
                continue
            async with db.transaction():
                await db.execute(script)
                await db.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
            version = number
    return version
