// Small form helpers: inline errors tied to their field, and busy buttons.

/** Show `message` under `input` (aria-invalid + aria-describedby), or clear it when empty. */
export function setFieldError(input, errorElement, message) {
  const described = new Set((input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean));
  errorElement.textContent = message || "";
  if (message) {
    input.setAttribute("aria-invalid", "true");
    described.add(errorElement.id);
  } else {
    input.removeAttribute("aria-invalid");
    described.delete(errorElement.id);
  }
  if (described.size) input.setAttribute("aria-describedby", [...described].join(" "));
  else input.removeAttribute("aria-describedby");
}

/** Disable a submit button while working; its labels come from data-label / data-working. */
export function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
  button.textContent = busy ? button.dataset.working : button.dataset.label;
}

/** A whole number within [min, max], or null. */
export function wholeNumber(text, min, max) {
  const value = String(text ?? "").trim();
  if (!/^\d+$/.test(value)) return null;
  const number = Number(value);
  return number >= min && number <= max ? number : null;
}
