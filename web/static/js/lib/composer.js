// The message composer: Enter sends, Shift+Enter adds a line, a counter up to the limit.
import { t } from "./i18n.js";

export class Composer {
  /** `send(text)` posts the message; it throws an Error whose message is shown. */
  constructor(form, send) {
    this.form = form;
    this.send = send;
    this.input = form.querySelector("textarea");
    this.counter = form.querySelector("#composer-counter");
    this.limitNote = form.querySelector("#composer-limit");
    this.hint = form.querySelector("#composer-hint");
    this.button = form.querySelector("button[type=submit]");
    this.error = form.querySelector("#composer-error");
    this.limit = this.input.maxLength;
    this.ready = false;
    this.sending = false;
    this.input.addEventListener("input", () => this.update());
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.update();
  }

  setReady(ready, limit) {
    if (limit) {
      this.limit = limit;
      this.input.maxLength = limit;
    }
    if (ready !== this.ready) this.error.textContent = "";
    this.ready = ready;
    this.input.disabled = !ready;
    this.hint.textContent = ready ? this.hint.dataset.ready : this.hint.dataset.waiting;
    this.update();
  }

  update() {
    const count = this.input.value.length;
    const full = count >= this.limit;
    this.counter.textContent = t("session.chat.counter", { n: count, limit: this.limit });
    this.counter.classList.toggle("is-full", full);
    const note = full ? t("session.chat.atLimit", { limit: this.limit }) : "";
    if (this.limitNote.textContent !== note) this.limitNote.textContent = note;
    this.button.disabled = !this.ready || this.sending;
    this.input.readOnly = this.sending;
  }

  async submit() {
    if (!this.ready || this.sending) return;
    const text = this.input.value;
    if (!text.trim()) {
      this.error.textContent = t("session.chat.errors.empty_message");
      return;
    }
    this.sending = true;
    this.update();
    try {
      await this.send(text);
      this.input.value = "";
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = error.message;
    } finally {
      this.sending = false;
      this.update();
      if (this.ready) this.input.focus();
    }
  }
}
