// The call panel. The daemon owns the call (docs/ui-api.md): the page follows its events and,
// while the call is connecting or active, links camera and microphone to it (media-link.js,
// loaded on the first call: a session without calls never fetches it).
import { api } from "./api.js";
import { announce } from "./common.js";
import { t } from "./i18n.js";

const media = () => import("./media-link.js");

const OFF = { audio: false, video: false };
const IDLE = { state: "idle", call_id: null, muted: OFF, peer_muted: OFF, path: null, encrypted: true };
const STATES = ["idle", "outgoing", "incoming", "connecting", "active"];
const PATHS = ["lan-direct", "internet-direct", "relayed", "loopback"];
const ENDED = ["hung_up", "peer_hung_up", "declined", "peer_declined", "peer_cancelled", "busy", "no_answer",
  "media_failed", "session_ended"];
// The daemon's refusals -> session.call.errors.*
const REFUSED = { not_connected: "not_connected", busy: "call_in_progress", call_in_progress: "call_in_progress",
  no_call: "no_call", no_incoming_call: "no_call" };
const inCall = (state) => state === "connecting" || state === "active";

export class CallPanel {
  constructor(panel) {
    this.panel = panel;
    this.el = {};
    for (const node of panel.querySelectorAll("[id^=call-]")) this.el[node.id.slice(5)] = node;
    this.call = IDLE;
    this.available = false;
    this.busy = false; // a request is on its way
    this.stream = this.pending = this.link = null; // camera and microphone, getUserMedia, media link
    this.mine = null; // "hangup" or "decline": this page ended the call
    this.last = "idle"; // the state before idle (a hang-up while ringing is a missed call)
    this.generation = 0; // bumped at teardown: late media is dropped
    this.seen = 0; // <call>s from the events socket
    // Busy buttons stay focusable (aria-disabled): a disabled one would drop the keyboard focus.
    const on = (id, action) => this.el[id].addEventListener("click", () => this.busy || action());
    // Call while their call rings here: the daemon answers it.
    on("start", () => this.act(true, async () => (await this.ensureStream()) && this.post("/api/call")));
    on("accept", () => this.act(true, async () => (await this.ensureStream()) && this.post("/api/call/accept")));
    on("decline", () => this.request("decline"));
    on("cancel", () => this.request("hangup"));
    on("hangup", () => this.request("hangup"));
    on("mic", () => this.mute("audio"));
    on("camera", () => this.mute("video"));
    this.render();
  }

  setAvailable(available) {
    this.available = available;
    this.render();
  }

  /** A <call> from the events socket (a `call` event or the session's snapshot). */
  event(call) {
    this.seen += 1;
    this.update(call);
  }

  update(next, tell = true) {
    const call = STATES.includes(next?.state) ? next : IDLE;
    const from = this.call.state;
    const to = call.state;
    this.call = call;
    if (to !== "idle") this.last = to;
    if (this.link && !(inCall(to) && this.link.callId === call.call_id)) this.closeLink(tell);
    if (to === "idle" && from !== "idle") this.teardown(tell);
    if (inCall(to) && !this.link) this.openLink(call.call_id);
    this.applyMute();
    this.render();
    if (to === from) return;
    if (to !== "idle") this.el.ended.hidden = true;
    if (to === "incoming") {
      announce(t("session.call.incoming.title"));
      // Not while typing: a keystroke must not answer the call.
      if (!document.activeElement?.matches("input, textarea, select")) this.el.accept.focus();
    } else if (to !== "idle") {
      announce(t(`session.call.status.${to}`));
    }
  }

  ended(reason) {
    let key = ENDED.includes(reason) ? reason : "unknown";
    if (key === "hung_up" && this.mine !== "hangup") key = this.last === "incoming" ? "peer_cancelled" : "peer_hung_up";
    if (key === "declined" && this.mine !== "decline") key = "peer_declined";
    this.mine = null;
    this.el.ended.textContent = t(`session.call.ended.${key}`);
    this.el.ended.hidden = false;
    announce(this.el.ended.textContent);
    this.update(IDLE, reason !== "session_ended");
  }

  peerMuted(kind, muted) {
    if (!(kind in OFF) || !inCall(this.call.state)) return;
    this.call = { ...this.call, peer_muted: { ...this.call.peer_muted, [kind]: muted } };
    this.render();
    announce(t(`session.call.peer.${kind === "audio" ? "mic" : "camera"}${muted ? "Off" : "On"}`));
  }

  /** The session is over: stop the camera; nobody is left to tell. */
  sessionEnded() {
    this.call = IDLE;
    this.available = false;
    this.teardown(false);
    this.render();
  }

  request(action) {
    this.mine = action;
    return this.act(false, () => this.post(`/api/call/${action}`));
  }

  mute(kind) {
    const muted = !this.call.muted[kind];
    this.setTrack(kind, !muted); // at once: the preview and the camera light stay honest
    return this.act(true, async () => {
      const { call } = await api("POST", "/api/call/mute", { kind, muted });
      // Only this page changes `muted`: the answer is right even when events overtook it.
      if (call.call_id === this.call.call_id) this.update({ ...this.call, muted: call.muted });
    });
  }

