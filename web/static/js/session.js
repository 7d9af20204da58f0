// The session page: status, invite, security check, chat, calls, end and report.
// Everything comes from the daemon's events socket; the first frame is the full state.
import { api, openEvents } from "./lib/api.js";
import { CallPanel } from "./lib/call.js";
import { announce } from "./lib/common.js";
import { Composer } from "./lib/composer.js";
import { Countdown, formatDuration } from "./lib/countdown.js";
import { ask, wireDialog } from "./lib/dialogs.js";
import { FilesPanel } from "./lib/files.js";
import { setupHideAddress } from "./lib/hide-address.js";
import { t } from "./lib/i18n.js";
import { InvitePanel } from "./lib/invite-panel.js";
import { MessageList } from "./lib/messages.js";
import { setupNotifications } from "./lib/notify.js";
import { setupReport } from "./lib/report.js";

const $ = (id) => document.getElementById(id);
const VIEWS = { loading: $("loading"), session: $("session-view"), ended: $("ended-view"), none: $("no-session-view") };
const PHASES = new Set(["waiting-for-peer", "exchanging-keys", "connecting", "ready", "reconnecting", "peer-lost", "failed", "ended"]);
const END_REASONS = new Set([
  "manually_ended", "timer_expired", "token_expired", "invite_mismatch", "fingerprint_mismatch",
  "connect_timeout", "protocol_error", "peer_aborted", "version_mismatch", "relay_unavailable",
  "relay_aborted",
]);
const ERRORS = new Set([
  "invite_mismatch", "fingerprint_mismatch", "connect_timeout", "protocol_error", "bad_peer_frame",
  "version_mismatch", "relay_unavailable", "relay_aborted",
]);
const PATHS = new Set(["lan-direct", "internet-direct", "relayed", "loopback"]);
const CHAT_ERRORS = new Set([
  "message_too_long", "empty_message", "not_connected", "session_ended", "no_session",
  "message_not_found", "not_your_message",
]);
const ANNOUNCE_AT = [60, 30, 10];

let view = "loading";
let session = null;
let sawRunning = false; // this page saw the session before it ended
let endedByMe = false;
let reloadingForLanguage = false;

const invitePanel = new InvitePanel($("invite-panel"));
const endDialog = wireDialog($("end-dialog"));
const deleteDialog = wireDialog($("delete-dialog"));
const notifications = setupNotifications($("notify-toggle"), $("notify-hint"));
const messages = new MessageList({
  list: $("messages"),
  empty: $("chat-empty"),
  template: $("message-template"),
  onDelete: deleteMessage,
});
const composer = new Composer($("composer"), sendMessage);
const countdown = new Countdown(showTimeLeft);
const call = new CallPanel($("call-panel"));
const files = new FilesPanel($("files-panel"), {
  onOffer: () => notifications.notify(t("session.notify.fileBody")),
});
setupReport($("report-dialog"), document.querySelectorAll("[data-open-report]"));
setupHideAddress($("hide-address"), $("hide-address-status"));

function show(name) {
  view = name;
  for (const [key, element] of Object.entries(VIEWS)) element.hidden = key !== name;
}

function chatError(error) {
  if (!CHAT_ERRORS.has(error.code)) return error.message;
  return t(`session.chat.errors.${error.code}`, { limit: session?.max_message_length ?? "" });
}

// -- the session's state -------------------------------------------------------------

