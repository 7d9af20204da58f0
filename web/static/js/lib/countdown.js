// The session's countdown: synced from the daemon's remaining_seconds, ticking locally.

/** "mm:ss", or "h:mm:ss" from an hour up. */
export function formatDuration(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

export class Countdown {
  /** `onTick(secondsLeft, previous)` runs once a second while it counts. */
  constructor(onTick) {
    this.onTick = onTick;
    this.deadline = null;
    this.shown = null;
    this.timer = null;
  }

  /** Re-sync from the daemon; null stops it (not started yet, or over). */
  sync(remainingSeconds) {
    if (typeof remainingSeconds !== "number") {
      this.stop();
      return;
    }
    this.deadline = performance.now() + remainingSeconds * 1000;
    this.tick();
    if (this.timer === null) this.timer = setInterval(() => this.tick(), 250);
  }

  tick() {
    const left = Math.max(0, Math.ceil((this.deadline - performance.now()) / 1000));
    if (left === this.shown) return;
    const previous = this.shown;
    this.shown = left;
    this.onTick(left, previous);
    if (left === 0) this.stop();
  }

  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
