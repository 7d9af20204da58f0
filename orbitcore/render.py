"""Page rendering with jinja2: templates under web/templates, autoescaped."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2

from .i18n import LANGUAGE_NAMES, LANGUAGES, catalog
from .ui import WEB_ROOT


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(WEB_ROOT / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson_attr"] = lambda value: json.dumps(value, ensure_ascii=False)
    # Slovak diacritics as themselves, not \u escapes (still HTML-safe: <, >, & are escaped).
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
    return env


def render(template: str, language: str, **context: Any) -> str:
    """Render `template` in `language`; the page gets `t` (its catalog) and the switcher data."""
    strings = catalog(language)
    return (
        environment()
        .get_template(template)
        .render(
            t=strings,
            lang=language,
            languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            **context,
        )
    )
