"""The landing page when the rendezvous's certificate is not trusted (an https:// rendezvous
with a private CA, and no `rendezvous_ca_file`): the user reads what to set, in English and
in Slovak, instead of a bare failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from tests.browser import browser, open_ui
from tests.processes import Daemon, start_daemon
from tests.tls import https_server, make_pki

__all__ = ["browser"]  # the fixture
expect.set_options(timeout=15_000)


@pytest.fixture
async def carol(tmp_path: Path) -> AsyncIterator[Daemon]:
    """A daemon whose rendezvous has a certificate from a CA it was not told about."""
    pki = make_pki(tmp_path / "pki")
    async with https_server(web.Application(), pki) as url:
        daemon = await start_daemon(tmp_path, "carol", url, api_login=False)
        yield daemon
        await daemon.close()


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        ("en-US", "set the daemon's rendezvous_ca_file setting"),
        ("sk-SK", "nastavte v démonovi rendezvous_ca_file"),
    ],
)
async def test_an_untrusted_certificate_says_which_setting_to_use(
    browser: Browser, carol: Daemon, locale: str, said: str
) -> None:
    context, page = await open_ui(browser, carol, locale=locale)
    await page.locator("#invite").fill("ZZZZZZZZZZZZ-abcdefghijkmnpqr")
    await page.locator("#join-form button[type=submit]").click()
    await page.locator("#terms-agree").click()
    await expect(page.locator("#join-error")).to_contain_text(said)
    await context.close()
