// The daemon's local API (docs/ui-api.md). Same origin: the browser sends Origin and the cookie.
import { t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, code, reason, details = {}) {
    super(reason);
    this.status = status;
    this.code = code;
    this.details = details; // the rest of the error body (such as a file's `limit`)
  }
}

/** Call the API; resolves to the JSON body, rejects with an ApiError carrying the daemon's reason. */
export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "network", t("common.errors.network"));
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.error || "error", data?.reason || t("common.errors.generic"), data || {});
  }
  return data;
}

/** The events socket, reconnecting with backoff; `onEvent` gets every JSON event. */
export function openEvents(onEvent, onStatus = () => {}) {
  let delay = 500;
  let socket;
  let stopped = false;
  const connect = () => {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/events`);
    socket.addEventListener("open", () => {
      delay = 500;
      onStatus("open");
    });
    socket.addEventListener("message", (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        console.error(error);
      }
    });
    socket.addEventListener("close", () => {
      onStatus("closed");
      if (!stopped) {
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      }
    });
  };
  connect();
  return { close: () => { stopped = true; socket?.close(); } };
}
