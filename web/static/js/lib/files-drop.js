// Where files to send come from: the button (a file picker), a drop anywhere on the page,
// or a paste (a copied file or a screenshot). Every way ends in `onFiles(File[])`.

/** A drag that carries files (not text or a link dragged within the page). */
function carriesFiles(event) {
  return Array.from(event.dataTransfer?.types || []).includes("Files");
}

/**
 * Wire the inputs. `active()` says whether the session page is showing (drops elsewhere,
 * such as on the ended screen, are only kept from opening the file in the tab).
 */
export function setupFileInputs({ button, input, zone, onFiles, active }) {
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const files = Array.from(input.files || []);
    input.value = ""; // choosing the same file again fires change again
    if (files.length) onFiles(files);
  });

  // dragenter/dragleave fire for every child crossed: count them to know when the drag leaves.
  let depth = 0;
  const hide = () => {
    depth = 0;
    zone.hidden = true;
  };
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth += 1;
    if (active()) zone.hidden = false;
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault(); // without this the browser would open the file in place of the session
    event.dataTransfer.dropEffect = active() ? "copy" : "none";
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.hidden = true;
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event) && !event.dataTransfer?.files?.length) return;
    event.preventDefault();
    hide();
    const files = Array.from(event.dataTransfer.files || []);
    if (files.length && active()) onFiles(files);
  });
  window.addEventListener("blur", hide);

  document.addEventListener("paste", (event) => {
    const files = Array.from(event.clipboardData?.files || []);
    if (!files.length || !active()) return;
    // Rich text (from a word processor, a spreadsheet) often comes with a picture of itself:
    // pasted into a text field, the text is what was meant.
    const typing = event.target instanceof Element && event.target.closest("textarea, input");
    if (typing && event.clipboardData.getData("text/plain")) return;
    event.preventDefault(); // a pasted file is sent, not its name typed into the message box
    onFiles(files);
  });
}