function applySession(next) {
  if (!next) {
    if (view !== "ended") show("none");
    return;
  }
  const previous = session?.token === next.token ? session : null;
  if (session && !previous) {
    // Another session started (in another tab): start afresh.
    endedByMe = false;
    sawRunning = false;
    $("session-error").textContent = "";
    messages.clear();
    files.clear();
  }
  session = next;
  if (next.phase === "ended") {
    showEnded(next.ended?.reason);
    return;
  }
  sawRunning = true;
  show("session");
  $("role").textContent = t(`session.role.${next.role}`);
  const phase = PHASES.has(next.phase) ? next.phase : "connecting";
  const attempt = phase === "reconnecting" && next.attempt > 0 ? next.attempt : null;
  $("phase").textContent = attempt
    ? t("session.phase.reconnectingAttempt", { n: attempt })
    : t(`session.phase.${phase}`);
  $("phase-dot").dataset.phase = phase;
  if (previous && previous.phase !== next.phase) announce(t(`session.phase.${phase}`));

  if (typeof next.remaining_seconds === "number") {
    countdown.sync(next.remaining_seconds);
  } else {
    countdown.stop();
    $("countdown").textContent = t("session.status.notStarted");
    $("countdown").classList.add("is-pending");
  }
  renderParticipants(next);
  // How the connection runs (chat and calls alike), from the daemon's selected ICE pair.
  $("path").textContent = t(`session.path.${PATHS.has(next.path) ? next.path : "none"}`);
  $("path").dataset.path = next.path || "";

  const lan = next.lan || null;  // a LAN session: no server, no invite, nothing to report to
  $("lan-note").hidden = !lan;
  $("lan-note").textContent = lan ? t("session.lan.note", { name: lan.name }) : "";
  for (const button of document.querySelectorAll("[data-open-report]")) button.hidden = Boolean(lan);

  const waiting = phase === "waiting-for-peer";
  if (next.role === "host" && waiting && !lan) invitePanel.show();
  else invitePanel.hide();
  $("securing-panel").hidden = !(["exchanging-keys", "connecting"].includes(phase) || (waiting && next.role === "guest"));
  $("sas-panel").hidden = !next.sas;
  $("sas").textContent = next.sas || "";
  // While reconnecting, messages are queued and shown as sending (when both daemons resume).
  const queues = phase === "reconnecting" && Boolean(next.protocol?.features?.includes("resume"));
  composer.setReady(phase === "ready" || queues, next.max_message_length);
  // Calls only when both daemons announced them (an older or a trimmed peer may not).
  call.setAvailable(phase === "ready" && Boolean(next.protocol?.features?.includes("calls")));
  if ("call" in next) call.event(next.call);
  // Files only when both daemons announced them; the panel says so otherwise.
  files.setAvailable(phase, Boolean(next.protocol?.features?.includes("files")));
  if (next.files) files.sync(next.files);
  for (const message of next.messages || []) messages.upsert(message);
}

function renderParticipants(current) {
  const items = ["host", "guest"].map((seat) => {
    const person = current.participants?.[seat];
    let state = "waiting";
    if (person) {
      if (current.phase === "ready") state = "connected";
      else if (["peer-lost", "reconnecting"].includes(current.phase) && seat !== current.role) state = "away";
      else state = person.connected ? "connected" : "joined";
    }
    const item = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.dataset.state = state;
    dot.setAttribute("aria-hidden", "true");
    const name = document.createElement("strong");
    name.textContent = t(`session.participants.${seat}`);
    const you = seat === current.role ? ` ${t("session.participants.you")}` : "";
    item.append(dot, name, `${you} · ${t(`session.participants.${state}`)}`);
    return item;
  });
  $("participants").replaceChildren(...items);
}

function showTimeLeft(left, previous) {
  const element = $("countdown");
  element.classList.remove("is-pending");
  element.textContent = formatDuration(left);
  element.classList.toggle("is-urgent", left <= 60);
  if (previous === null) return;
  for (const mark of ANNOUNCE_AT) {
    if (previous > mark && left <= mark) {
      announce(mark === 60 ? t("session.countdown.oneMinute") : t("session.countdown.seconds", { n: mark }));
    }
  }
}

