// Modal dialogs on <dialog>: showModal traps focus, Escape cancels.
// Buttons with data-value close the dialog with that value.

export function wireDialog(dialog) {
  for (const button of dialog.querySelectorAll("button[data-value]")) {
    button.addEventListener("click", () => dialog.close(button.dataset.value));
  }
  return dialog;
}

/** Open `dialog` modally; resolves with the value it was closed with ("" for Escape). */
export function ask(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}
