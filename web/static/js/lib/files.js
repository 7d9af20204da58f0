// The session's file transfers: one <li> per file, both directions, updated in place from the
// daemon's `file` events. The receiver accepts or declines each offer; either side cancels.
// Nothing of a file is kept by the page but a picture's preview, until the session ends.
import { api } from "./api.js";
import { announce } from "./common.js";
import { formatDuration } from "./countdown.js";
import { setupFileInputs } from "./files-drop.js";
import { download, fetchPicture, isPicture, save, upload } from "./files-transfer.js";
import { language, t } from "./i18n.js";

const FINAL = new Set(["complete", "declined", "cancelled", "failed"]);
const STATES = new Set(["offered", "transferring", "paused", ...FINAL]);
const MOVING = new Set(["transferring", "paused"]);
const ERRORS = new Set([
  "file_too_large", "feature_unavailable", "not_connected", "session_ended", "no_session",
  "invalid_file", "read_failed",
]);
const FAILURES = new Set([
  "hash_mismatch", "too_large", "session_ended", "peer_cancelled", "bad_chunk", "download_interrupted",
]);
const UNITS = ["B", "kB", "MB", "GB", "TB"];

/** "1.5 MB": decimal units, the page's language's digits. */
export function formatSize(bytes) {
  let value = Math.max(0, Number(bytes) || 0);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${new Intl.NumberFormat(language, { maximumFractionDigits: digits }).format(value)} ${UNITS[unit]}`;
}

/** Whole percent done, 100 only when complete. */
function percentOf(file) {
  if (file.state === "complete") return 100;
  if (!file.size) return 0;
  return Math.min(99, Math.floor((file.transferred * 100) / file.size));
}

export class FilesPanel {
  /** `onOffer()` runs when the other person offers a file (for the opt-in notification). */
  constructor(panel, { onOffer = () => {} } = {}) {
    const $ = (id) => document.getElementById(id);
    this.panel = panel;
    this.onOffer = onOffer;
    this.list = $("transfers");
    this.template = $("transfer-template");
    this.errors = $("files-error");
    this.note = $("files-note");
    this.button = $("files-choose");
    this.items = new Map(); // id -> { data, element, source (outgoing File), preview (URL), saving }
    this.posting = 0; // offers on their way to the daemon (their File is not attached yet)
    this.active = false; // the session view is showing
    this.seenReady = false;
    this.usable = false; // connected, and both daemons take files
    setupFileInputs({
      button: this.button,
      input: $("files-input"),
      zone: $("drop-zone"),
      onFiles: (files) => this.send(files),
      active: () => this.active,
    });
  }

  /** The session's phase, and whether both daemons announced the `files` feature. */
  setAvailable(phase, supported) {
    this.active = true;
    const ready = phase === "ready";
    this.seenReady ||= ready;
    this.panel.hidden = !(this.seenReady || this.items.size);
    const usable = ready && supported;
    if (usable && !this.usable) this.errors.replaceChildren(); // what stopped them is over
    this.usable = usable;
    this.button.disabled = !usable;
    let note = "";
    if (!ready) note = t("session.files.notReady");
    else if (!supported) note = t("session.files.unavailable");
    if (this.note.textContent !== note) this.note.textContent = note;
  }

  /** The files of a full state (first frame, events socket back): no announcements. */
  sync(files) {
    for (const file of files || []) this.upsert(file);
  }

  /** A `file` event: update the item and tell a screen reader what changed. */
  event(file) {
    const before = this.items.get(file.id)?.data;
    const { data } = this.upsert(file);
    this.announceChange(before, data);
  }

  /** The session ended: everything goes. True if some transfer was still unfinished. */
  sessionEnded() {
    const unfinished = [...this.items.values()].some((item) => !FINAL.has(item.data.state));
    this.clear();
    this.active = false;
    return unfinished;
  }

  clear() {
    for (const item of this.items.values()) if (item.preview) URL.revokeObjectURL(item.preview);
    this.items.clear();
    this.list.replaceChildren();
    this.errors.replaceChildren();
    this.seenReady = false;
    this.panel.hidden = true;
  }

  // -- sending ---------------------------------------------------------------------------

  async send(files) {
    this.errors.replaceChildren();
    for (const source of files) {
      this.posting += 1;
      try {
        const { file } = await api("POST", "/api/files", {
          name: source.name, size: source.size, type: source.type,
        });
        const item = this.upsert(file);
        item.source = source;
        if (isPicture(source)) item.preview = URL.createObjectURL(source);
        this.render(item);
        this.pump(item);
      } catch (error) {
        this.showError(error, source.name);
      } finally {
        this.posting -= 1;
      }
    }
  }

  async pump(item) {
    try {
      await upload(item.data.id, item.source, item.data.upload_offset ?? 0, () => FINAL.has(item.data.state));
    } catch (error) {
      if (FINAL.has(item.data.state)) return; // the file's own state says what happened
      this.showError(error, item.data.name);
      if (error.code === "read_failed") this.act(item, "cancel");
    }
  }

  showError(error, name) {
    const limit = formatSize(error.details?.limit);
    let text;
    if (ERRORS.has(error.code)) text = t(`session.files.errors.${error.code}`, { name, limit });
    else text = t("session.files.errors.other", { name, reason: error.message });
    // The same refusal for each of several files is said once.
    if ([...this.errors.children].some((line) => line.textContent === text)) return;
    const line = document.createElement("p");
    line.textContent = text;
    this.errors.append(line);
  }

  // -- receiving and the buttons --------------------------------------------------------

  async act(item, action) {
    try {
      const { file } = await api("POST", `/api/files/${encodeURIComponent(item.data.id)}/${action}`, {});
      if (action === "accept") this.receive(item);
      this.upsert(file);
    } catch (error) {
      this.showError(error, item.data.name);
    }
  }

  receive(item) {
    item.saving = true;
    if (isPicture(item.data)) this.fetchPreview(item);
    else download(item.data);
  }

  async fetchPreview(item) {
    try {
      const blob = await fetchPicture(item.data);
      item.preview = URL.createObjectURL(blob);
      this.render(item);
      save(item.preview, item.data.name);
    } catch (error) {
      if (error.code === "incomplete") return; // cut by the daemon: the file's state says why
      item.saving = false;
      this.showError({ code: "other", message: error.message }, item.data.name);
      this.render(item);
    }
  }

  saveAgain(item) {
    if (item.preview && item.data.state === "complete") save(item.preview, item.data.name);
    else this.receive(item);
    this.render(item);
  }

  // -- the list ---------------------------------------------------------------------------

  upsert(file) {
    let item = this.items.get(file.id);
    if (!item) {
      item = { data: { ...file }, element: this.build(file.id), saving: false };
      this.items.set(file.id, item);
      this.list.append(item.element);
      this.panel.hidden = false;
    } else {
      item.data = { ...item.data, ...file };
    }
    if (FINAL.has(item.data.state)) item.source = null; // a pasted picture's bytes go too
    this.render(item);
    return item;
  }

  build(id) {
    const element = this.template.content.firstElementChild.cloneNode(true);
    element.dataset.id = id;
    const on = (selector, handler) =>
      element.querySelector(selector).addEventListener("click", () => handler(this.items.get(id)));
    on(".transfer__accept", (item) => this.act(item, "accept"));
    on(".transfer__decline", (item) => this.act(item, "decline"));
    on(".transfer__cancel", (item) => this.act(item, "cancel"));
    on(".transfer__save", (item) => this.saveAgain(item));
    return element;
  }

  render(item) {
    const { data: file, element } = item;
    const q = (selector) => element.querySelector(selector);
    const incoming = file.direction === "incoming";
    const state = STATES.has(file.state) ? file.state : "failed";
    const focused = element.contains(document.activeElement) ? document.activeElement : null;
    element.dataset.state = state;
    element.dataset.direction = incoming ? "incoming" : "outgoing";

    const name = file.name;
    q(".transfer__name").textContent = name;
    q(".transfer__direction").textContent = t(incoming ? "session.files.incoming" : "session.files.outgoing");
    q(".transfer__size").textContent = formatSize(file.size);
    q(".transfer__type").textContent = file.type || t("session.files.unknownType");
    const preview = q(".transfer__preview");
    preview.hidden = !item.preview;
    if (item.preview && preview.getAttribute("src") !== item.preview) {
      preview.src = item.preview;
      preview.alt = t("session.files.previewAlt", { name });
    }

    const status = this.statusText(item, state);
    const progress = q(".transfer__progress");
    const percent = percentOf(file);
    progress.hidden = !(MOVING.has(state) || state === "complete");
    progress.setAttribute("aria-valuenow", String(percent));
    progress.setAttribute("aria-valuetext", status);
    progress.setAttribute("aria-label", t("session.files.progressLabel", { name }));
    q(".transfer__bar").style.width = `${percent}%`;
    q(".transfer__status").textContent = status;

    const offeredToMe = incoming && state === "offered";
    this.showButton(q(".transfer__accept"), offeredToMe, "acceptLabel", name);
    this.showButton(q(".transfer__decline"), offeredToMe, "declineLabel", name);
    this.showButton(q(".transfer__cancel"), !FINAL.has(state) && !offeredToMe, "cancelLabel", name);
    const canSave = incoming && ((MOVING.has(state) && !file.download && !item.saving)
      || (state === "complete" && Boolean(item.preview)));
    this.showButton(q(".transfer__save"), canSave, "saveLabel", name);

    // A button that disappears under the keyboard hands the focus on, never to the page's top.
    if (focused && (focused.hidden || !element.contains(focused))) {
      const next = [...element.querySelectorAll("button")].find((button) => !button.hidden);
      (next || element).focus();
    }
  }

  showButton(button, shown, label, name) {
    button.hidden = !shown;
    button.setAttribute("aria-label", t(`session.files.${label}`, { name }));
  }

  statusText(item, state) {
    const file = item.data;
    const incoming = file.direction === "incoming";
    const orphan = !incoming && !item.source && !FINAL.has(state) && this.posting === 0;
    if (orphan) return t("session.files.state.orphan");
    switch (state) {
      case "offered":
        return t(incoming ? "session.files.state.offeredIn" : "session.files.state.offeredOut");
      case "transferring":
      case "paused": {
        const parts = [t("session.files.progress", {
          percent: percentOf(file), done: formatSize(file.transferred), size: formatSize(file.size),
        })];
        if (state === "paused") parts.unshift(t("session.files.state.paused"));
        else if (file.rate > 0) parts.push(t("session.files.speed", { rate: formatSize(file.rate) }));
        if (state === "transferring" && file.eta_seconds >= 1) { // "00:00 left" says nothing
          parts.push(t("session.files.timeLeft", { time: formatDuration(file.eta_seconds) }));
        }
        if (incoming && !file.download && !item.saving) parts.push(t("session.files.state.notSaving"));
        return parts.join(" · ");
      }
      case "complete":
        return t(incoming ? "session.files.state.completeIn" : "session.files.state.completeOut");
      case "declined":
        return t(incoming ? "session.files.state.declinedIn" : "session.files.state.declinedOut");
      case "cancelled":
        return t(file.cancelled_by === "me" ? "session.files.state.cancelledMe" : "session.files.state.cancelledPeer");
      default:
        return t("session.files.state.failed", { reason: this.failure(file) });
    }
  }

  failure(file) {
    const code = file.error?.code;
    if (FAILURES.has(code)) return t(`session.files.failures.${code}`);
    return file.error?.reason || t("session.files.failures.unknown");
  }

  announceChange(before, file) {
    const incoming = file.direction === "incoming";
    const name = file.name;
    if (!before && incoming && file.state === "offered") {
      announce(t("session.files.announce.offer", { name, size: formatSize(file.size) }));
      this.onOffer();
      return;
    }
    if (!before || before.state === file.state) return;
    if (file.state === "complete") {
      announce(t(incoming ? "session.files.announce.received" : "session.files.announce.sent", { name }));
    } else if (file.state === "declined" && !incoming) {
      announce(t("session.files.announce.declined", { name }));
    } else if (file.state === "cancelled" && file.cancelled_by === "peer") {
      announce(t("session.files.announce.cancelled", { name }));
    } else if (file.state === "failed") {
      announce(t("session.files.announce.failed", { name, reason: this.failure(file) }));
    }
  }
}
