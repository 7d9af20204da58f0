"""Typed keys for what the daemon's application shares between handlers (no globals)."""

from __future__ import annotations

from aiohttp import web

from .identity import Identity
from .security import LoginGate
from .settings import Config

CONFIG = web.AppKey("config", Config)
IDENTITY = web.AppKey("identity", Identity)
LOGIN = web.AppKey("login", LoginGate)
