"""The 401, 403 and 404 pages: the product's design, the user's language, what to do
(`orbitd open`); API paths keep JSON errors; nothing of the daemon shown before login."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from orbitcore.i18n import catalog
from orbitd.app import create_app
from orbitd.identity import load_or_create_identity
from orbitd.security import LoginGate
from orbitd.settings import load_config
from tests.browser import browser
from tests.processes import Daemon, start_daemon

__all__ = ["browser"]  # the fixture, used by name
SECRET = "error-pages-secret-" + "x" * 30
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    config = load_config(
        environ={}, overrides={"data_dir": str(tmp_path), "profile": "alice", "lan_enabled": False}
    )
    identity = load_or_create_identity(tmp_path)
    app = create_app(config, identity, LoginGate(profile="alice", login_secret=SECRET))
    return await aiohttp_client(app)


def texts(language: str, kind: str) -> dict[str, str]:
    section: dict[str, str] = catalog(language)["errors"][kind]
    return section


@pytest.mark.parametrize("language", ["en", "sk"])
async def test_the_login_page_says_what_to_do_in_the_users_language(
    client: Client, language: str
) -> None:
    for path in ("/", "/session", "/help", "/no-such-page"):
        response = await client.get(path, headers={"Accept-Language": f"{language};q=0.9"})
        assert response.status == 401 and response.content_type == "text/html", path
        page = await response.text()
        assert f'<html lang="{language}">' in page
        assert texts(language, "loginRequired")["title"] in page
        assert "<code>orbitd open</code>" in page
        assert 'href="/static/css/app.css"' in page
        assert "<script" not in page.replace('<script type="application/json"', "")
        assert 'id="language"' not in page  # the switcher needs the API
        assert "site-footer__id" not in page  # no fingerprint before login


async def test_a_refused_link_is_a_page_and_json_for_scripts(client: Client) -> None:
    response = await client.get("/login?secret=nope", headers={"Accept-Language": "sk"})
    assert response.status == 403 and response.content_type == "text/html"
    page = await response.text()
    assert texts("sk", "loginRefused")["title"] in page and "orbitd open" in page
    scripted = await client.get("/login?secret=nope", headers={"Accept": "application/json"})
    assert scripted.status == 403
    assert (await scripted.json())["error"] == "login_refused"


async def test_api_paths_keep_json_errors(client: Client) -> None:
    response = await client.get("/api/state")
    assert response.status == 401
    body = await response.json()
    assert body["error"] == "login_required" and "orbitd open" in body["reason"]
    assert (await client.get(f"/login?secret={SECRET}")).status == 200
    missing = await client.get("/api/no-such-thing")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"


async def test_not_found_is_a_page_after_login(client: Client) -> None:
    assert (await client.get(f"/login?secret={SECRET}")).status == 200
    for path in ("/no-such-page", "/help/no-such-part"):
        response = await client.get(path, headers={"Accept-Language": "sk"})
        assert response.status == 404 and response.content_type == "text/html", path
        page = await response.text()
        assert texts("sk", "notFound")["title"] in page and 'href="/"' in page
        assert 'id="language"' in page  # logged in: the switcher works


async def test_only_the_stylesheets_and_brand_are_served_before_login(client: Client) -> None:
    for path in ("/static/css/app.css", "/static/brand/glyph.svg"):
        assert (await client.get(path)).status == 200, path
    for path in (
        "/static/js/session.js",
        "/static/css/../js/session.js",
        "/static/css/%2e%2e/js/session.js",
        "/static/brand/../js/page.js",
    ):
        assert (await client.get(path)).status == 401, path


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    started = await start_daemon(tmp_path, "alice", "http://127.0.0.1:9", api_login=False)
    yield started
    await started.close()


async def test_the_login_page_in_chromium_is_styled_and_clean(
    browser: Browser, daemon: Daemon
) -> None:
    context = await browser.new_context(locale="sk-SK")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(r.url))
    response = await page.goto(daemon.base + "/session")
    assert response is not None and response.status == 401
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        texts("sk", "loginRequired")["title"]
    )
    card = page.locator(".error-page .card")
    await expect(card).to_be_visible()
    background = await card.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")  # app.css applied
    # The 401 of the document itself is the only console error Chromium reports.
    assert [p for p in problems if "401" not in p] == []
    await context.close()
