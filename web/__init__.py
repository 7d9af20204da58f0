"""The UI that orbitd serves: templates and static files, shipped as package data."""

from __future__ import annotations

from pathlib import Path

WEB_ROOT = Path(__file__).resolve().parent
