// Consent to the terms before the first token or join; saved by the daemon across restarts.
import { api } from "./api.js";
import { setBusy } from "./forms.js";
import { t } from "./i18n.js";

export class Terms {
  constructor(dialog, accepted) {
    this.dialog = dialog;
    this.accepted = accepted;
    this.error = dialog.querySelector("#terms-error");
    this.agree = dialog.querySelector("#terms-agree");
    dialog.querySelector("#terms-decline").addEventListener("click", () => dialog.close("declined"));
    this.agree.addEventListener("click", () => this.save());
  }

  /** Resolves true once the user has agreed (asking now if they have not yet). */
  ensure() {
    if (this.accepted) return Promise.resolve(true);
    this.error.textContent = "";
    return new Promise((resolve) => {
      this.dialog.addEventListener("close", () => resolve(this.accepted), { once: true });
      this.dialog.showModal();
    });
  }

  async save() {
    setBusy(this.agree, true);
    try {
      await api("POST", "/api/preferences", { terms_accepted: true });
      this.accepted = true;
      this.dialog.close("agreed");
    } catch {
      this.error.textContent = t("home.terms.failed");
    } finally {
      setBusy(this.agree, false);
    }
  }
}
