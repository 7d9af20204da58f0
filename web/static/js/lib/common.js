// What every page does: the language switcher and the live region.
import { api } from "./api.js";

const switcher = document.getElementById("language");
if (switcher) {
  switcher.addEventListener("change", async () => {
    switcher.disabled = true;
    try {
      await api("POST", "/api/preferences", { language: switcher.value });
      location.reload();
    } catch {
      switcher.value = switcher.dataset.current;
      switcher.disabled = false;
    }
  });
}

/** Say something to screen readers through the page's polite live region. */
export function announce(text) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = "";
  // A new text node after a tick makes screen readers announce repeats too.
  setTimeout(() => { live.textContent = text; }, 50);
}
