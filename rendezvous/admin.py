"""Admin logins: short-lived bearer tokens handed out for the configured password.

The logins live in the store (only the SHA-256 of each token), so that every
instance behind a load balancer knows them and a logout holds everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from .passwords import check_password
from .store import Store


class AdminSessions:
    def __init__(self, password_hash: str, lifetime: timedelta, store: Store) -> None:
        self.password_hash = password_hash
        self.lifetime = lifetime
        self.store = store

    @property
    def enabled(self) -> bool:
        return bool(self.password_hash)

    async def login(self, password: str, now: datetime) -> tuple[str, datetime] | None:
        if not self.enabled or not check_password(password, self.password_hash):
            return None
        token = secrets.token_urlsafe(32)
        expires = now + self.lifetime
        await self.store.add_admin_login(_key(token), expires)
        return token, expires

    async def check(self, token: str, now: datetime) -> bool:
        return await self.store.admin_login_live(_key(token), now)

    async def logout(self, token: str) -> None:
        await self.store.delete_admin_login(_key(token))


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
