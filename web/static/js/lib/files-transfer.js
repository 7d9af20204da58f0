// Moving a file's bytes between this page and its daemon (docs/ui-api.md, "Files").
// Sending: the File is sliced and PUT one slice after another; each answer comes once the
// daemon has room for the next (that is the flow control), so the page never reads ahead.
// Receiving: the daemon streams the file as it arrives; the browser saves it.
import { ApiError } from "./api.js";
import { t } from "./i18n.js";

export const SLICE = 1024 * 1024; // the daemon takes at most 1 MiB per PUT
export const PREVIEW_MAX = 32 * 1024 * 1024;
const PREVIEW_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const RETRIES = 5; // a dropped PUT (the daemon restarting its socket) is sent again this often

/** A picture small enough to hold in the page for a preview. */
export function isPicture(file) {
  return PREVIEW_TYPES.has(file.type) && file.size <= PREVIEW_MAX;
}

async function body(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function apiError(response, data) {
  return new ApiError(response.status, data?.error || "error", data?.reason || t("common.errors.generic"), data || {});
}

const wait = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * PUT `blob` to the daemon from `offset` on, one slice at a time. Resolves when the daemon
 * has every byte or says the file no longer takes any (declined, cancelled, failed: its
 * state event says why); rejects with an ApiError for anything else. `stopped()` is asked
 * before each slice (the page drops a file whose transfer ended).
 */
export async function upload(id, blob, offset, stopped = () => false) {
  const path = `/api/files/${encodeURIComponent(id)}/data`;
  let failures = 0;
  while (offset < blob.size && !stopped()) {
    const end = Math.min(offset + SLICE, blob.size);
    let response;
    try {
      response = await fetch(`${path}?offset=${offset}`, {
        method: "PUT",
        headers: { "Content-Type": "application/octet-stream" },
        body: blob.slice(offset, end),
        credentials: "same-origin",
      });
    } catch (error) {
      if (error?.name === "NotReadableError" || error?.name === "NotFoundError") {
        throw new ApiError(0, "read_failed", "");
      }
      failures += 1;
      if (failures > RETRIES) throw new ApiError(0, "network", t("common.errors.network"));
      await wait(500 * failures);
      continue; // the same slice again; a wrong_offset answer puts us right
    }
    failures = 0;
    const data = await body(response);
    if (response.ok && Number.isInteger(data?.next_offset)) {
      offset = data.next_offset;
    } else if (response.status === 409 && data?.error === "wrong_offset" && Number.isInteger(data.next_offset)) {
      offset = data.next_offset;
    } else if (response.status === 409 && data?.error === "file_not_sending") {
      return;
    } else {
      throw apiError(response, data);
    }
  }
}

/** Save an accepted incoming file: the browser streams it from the daemon to its downloads. */
export function download(file) {
  save(`/api/files/${encodeURIComponent(file.id)}/data`, file.name);
}

/** Fetch a picture into memory (for its preview); resolves to a Blob once it is whole and checked. */
export async function fetchPicture(file) {
  let response;
  try {
    response = await fetch(`/api/files/${encodeURIComponent(file.id)}/data`, { credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", t("common.errors.network"));
  }
  if (!response.ok) throw apiError(response, await body(response));
  try {
    const blob = await response.blob();
    return new Blob([blob], { type: file.type });
  } catch {
    // The daemon cut the stream (a checksum mismatch, a cancel): the file's event says why.
    throw new ApiError(0, "incomplete", "");
  }
}

/** Hand `href` (the daemon's stream or a Blob's URL) to the browser's downloads as `name`. */
export function save(href, name) {
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
}
