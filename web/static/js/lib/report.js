// The report-abuse dialog: only what the user writes is sent, with the session's token.
import { api } from "./api.js";
import { announce } from "./common.js";
import { ask, wireDialog } from "./dialogs.js";
import { setBusy } from "./forms.js";
import { t } from "./i18n.js";

const KNOWN_ERRORS = new Set(["rate_limited", "rendezvous_unreachable", "no_session", "token_not_found"]);

export function setupReport(dialog, openers) {
  wireDialog(dialog);
  const form = dialog.querySelector("#report-form");
  const done = dialog.querySelector("#report-done");
  const error = dialog.querySelector("#report-error");
  const submit = dialog.querySelector("#report-submit");

  for (const opener of openers) {
    opener.addEventListener("click", () => {
      form.hidden = false;
      done.hidden = true;
      error.textContent = "";
      ask(dialog);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { reason: form.elements.reason.value };
    const details = form.elements.details.value.trim();
    const contact = form.elements.contact.value.trim();
    if (details) body.details = details;
    if (contact) body.contact = contact;
    error.textContent = "";
    setBusy(submit, true);
    try {
      await api("POST", "/api/report", body);
      form.reset();
      form.hidden = true;
      done.hidden = false;
      dialog.querySelector("#report-done-text").focus();
      announce(t("session.report.sent"));
    } catch (failure) {
      const reason = KNOWN_ERRORS.has(failure.code) ? t(`session.report.errors.${failure.code}`) : failure.message;
      error.textContent = t("session.report.failed", { reason });
    } finally {
      setBusy(submit, false);
    }
  });
}
