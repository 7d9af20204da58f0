// The host's invite while waiting for the guest: text, join link (the rendezvous's invite
// page) and QR code, each copyable, the link also shared through the Web Share API.
// Fetched from the daemon when shown, wiped from the page when hidden.
import { api } from "./api.js";
import { copyField } from "./clipboard.js";
import { t } from "./i18n.js";

export class InvitePanel {
  constructor(panel) {
    this.panel = panel;
    this.text = panel.querySelector("#invite-text");
    this.link = panel.querySelector("#invite-link");
    this.qr = panel.querySelector("#invite-qr");
    this.status = panel.querySelector("#copy-status");
    this.loaded = false;
    for (const button of panel.querySelectorAll("[data-copy]")) {
      button.addEventListener("click", async () => {
        const result = await copyField(document.getElementById(button.dataset.copy));
        this.status.textContent = t(result === "copied" ? "session.invite.copied" : "session.invite.copyManual");
      });
    }
    // The Web Share API where the browser has it (phones, some desktops): the link only.
    this.share = panel.querySelector("#invite-share");
    if (typeof navigator.share === "function") {
      this.share.hidden = false;
      this.share.addEventListener("click", async () => {
        if (!this.link.value) return;
        try {
          await navigator.share({ title: t("session.invite.shareTitle"), url: this.link.value });
          this.status.textContent = t("session.invite.shared");
        } catch {
          // cancelled, or not allowed here: copy and the QR code remain
        }
      });
    }
    for (const field of [this.text, this.link]) {
      field.addEventListener("focus", () => field.select());
    }
  }

  async show() {
    this.panel.hidden = false;
    if (this.loaded) return;
    this.loaded = true;
    try {
      const { invite, link } = await api("GET", "/api/invite");
      this.text.value = invite;
      this.link.value = link;
      this.qr.src = "/api/invite.svg";
    } catch {
      this.loaded = false;
      this.status.textContent = t("session.invite.unavailable");
    }
  }

  hide() {
    if (this.panel.hidden) return;
    this.panel.hidden = true;
    this.loaded = false;
    this.text.value = "";
    this.link.value = "";
    this.qr.removeAttribute("src");
    this.status.textContent = "";
  }
}
