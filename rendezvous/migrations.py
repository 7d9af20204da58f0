"""Numbered schema migrations for the SQLite store.

Append new steps; never edit a step that has shipped. `schema_version`
records the highest step applied to a database file.
"""

from __future__ import annotations

import sqlite3

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
]


def current_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: sqlite3.Connection, target: int | None = None) -> int:
    """Apply every step above the database's version (up to `target`); return the version."""
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
