"""The translations: English and Slovak side by side, and every key the UI asks for exists.

- Both languages have the same sections, the same keys, the same shapes and
  the same {placeholders}; no text is empty; long texts are translated.
- Every `t.x.y` in a template and every `t("x.y")` in a script resolves in
  both languages, and a page's script asks only for the catalog sections the
  page embeds (what orbitd.pages and rendezvous.admin_page send).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orbitcore.i18n import LANGUAGES, catalog, lookup
from orbitcore.ui import WEB_ROOT
from orbitd.pages import PAGES
from rendezvous import admin_page, join_page

I18N = WEB_ROOT / "i18n"
TEMPLATES = WEB_ROOT / "templates"
JS = WEB_ROOT / "static" / "js"

# Templates read catalogs with dots (`t.help.sections.items()`): a key with one of
# these names would be shadowed by the dict method of the same name.
DICT_METHODS = frozenset(name for name in dir(dict) if not name.startswith("_"))
PLACEHOLDER = re.compile(r"\{(\w+)\}")
WORD = re.compile(r"[^\W\d_]{2,}")


def sections(language: str) -> set[str]:
    return {path.stem for path in (I18N / language).glob("*.json")}


ALL_SECTIONS = sorted(set().union(*(sections(lang) for lang in LANGUAGES)))


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, leaf) of a catalog; list items get their index as a key."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from walk(child, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from walk(child, f"{path}.{index}")
    else:
        yield path, node


def test_both_languages_have_the_same_sections() -> None:
    assert sections("en") == sections("sk")
    assert {"common", "help", "legal", "admin"} <= sections("en")


@pytest.mark.parametrize("section", ALL_SECTIONS)
def test_every_file_is_valid_json_with_an_object(section: str) -> None:
    for language in LANGUAGES:
        path = I18N / language / f"{section}.json"
        assert path.exists(), f"{path} is missing"
        assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict), path


@pytest.mark.parametrize("section", ALL_SECTIONS)
def test_keys_and_shapes_match(section: str) -> None:
    en = dict(walk(catalog("en").get(section, {}), section))
    sk = dict(walk(catalog("sk").get(section, {}), section))
    assert sorted(set(en) - set(sk)) == [], "keys missing in Slovak"
    assert sorted(set(sk) - set(en)) == [], "keys missing in English"
    for key in en:
        assert type(en[key]) is type(sk[key]), f"{key}: {type(en[key])} vs {type(sk[key])}"


@pytest.mark.parametrize("section", ALL_SECTIONS)
def test_no_empty_or_non_text_leaves(section: str) -> None:
    for language in LANGUAGES:
        for key, value in walk(catalog(language)[section], section):
            assert isinstance(value, str), f"{language}: {key} is {type(value).__name__}"
            assert value.strip(), f"{language}: {key} is empty"


@pytest.mark.parametrize("section", ALL_SECTIONS)
def test_placeholders_match(section: str) -> None:
    en = dict(walk(catalog("en")[section], section))
    sk = dict(walk(catalog("sk")[section], section))
    for key, text in en.items():
        if isinstance(text, str) and isinstance(sk.get(key), str):
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(sk[key])), key


@pytest.mark.parametrize("section", ALL_SECTIONS)
def test_long_texts_are_translated(section: str) -> None:
    """A Slovak text identical to its English one of three words or more was not translated."""
    en = dict(walk(catalog("en")[section], section))
    sk = dict(walk(catalog("sk")[section], section))
    same = [
        key
        for key, text in en.items()
        if sk.get(key) == text and len(WORD.findall(PLACEHOLDER.sub("", str(text)))) >= 3
    ]
    assert same == []


def test_slovak_is_written_with_diacritics() -> None:
    for section in ("help", "legal", "admin"):
        texts = " ".join(str(v) for _, v in walk(catalog("sk")[section]))
        assert re.search(r"[áäčďéíĺľňóôŕšťúýž]", texts), section


# -- templates -------------------------------------------------------------------------

TEMPLATE_REF = re.compile(r"(?<![\w.\]])t\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
JINJA_CODE = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.S)


def template_refs(path: Path) -> set[str]:
    refs: set[str] = set()
    for expression, statement in JINJA_CODE.findall(path.read_text(encoding="utf-8")):
        refs.update(TEMPLATE_REF.findall(expression or statement))
    return refs


def problem(language: str, dotted: str) -> str | None:
    """What is wrong with `t.<dotted>` in a template, or None: it must name a text or a group
    (a trailing dict method such as `.items()` is fine, a key named like one is not)."""
    node: Any = catalog(language)
    for part in dotted.split("."):
        if isinstance(node, dict) and part in DICT_METHODS:
            if part in node:
                return f"{dotted}: the key {part!r} is hidden by dict.{part}; write [{part!r}]"
            return None
        if not isinstance(node, dict) or part not in node:
            return f"{dotted}: missing"
        node = node[part]
    return None


TEMPLATE_FILES = sorted(TEMPLATES.rglob("*.html"))


def test_the_regex_finds_references() -> None:
    assert "common.nav.help" in template_refs(TEMPLATES / "_partials" / "header.html")
    assert "help.sections.items" in template_refs(TEMPLATES / "help.html")


@pytest.mark.parametrize(
    "template", TEMPLATE_FILES, ids=[str(p.relative_to(TEMPLATES)) for p in TEMPLATE_FILES]
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_reference_exists(template: Path, language: str) -> None:
    problems = sorted(filter(None, (problem(language, ref) for ref in template_refs(template))))
    assert problems == [], f"{template.name} ({language})"


# -- scripts ---------------------------------------------------------------------------

SCRIPT_KEY = re.compile(r"""(?<![\w.$])t\(\s*(?:"([^"\\]+)"|'([^'\\]+)'|`([^`\\$]+)`)""")
IMPORT = re.compile(r"""(?:import|from)\s*["'](\.{1,2}/[^"']+\.js)["']""")
SCRIPT_FILES = sorted([*JS.glob("*.js"), *JS.glob("lib/*.js")])


