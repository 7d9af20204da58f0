"""Admin logins: short-lived bearer tokens handed out for the configured password."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from .passwords import check_password


class AdminSessions:
    def __init__(self, password_hash: str, lifetime: timedelta) -> None:
        self.password_hash = password_hash
        self.lifetime = lifetime
        self._live: dict[str, datetime] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.password_hash)

    def login(self, password: str, now: datetime) -> tuple[str, datetime] | None:
        if not self.enabled or not check_password(password, self.password_hash):
            return None
        token = secrets.token_urlsafe(32)
        expires = now + self.lifetime
        self._live[_key(token)] = expires
        return token, expires

    def check(self, token: str, now: datetime) -> bool:
        self._live = {k: exp for k, exp in self._live.items() if exp > now}
        return _key(token) in self._live

    def logout(self, token: str) -> None:
        self._live.pop(_key(token), None)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
