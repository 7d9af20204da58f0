// Opt-in desktop notifications while the tab is hidden. The permission is asked only on a
// click, and a notification never carries the message (the system may keep it on disk).
import { announce } from "./common.js";
import { t } from "./i18n.js";

export function setupNotifications(button, hint) {
  if (!("Notification" in window)) return { notify() {} };
  button.hidden = false;
  hint.hidden = false;
  let enabled = false;
  button.addEventListener("click", async () => {
    if (enabled) {
      enabled = false;
    } else {
      let permission = Notification.permission;
      if (permission === "default") permission = await Notification.requestPermission();
      enabled = permission === "granted";
      hint.textContent = t(enabled ? "session.notify.hint" : "session.notify.denied");
      if (enabled) announce(t("session.notify.on"));
    }
    button.setAttribute("aria-pressed", String(enabled));
  });
  return {
    /** `body`: what happened, never its content (a message's text, a file's name). */
    notify(body = t("session.notify.body")) {
      if (!enabled || !document.hidden || Notification.permission !== "granted") return;
      const shown = new Notification(t("session.notify.title"), {
        body,
        tag: "chatorbit-message",
      });
      shown.addEventListener("click", () => {
        window.focus();
        shown.close();
      });
    },
  };
}