def script_keys(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {a or b or c for a, b, c in SCRIPT_KEY.findall(text)}


def reachable(path: Path) -> set[Path]:
    """The module and every module it imports, relatively, transitively."""
    seen: set[Path] = set()
    todo = [path.resolve()]
    while todo:
        current = todo.pop()
        if current in seen or not current.exists():
            continue
        seen.add(current)
        text = current.read_text(encoding="utf-8")
        todo += [(current.parent / found).resolve() for found in IMPORT.findall(text)]
    return seen


def test_the_regex_finds_script_keys() -> None:
    assert "common.errors.network" in script_keys(JS / "lib" / "api.js")
    assert "admin.login.wrong" in script_keys(JS / "admin.js")
    assert IMPORT.findall('import { t } from "./lib/i18n.js";') == ["./lib/i18n.js"]


@pytest.mark.parametrize("script", SCRIPT_FILES, ids=[str(p.relative_to(JS)) for p in SCRIPT_FILES])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_script_key_exists(script: Path, language: str) -> None:
    missing = []
    for key in sorted(script_keys(script)):
        try:
            lookup(language, key)
        except (KeyError, TypeError):
            missing.append(key)
    assert missing == [], f"{script.name} ({language}) asks for missing texts"


def page_scripts() -> dict[str, tuple[str, ...]]:
    """script name -> the catalog sections its page embeds (for the scripts that exist)."""
    found: dict[str, set[str]] = {}
    for _template, _page, script, wanted in PAGES.values():
        found.setdefault(script, set(wanted))
        found[script] &= set(wanted)  # the same script on two pages gets the smaller set
    found["admin"] = set(admin_page.SECTIONS)
    found["join"] = set(join_page.SECTIONS)
    return {name: tuple(sorted(s)) for name, s in found.items() if (JS / f"{name}.js").exists()}


@pytest.mark.parametrize("script", sorted(page_scripts()))
def test_scripts_ask_only_for_embedded_sections(script: str) -> None:
    embedded = page_scripts()[script]
    outside = sorted(
        f"{module.name}: {key}"
        for module in reachable(JS / f"{script}.js")
        for key in script_keys(module)
        if key.split(".")[0] not in embedded
    )
    assert outside == [], f"{script}.js gets only {embedded}"
