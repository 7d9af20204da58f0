// The invite's format, checked in the browser before anything is sent (the daemon checks again).
export const SECRET_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";
export const SECRET_LENGTH = 16;
const TOKEN = /^[A-Z0-9]{12}$/;

/**
 * Read an invite typed, pasted or taken from a link ending in `#TOKEN-secret`.
 * Returns `{ invite }` (normalised) or `{ error }`: "empty", "token" or "secret".
 */
export function parseInvite(text) {
  const raw = String(text ?? "").trim();
  if (!raw) return { error: "empty" };
  const value = raw.split("#").pop().split("/").pop().replace(/\s+/g, "");
  const dash = value.indexOf("-");
  if (dash < 0) return { error: "token" };
  const token = value.slice(0, dash).toUpperCase();
  const secret = value.slice(dash + 1).toLowerCase();
  if (!TOKEN.test(token)) return { error: "token" };
  if (secret.length !== SECRET_LENGTH || [...secret].some((c) => !SECRET_ALPHABET.includes(c))) {
    return { error: "secret" };
  }
  return { invite: `${token}-${secret}` };
}
