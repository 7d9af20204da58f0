"""The latency anchor: Chromium to Chromium directly, no daemon in between.

Two pages of bench/video_pages, served by a small aiohttp static server on
127.0.0.1, in one headless Chromium (the launch flags of tests/browser.py's
CALL_ARGS and of `bench.ui_browser`: fake camera, fake permission prompt, loopback
candidates). The sender page draws the same kind of stamp as orbitd's test pattern
(frame counter, Date.now() in ms) into a canvas FPS times a second and sends
`canvas.captureStream(FPS)`, VP8 only, over an RTCPeerConnection; the receiver page
reads the stamp back each requestVideoFrameCallback. Playwright carries the offer
and the answer (gathering complete, only 127.0.0.1 candidates) between the pages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, async_playwright

from .procs import BenchError
from .runner import say
from .ui_browser import ARGS, find_chromium
from .video_child import CpuWindow, descendants_cpu
from .video_measure import PATH_DIRECT, Flow, Mode, Timing, flow_of

PAGES = Path(__file__).resolve().parent / "video_pages"
CALL_ARGS = [*ARGS, "--allow-loopback-in-peer-connection"]
WAIT_MS = 20_000
FIRST_FRAMES = 10


@contextlib.asynccontextmanager
async def static_server() -> AsyncIterator[str]:
    """bench/video_pages on 127.0.0.1 (a free port); yields its base URL."""
    app = web.Application()
    app.router.add_static("/", PAGES)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = int(runner.addresses[0][1])
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = find_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CALL_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def measure_direct(browser: Browser, base: str, mode: Mode, timing: Timing) -> Flow:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    try:
        sender, receiver = await context.new_page(), await context.new_page()
        await sender.goto(f"{base}/sender.html")
        await receiver.goto(f"{base}/receiver.html")
        offer = await sender.evaluate(
            "([w, h, fps]) => bench.offer(w, h, fps)", [mode.width, mode.height, mode.fps]
        )
        answer = await receiver.evaluate("(sdp) => bench.answer(sdp)", offer)
        await sender.evaluate("(sdp) => bench.accept(sdp)", answer)
        try:
            await receiver.wait_for_function(
                f"() => bench.connected >= {FIRST_FRAMES}", timeout=WAIT_MS
            )
        except Exception as exc:
            raise BenchError(
                f"Chromium direct {mode.label}: no stamped frames in {WAIT_MS / 1000:g} s"
            ) from exc
        await asyncio.sleep(timing.warmup)
        await receiver.evaluate("() => bench.mark()")
        cpu = CpuWindow({"Chromium (both pages)": descendants_cpu(("chrom",))})
        await asyncio.sleep(timing.seconds)
        stats: dict[str, Any] = await receiver.evaluate("() => bench.stats()")
        _wall, percent = cpu.read()
        sent: dict[str, Any] = await sender.evaluate("() => bench.stats()")
    finally:
        await context.close()
    at_callback = stats.pop("at_callback_ms")
    extra = {
        "sender": sent,
        "receiver": {k: v for k, v in stats.items() if k != "latencies_ms"},
        "latency_at_callback_ms": _summary(at_callback),
    }
    flow = flow_of(PATH_DIRECT, mode, stats, percent, extra)
    say(
        f"video: {PATH_DIRECT} {mode.label}: {flow.fps:.1f} fps, latency p50 "
        f"{flow.latency_ms.p50:.0f} ms, sent {sent.get('frameWidth')}x{sent.get('frameHeight')}, "
        f"CPU Chromium {percent['Chromium (both pages)']:.1f}%"
    )
    return flow


def _summary(samples: list[float]) -> dict[str, float]:
    from .stats import Summary

    s = Summary.of([float(x) for x in samples])
    return {"p50": s.p50, "p90": s.p90, "p99": s.p99, "max": s.max}
