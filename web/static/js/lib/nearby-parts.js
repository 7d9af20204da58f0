// The Nearby card's small parts: the codes it names, how it words them, and a stepped dialog.
import { t } from "./i18n.js";

export const REASONS = new Set(["key_mismatch", "known_name_other_key", "duplicate_name"]);
const OVER = new Set([
  "declined", "expired", "unreachable", "cancelled", "withdrawn", "gone", "invite_mismatch",
  "peer_aborted", "connect_timeout",
]);
const ERRORS = new Set([
  "session_in_progress", "invite_pending", "not_nearby", "not_nearby_there", "peer_busy",
  "rate_limited", "peer_unreachable", "lan_off", "request_closed", "request_not_found",
  "name_verified_with_other_key", "peer_knows_name_with_other_key", "lan_disabled", "no_network",
]);

/** The first 16 bytes of a fingerprint in groups of four, as the page footer shows its own. */
export function shortFingerprint(fingerprint) {
  return (String(fingerprint).slice(0, 32).match(/.{4}/g) || []).join(" ");
}

/** The 6 digits of a typed code (spaces allowed), or null. */
export function readCode(text) {
  const digits = String(text ?? "").replace(/\s+/g, "");
  return /^\d{6}$/.test(digits) ? digits : null;
}

/** Seconds as m:ss. */
export function clock(seconds) {
  const whole = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

export function spaced(code) {
  return `${code.slice(0, 3)} ${code.slice(3)}`;
}

export function errorText(error) {
  return ERRORS.has(error.code) ? t(`home.nearby.errors.${error.code}`) : error.message;
}

export function overText(reason, name) {
  return t(`home.nearby.over.${OVER.has(reason) ? reason : "ended"}`, { name });
}

export function button(label, className, onClick, ariaLabel) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  if (ariaLabel) element.setAttribute("aria-label", ariaLabel);
  element.addEventListener("click", onClick);
  return element;
}

/** A modal <dialog> whose [data-step] children are shown one at a time. */
export class Steps {
  constructor(dialog, focusFor) {
    this.dialog = dialog;
    this.focusFor = focusFor;
    this.step = null;
  }

  show(step) {
    for (const part of this.dialog.querySelectorAll(":scope > [data-step]")) {
      part.hidden = part.dataset.step !== step;
    }
    this.step = step;
    if (!this.dialog.open) this.dialog.showModal();
    this.focusFor(step)?.focus();
  }

  close() {
    this.step = null;
    if (this.dialog.open) this.dialog.close();
  }
}
