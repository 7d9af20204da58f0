"""Numbered schema migrations for the SQLite store.

Append new steps; never edit a step that has shipped. `schema_version`
records the highest step applied to a database file. A step may call the SQL
functions in `FUNCTIONS` (frozen with the steps that use them).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable


def _sha256_hex(value: str | None) -> str | None:
    """SHA-256 of a text in hex (UTF-8; a lone surrogate kept as the seed stored it)."""
    if value is None:
        return None
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


FUNCTIONS: dict[str, Callable[[str | None], str | None]] = {"sha256_hex": _sha256_hex}

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE sessions (
            token TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            valid_until REAL NOT NULL,
            ttl_minutes INTEGER NOT NULL,
            max_message_length INTEGER NOT NULL,
            host_id TEXT,
            guest_id TEXT,
            host_joined_at REAL,
            guest_joined_at REAL,
            activated_at REAL,
            ended_at REAL
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
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token TEXT NOT NULL,
            reason TEXT NOT NULL,
            details TEXT NOT NULL,
            contact TEXT,
            created_at REAL NOT NULL,
            handled_at REAL
        );
        """,
    ),
    (
        3,
        # The seats hold the SHA-256 of their client_identity, not the credential itself.
        """
        UPDATE sessions SET host_id = sha256_hex(host_id) WHERE host_id IS NOT NULL;
        UPDATE sessions SET guest_id = sha256_hex(guest_id) WHERE guest_id IS NOT NULL
        """,
    ),
    (
        4,
        # Admin logins, shared by every instance: the SHA-256 of the bearer token, never the token.
        """
        CREATE TABLE admin_logins (
            token_digest TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        );
        CREATE INDEX idx_admin_logins_expires_at ON admin_logins(expires_at)
        """,
    ),
]


def current_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: sqlite3.Connection, target: int | None = None) -> int:
    """Apply every step above the database's version (up to `target`); return the version."""
    for name, function in FUNCTIONS.items():
        db.create_function(name, 1, function, deterministic=True)
    version = current_version(db)
    for number, script in MIGRATIONS:
        if number <= version or (target is not None and number > target):
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        version = number
    return version