function showEnded(reason) {
  if (view === "ended") return;
  let key = END_REASONS.has(reason) ? reason : "unknown";
  if (reason === "manually_ended") key = endedByMe ? "by_me" : sawRunning ? "by_peer" : "manually_ended";
  countdown.stop();
  invitePanel.hide();
  messages.clear();
  composer.setReady(false);
  call.sessionEnded();
  $("ended-files").hidden = !files.sessionEnded();
  for (const dialog of [endDialog, deleteDialog]) if (dialog.open) dialog.close("");
  $("ended-reason").textContent = t(`session.ended.reasons.${key}`);
  // A handshake failure is an error too, also for a page that opened after its event.
  if (ERRORS.has(reason) && !$("session-error").textContent) {
    showError(reason, "", { peer_version: session?.protocol?.peer_version, local_version: session?.protocol?.version });
  }
  show("ended");
  $("ended-title").focus();
  announce(`${t("session.ended.title")}. ${t(`session.ended.reasons.${key}`)}`);
}

function showError(code, message, versions) {
  let text = ERRORS.has(code) ? t(`session.errors.${code}`) : message || t("session.errors.unknown");
  if (code === "version_mismatch") text = versionMismatch(versions) || message || text;
  $("session-error").textContent = text;
}

// Which protocol versions the two daemons run, and who should update (the higher major wins).
function versionMismatch(versions) {
  const peer = versions?.peer_version;
  const local = versions?.local_version;
  if (!peer || !local) return "";
  const advice = parseInt(peer, 10) > parseInt(local, 10)
    ? t("session.errors.versionAdvice.updateHere")
    : t("session.errors.versionAdvice.updateThere");
  return `${t("session.errors.version_mismatch", { peer, local })} ${advice}`;
}

// -- the user's actions --------------------------------------------------------------

async function sendMessage(text) {
  try {
    const { message } = await api("POST", "/api/messages", { text });
    messages.upsert(message);
  } catch (error) {
    throw new Error(chatError(error));
  }
}

async function deleteMessage(id) {
  if ((await ask(deleteDialog)) !== "confirm") return;
  try {
    await api("DELETE", `/api/messages/${encodeURIComponent(id)}`);
    messages.markDeleted(id);
  } catch (error) {
    $("composer-error").textContent = chatError(error);
  }
  if (!$("composer-input").disabled) $("composer-input").focus();
}

$("end-button").addEventListener("click", async () => {
  if ((await ask(endDialog)) !== "confirm") return;
  const button = $("end-button");
  endedByMe = true;
  button.disabled = true;
  button.textContent = t("session.end.working");
  try {
    const { session: ended } = await api("POST", "/api/session/end", {});
    applySession(ended);
  } catch (error) {
    if (error.code !== "session_ended") {
      endedByMe = false;
      $("session-error").textContent = error.message;
    }
  } finally {
    button.disabled = false;
    button.textContent = t("session.end.button");
  }
});

// Leaving while the session runs asks first (the language switcher reloads on purpose).
$("language")?.addEventListener("change", () => {
  reloadingForLanguage = true;
  setTimeout(() => { reloadingForLanguage = false; }, 5000);
});
window.addEventListener("beforeunload", (event) => {
  if (view === "session" && !reloadingForLanguage) {
    event.preventDefault();
    event.returnValue = t("session.leavePrompt");
  }
});

// -- events ------------------------------------------------------------------------------

function onEvent(event) {
  switch (event.type) {
    case "state":
      applySession(event.state.session);
      break;
    case "session":
      applySession(event.session);
      break;
    case "message":
      if (messages.upsert(event.message) && event.message.author === "peer") {
        announce(t("session.chat.newFromPeer", { text: event.message.text.slice(0, 200) }));
        notifications.notify();
      }
      break;
    case "message-status":
      messages.setStatus(event.message_id, event.status, event.code);
      break;
    case "message-deleted":
      messages.markDeleted(event.message_id);
      break;
    case "error":
      showError(event.code, event.message, event);
      break;
    case "session-ended":
      showEnded(event.reason);
      break;
    case "call":
      call.event(event.call);
      break;
    case "file":
      files.event(event.file);
      break;
    case "call-ended":
      call.ended(event.reason);
      break;
    case "call-peer-muted":
      call.peerMuted(event.kind, event.muted);
      break;
    default:
      break;
  }
}

openEvents(onEvent, (status) => {
  $("reconnecting").hidden = status === "open";
});