  async act(fresh, work) {
    if (fresh) this.el.error.textContent = "";
    this.busy = true;
    this.render();
    try {
      await work();
    } catch (error) {
      const key = REFUSED[error.code];
      if (key === "no_call") this.update(IDLE);
      else this.el.error.textContent = key ? t(`session.call.errors.${key}`) : error.message;
    } finally {
      this.busy = false;
      if (this.call.state === "idle") this.stopStream();
      this.applyMute();
      this.render();
    }
  }

  // The answer is the <call> right after the action, unless events overtook it (they are newer).
  async post(path, body = {}) {
    const seen = this.seen;
    const { call } = await api("POST", path, body);
    if (seen === this.seen) this.update(call);
  }

  // Camera and microphone, once per call; false (with the reason shown) if refused.
  async ensureStream() {
    if (this.stream) return true;
    const generation = this.generation;
    const { getLocalMedia, mediaError } = await media();
    let stream;
    try {
      stream = await (this.pending ??= getLocalMedia());
    } catch (error) {
      this.el.error.textContent = t(`session.call.errors.${mediaError(error)}`);
      return false;
    } finally {
      this.pending = null;
    }
    if (generation !== this.generation) {
      for (const track of stream.getTracks()) track.stop();
      return false;
    }
    if (this.stream !== stream) {
      this.stopStream();
      this.stream = this.el.local.srcObject = stream;
    }
    this.applyMute();
    this.render();
    return true;
  }

  async openLink(callId) {
    // A stand-in until the module is here, so that update() sees this call's link at once.
    let link = (this.link = { callId, close() { this.closed = true; } });
    try {
      const [{ MediaLink }, ok] = await Promise.all([media(), this.ensureStream()]);
      if (link.closed) return;
      if (!ok) return this.request("hangup");
      const real = (link = this.link = new MediaLink(callId, () => this.linkFailed(real)));
      const opened = real.open(this.stream); // adds the remote tracks at once
      this.el.remote.srcObject = real.remote;
      this.el.remote.play().catch(() => {});
      await opened;
    } catch (error) {
      console.warn("media link:", error);
      this.linkFailed(link);
    }
  }

  linkFailed(link) {
    if (link !== this.link || link.closed) return;
    this.request("hangup");
    this.el.error.textContent = t("session.call.errors.media");
  }

  closeLink(tell) {
    this.link?.close(tell);
    this.link = this.el.remote.srcObject = null;
  }

  stopStream() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = this.el.local.srcObject = null;
  }

  teardown(tell) {
    this.generation += 1;
    this.closeLink(tell);
    this.stopStream();
  }

  setTrack(kind, enabled) {
    for (const track of this.stream?.getTracks() ?? []) if (track.kind === kind) track.enabled = enabled;
  }

  applyMute() {
    for (const kind in OFF) this.setTrack(kind, !this.call.muted[kind]);
  }

  render() {
    const { el, call } = this;
    const { state, muted, peer_muted: peer } = call;
    const live = inCall(state);
    const focused = this.panel.contains(document.activeElement) ? document.activeElement : null;
    const show = (id, visible) => { el[id].hidden = !visible; };
    this.panel.hidden = !this.available && state === "idle";
    this.panel.dataset.state = state;
    this.panel.dataset.callId = call.call_id ?? "";
    el.status.textContent = state === "idle" ? "" : t(`session.call.status.${state}`);
    show("intro", state === "idle");
    show("incoming", state === "incoming");
    show("stage", live || (state === "outgoing" && this.stream));
    const note = { outgoing: "waiting", connecting: "connecting" }[state] ?? (peer.video ? "peerCameraOff" : "");
    el.note.textContent = note && t(`session.call.video.${note}`);
    show("note", note);
    show("peer-mic", live && peer.audio);
    show("local-off", muted.video || !this.stream?.getVideoTracks().length);
    const path = live && PATHS.includes(call.path) && call.path;
    show("path", path);
    if (path) el.via.textContent = t("session.call.path.label", { path: t(`session.path.${path}`) });
    show("e2e", call.encrypted);
    show("start", state === "idle");
    el.start.disabled = !this.available;
    show("cancel", state === "outgoing");
    for (const id of ["mic", "camera", "hangup"]) show(id, live);
    for (const id of ["start", "accept", "decline", "cancel", "hangup"]) el[id].ariaDisabled = String(this.busy);
    el.mic.textContent = t(muted.audio ? "session.call.mic.unmute" : "session.call.mic.mute");
    el.camera.textContent = t(muted.video ? "session.call.camera.on" : "session.call.camera.off");
    // A keyboard user whose button went away lands on the one that replaced it.
    if (focused?.closest("[hidden]")) {
      ["accept", "hangup", "cancel", "start"].map((id) => el[id]).find((b) => !b.closest("[hidden]"))?.focus();
    }
  }
}
