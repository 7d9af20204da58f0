// The conversation on the page: one <li> per message, updated in place.
// Messages live only here and in the daemon's memory; nothing is stored.
import { language, t } from "./i18n.js";

const TICKS = { sending: "…", sent: "✓", delivered: "✓✓", failed: "!" };
const FAILURE_CODES = new Set(["message_too_long", "bad_signature", "undecryptable", "not_delivered"]);
// A status never goes back: a late "sending" or "sent" does not undo "delivered" or "failed".
const RANK = { sending: 0, sent: 1, delivered: 2, failed: 2 };

export class MessageList {
  constructor({ list, empty, template, onDelete }) {
    this.list = list;
    this.empty = empty;
    this.template = template;
    this.onDelete = onDelete;
    this.items = new Map();
    this.early = new Map(); // status or deletion that arrived before its message
    this.clock = new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit" });
  }

  /** Add or update a message; true if it is new on the page. */
  upsert(message) {
    let item = this.items.get(message.message_id);
    const isNew = !item;
    if (isNew) {
      item = { data: { ...message }, element: this.build(message) };
      this.items.set(message.message_id, item);
      Object.assign(item.data, this.early.get(message.message_id));
      this.early.delete(message.message_id);
      this.render(item);
      const follow = this.atBottom() || message.author === "me";
      this.list.append(item.element);
      if (follow) this.list.scrollTop = this.list.scrollHeight;
    } else {
      const old = item.data;
      item.data = { ...message };
      if (old.deleted) Object.assign(item.data, { deleted: true, text: "" });
      if ((RANK[old.status] ?? 1) > (RANK[message.status] ?? 1)) item.data.status = old.status;
      if (old.code) item.data.code = old.code;
      this.render(item);
    }
    this.empty.hidden = this.items.size > 0;
    return isNew;
  }

  setStatus(id, status, code) {
    this.update(id, { status, ...(code ? { code } : {}) });
  }

  markDeleted(id) {
    this.update(id, { deleted: true, text: "" });
  }

  update(id, change) {
    const item = this.items.get(id);
    if (!item) {
      this.early.set(id, { ...this.early.get(id), ...change });
      return;
    }
    Object.assign(item.data, change);
    this.render(item);
  }

  clear() {
    this.items.clear();
    this.early.clear();
    this.list.replaceChildren();
    this.empty.hidden = false;
  }

  atBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 48;
  }

  build(message) {
    const element = this.template.content.firstElementChild.cloneNode(true);
    element.dataset.id = message.message_id;
    element.querySelector(".message__delete").addEventListener("click", () => this.onDelete(message.message_id));
    return element;
  }

  render({ data, element }) {
    const mine = data.author === "me";
    element.classList.toggle("message--me", mine);
    element.classList.toggle("message--peer", !mine);
    element.classList.toggle("message--deleted", Boolean(data.deleted));
    element.dataset.status = data.status;
    element.querySelector(".message__author").textContent = `${t(mine ? "session.chat.you" : "session.chat.peer")}:`;
    element.querySelector(".message__text").textContent = data.deleted ? t("session.chat.deleted") : data.text;
    const time = element.querySelector(".message__time");
    const when = new Date((data.timestamp || 0) * 1000);
    time.dateTime = when.toISOString();
    time.textContent = this.clock.format(when);
    const status = element.querySelector(".message__status");
    status.hidden = !mine || Boolean(data.deleted);
    element.querySelector(".message__ticks").textContent = TICKS[data.status] || "";
    element.querySelector(".message__status-text").textContent = this.statusText(data);
    element.querySelector(".message__delete").hidden = !mine || Boolean(data.deleted);
  }

  statusText(data) {
    const label = t(`session.chat.status.${data.status in TICKS ? data.status : "sent"}`);
    if (data.status !== "failed") return label;
    const why = t(`session.chat.failed.${FAILURE_CODES.has(data.code) ? data.code : "unknown"}`);
    return `${label}: ${why}`;
  }
}
