// Copy the text of a read-only field: the Clipboard API, else select it for Ctrl+C.

/** Resolves to "copied", or "manual" when the text was only selected. */
export async function copyField(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return "copied";
  } catch {
    input.focus();
    input.select();
    return "manual";
  }
}
