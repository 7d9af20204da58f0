"""Typed keys for what the application shares between handlers (no globals)."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from .admin import AdminSessions
from .service import Rendezvous
from .settings import Config

CONFIG = web.AppKey("config", Config)
SERVICE = web.AppKey("service", Rendezvous)
ADMIN = web.AppKey("admin", AdminSessions)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", list[ipaddress.IPv4Network | ipaddress.IPv6Network])
