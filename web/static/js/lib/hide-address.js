// "Hide my address from the other person": relay only, saved as a preference by the
// daemon; it applies from the next session (a running one keeps how it connects).
import { api } from "./api.js";
import { t } from "./i18n.js";

export function setupHideAddress(input, status) {
  if (!input) return;
  input.addEventListener("change", async () => {
    const wanted = input.checked;
    input.disabled = true;
    status.textContent = "";
    try {
      const saved = await api("POST", "/api/preferences", { hide_address: wanted });
      input.checked = saved.hide_address === true;
      status.textContent = t("common.privacy.saved");
    } catch {
      input.checked = !wanted;
      status.textContent = t("common.privacy.failed");
    } finally {
      input.disabled = false;
    }
  });
}
