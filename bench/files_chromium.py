"""The files benchmark's second baseline: a data channel from Chromium to Chromium.

Two pages of one headless Debian Chromium (the launch flags of `bench.video_chromium`:
loopback candidates allowed), each an RTCPeerConnection; Playwright carries the offer
and the answer (gathering complete, 127.0.0.1 only). The first page sends `size` bytes
on a `bulk` channel in messages of `chunk` bytes, its bufferedAmount kept under
`buffered` with `bufferedAmountLowThreshold` (the same loop as `bench.aiortc_pair`'s
and a file sender's); the second counts them and notes when the last one arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Page

from .files_bare import BulkParams
from .procs import BenchError
from .video_chromium import chromium

WAIT_MS = 20_000

SCRIPT = """
window.bench = {
  pc: null, received: 0, firstAt: 0, lastAt: 0, goal: 0, startedAt: 0,
  async gathered(pc) {
    if (pc.iceGatheringState !== "complete") {
      await new Promise((done) => pc.addEventListener("icegatheringstatechange",
        () => pc.iceGatheringState === "complete" && done()));
    }
    return pc.localDescription.sdp;
  },
  async offer() {
    this.pc = new RTCPeerConnection({iceServers: []});
    this.bulk = this.pc.createDataChannel("bulk", {ordered: true});
    this.bulk.binaryType = "arraybuffer";
    this.opened = new Promise((done) => this.bulk.addEventListener("open", done));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    return this.gathered(this.pc);
  },
  async answer(sdp) {
    this.pc = new RTCPeerConnection({iceServers: []});
    this.pc.addEventListener("datachannel", ({channel}) => {
      channel.binaryType = "arraybuffer";
      channel.addEventListener("message", ({data}) => {
        const now = performance.timeOrigin + performance.now();
        if (!this.received) this.firstAt = now;
        this.received += data.byteLength;
        this.lastAt = now;
      });
    });
    await this.pc.setRemoteDescription({type: "offer", sdp});
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    return this.gathered(this.pc);
  },
  async accept(sdp) {
    await this.pc.setRemoteDescription({type: "answer", sdp});
    await this.opened;
  },
  async send(size, chunk, buffered) {
    const channel = this.bulk, payload = new Uint8Array(chunk);
    channel.bufferedAmountLowThreshold = buffered / 2;
    this.startedAt = performance.timeOrigin + performance.now();
    let left = size;
    while (left > 0) {
      if (channel.bufferedAmount >= buffered) {
        await new Promise((done) =>
          channel.addEventListener("bufferedamountlow", done, {once: true}));
        continue;
      }
      const piece = left >= chunk ? payload : payload.subarray(0, left);
      channel.send(piece);
      left -= piece.byteLength;
    }
    return this.startedAt;
  },
  close() { this.pc && this.pc.close(); },
};
"""


@dataclass(frozen=True)
class ChromiumBulk:
    bytes_received: int
    seconds: float
    """From the first send to the last byte received."""
    mb_per_s: float


async def _page(context: object) -> Page:
    page: Page = await context.new_page()  # type: ignore[attr-defined]
    await page.goto("about:blank")
    await page.add_script_tag(content=SCRIPT)
    return page


async def measure_chromium_bulk(params: BulkParams) -> ChromiumBulk:
    async with chromium() as browser:
        context = await browser.new_context()
        context.set_default_timeout(WAIT_MS)
        try:
            sender, receiver = await _page(context), await _page(context)
            offer = await sender.evaluate("() => bench.offer()")
            answer = await receiver.evaluate("(sdp) => bench.answer(sdp)", offer)
            await sender.evaluate("(sdp) => bench.accept(sdp)", answer)
            started = await sender.evaluate(
                "([size, chunk, buffered]) => bench.send(size, chunk, buffered)",
                [params.size, params.chunk, params.buffered],
            )
            try:
                await receiver.wait_for_function(
                    f"() => bench.received >= {params.size}",
                    polling=100,
                    timeout=params.timeout * 1000,
                )
            except Exception as exc:
                got = await receiver.evaluate("() => bench.received")
                raise BenchError(
                    f"Chromium: {got} of {params.size} bytes in {params.timeout:g} s"
                ) from exc
            received, last = await receiver.evaluate("() => [bench.received, bench.lastAt]")
            await sender.evaluate("() => bench.close()")
        finally:
            await context.close()
    seconds = (float(last) - float(started)) / 1000
    return ChromiumBulk(int(received), seconds, int(received) / seconds / 1e6)
