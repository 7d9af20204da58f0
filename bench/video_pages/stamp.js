// The stamp of orbitd/media/sources.py, drawn on and read from a 2D canvas:
// three rows of 32 cells of 16x16 px from the top-left corner; white is 1, black 0;
// row 0 the frame counter, row 1 the capture time (Date.now() ms mod 2^32), row 2
// the bitwise NOT of row 0. Read: mean luma of each cell's central 8x8 pixels.
"use strict";

const CELL = 16;
const CELLS = 32;
const ROWS = 3;
const STAMP_WIDTH = CELL * CELLS;
const STAMP_HEIGHT = CELL * ROWS;
const MOD32 = 4294967296;
const BARS = ["#ebebeb", "#d2d210", "#10a6a6", "#10d210", "#d210d2", "#d21010", "#1010d2", "#101010"];

function nowMod32() {
  return Date.now() % MOD32;
}

function drawFrame(ctx, width, height, counter, timeMs) {
  const bar = Math.ceil(width / BARS.length);
  const offset = (counter * 4) % width;
  for (let i = 0; i * bar - offset < width; i++) {
    ctx.fillStyle = BARS[i % BARS.length];
    ctx.fillRect(i * bar - offset, STAMP_HEIGHT, bar, height - STAMP_HEIGHT);
  }
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, width, STAMP_HEIGHT);
  ctx.fillStyle = "#fff";
  const values = [counter >>> 0, timeMs >>> 0, ~counter >>> 0];
  values.forEach((value, row) => {
    for (let cell = 0; cell < CELLS; cell++) {
      if ((value >>> (CELLS - 1 - cell)) & 1) ctx.fillRect(cell * CELL, row * CELL, CELL, CELL);
    }
  });
}

// {counter, timeMs} or null (a cell neither black nor white, or the check row wrong).
function readStamp(data, stride) {
  const rows = [];
  for (let row = 0; row < ROWS; row++) {
    let value = 0;
    for (let cell = 0; cell < CELLS; cell++) {
      const top = row * CELL + CELL / 4;
      const left = cell * CELL + CELL / 4;
      let total = 0;
      for (let dy = 0; dy < CELL / 2; dy++) {
        let i = ((top + dy) * stride + left) * 4;
        for (let dx = 0; dx < CELL / 2; dx++, i += 4) {
          total += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
        }
      }
      const mean = total / (CELL * CELL / 4);
      if (mean > 64 && mean < 192) return null;
      value = value * 2 + (mean > 128 ? 1 : 0);
    }
    rows.push(value);
  }
  const [counter, timeMs, check] = rows;
  if (check !== MOD32 - 1 - counter) return null;
  return { counter, timeMs };
}

function age(nowMs, timeMs) {
  return (((Math.round(nowMs) % MOD32) - timeMs) % MOD32 + MOD32) % MOD32;
}

// Only 127.0.0.1 candidates: the browser's other addresses stay out of the connection.
function loopbackOnly(sdp) {
  return sdp
    .split("\r\n")
    .filter((line) => !line.startsWith("a=candidate:") || line.includes(" 127.0.0.1 "))
    .join("\r\n");
}

async function gathered(pc) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

function vp8Only(transceiver) {
  const codecs = RTCRtpReceiver.getCapabilities("video").codecs.filter((c) =>
    ["video/vp8", "video/rtx"].includes(c.mimeType.toLowerCase()),
  );
  transceiver.setCodecPreferences(codecs);
}

// Chromium hides host addresses behind mDNS names until the page may use the camera.
async function revealAddresses() {
  const stream = await navigator.mediaDevices.getUserMedia({ video: true });
  stream.getTracks().forEach((t) => t.stop());
}

async function inboundVideo(pc) {
  for (const s of (await pc.getStats()).values()) {
    if (s.type === "inbound-rtp" && s.kind === "video") return s;
  }
  return null;
}

async function outboundVideo(pc) {
  for (const s of (await pc.getStats()).values()) {
    if (s.type === "outbound-rtp" && s.kind === "video") return s;
  }
  return null;
}
