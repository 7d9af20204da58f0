"""Translations: one JSON file per section and language under web/i18n/<lang>/.

Every key of English exists in Slovak and the other way round (tested). Pages
get the whole catalog of their language; `lookup` reads a dotted key.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .ui import WEB_ROOT

LANGUAGES = ("en", "sk")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "sk": "Slovenčina"}

Catalog = dict[str, Any]


@cache
def catalog(language: str) -> Catalog:
    """All sections of one language, merged: {"common": {...}, "home": {...}, ...}."""
    if language not in LANGUAGES:
        raise KeyError(language)
    merged: Catalog = {}
    for path in sorted((WEB_ROOT / "i18n" / language).glob("*.json")):
        merged[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return merged


def lookup(language: str, dotted: str) -> str:
    node: Any = catalog(language)
    for part in dotted.split("."):
        node = node[part]
    if not isinstance(node, str):
        raise KeyError(dotted)
    return node


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an Accept-Language header (RFC 9110 q-values)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LANGUAGE


def keys(node: Any, prefix: str = "") -> set[str]:
    """Every dotted key of a catalog (for the parity test)."""
    if not isinstance(node, dict):
        return {prefix}
    found: set[str] = set()
    for name, child in node.items():
        found |= keys(child, f"{prefix}.{name}" if prefix else name)
    return found
