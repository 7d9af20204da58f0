// Nearby: ChatOrbit daemons on this network, invitations with no server, and the 6-digit code.
// The invitee's screen shows the code, the inviter types it; both daemons then run the PAKE
// on it. The page goes to /session once the code has proved itself (phase connecting).
import { api, openEvents } from "./api.js";
import { announce } from "./common.js";
import { setBusy, setFieldError } from "./forms.js";
import { t } from "./i18n.js";
import {
  REASONS, Steps, button, clock, errorText, overText, readCode, shortFingerprint, spaced,
} from "./nearby-parts.js";

const $ = (id) => document.getElementById(id);
const STARTED = new Set(["connecting", "ready"]);
const OFF = new Set(["no_interface", "cannot_start", "starting", "stopped", "invisible"]);

export class Nearby {
  /** `ensureTerms()` resolves true once the user agreed to the terms. */
  constructor({ ensureTerms }) {
    this.ensureTerms = ensureTerms;
    this.card = $("nearby");
    this.peers = [];
    this.incoming = new Map();
    this.flow = null; // {side: "outgoing"|"incoming", id, name, fingerprint, started, over}
    this.invite = new Steps($("lan-invite-dialog"), (step) => ({
      setup: $("lan-invite-form").querySelector("input:checked"),
      waiting: $("lan-invite-dialog").querySelector("[data-step=waiting] button"),
      code: $("lan-code-input"),
      over: $("lan-invite-dialog").querySelector("[data-lan-close]"),
    })[step]);
    this.request = new Steps($("lan-request-dialog"), (step) => ({
      ask: $("lan-request-title"),
      code: $("lan-code"),
      over: $("lan-request-dialog").querySelector("[data-lan-close]"),
    })[step]);
    this.verifying = null;
    this.visibility = null;
    this.visibleUntil = null; // Date.now() ms when "for 10 minutes" ends
    this.ticker = null;
    this.wire();
  }

  // -- wiring ----------------------------------------------------------------------------

  wire() {
    for (const choice of document.querySelectorAll("input[name=lan_visibility]")) {
      choice.addEventListener("change", () => {
        if (choice.checked) this.chooseVisibility(choice.value);
      });
    }
    $("lan-invite-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendInvite();
    });
    $("lan-code-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendCode();
    });
    $("lan-code-input").addEventListener("input", () => {
      if ($("lan-code-input").getAttribute("aria-invalid")) this.checkCode();
    });
    for (const cancel of $("lan-invite-dialog").querySelectorAll("[data-lan-cancel]")) {
      cancel.addEventListener("click", () => this.withdraw());
    }
    $("lan-request-accept").addEventListener("click", () => this.accept());
    $("lan-request-decline").addEventListener("click", () => this.decline());
    $("lan-request-stop").addEventListener("click", () => this.stopWaiting());
    $("lan-verify-confirm").addEventListener("click", () => this.confirmVerify());
    for (const close of document.querySelectorAll(".lan-dialog [data-lan-close]")) {
      close.addEventListener("click", () => {
        close.closest("dialog").close();
      });
    }
    // Escape: what the visible button of that step does; nothing while connecting or
    // while the code is shown (cancelling ends the session there: a button does it).
    $("lan-invite-dialog").addEventListener("cancel", (event) => {
      if (["waiting", "code"].includes(this.invite.step)) this.withdraw();
      else if (this.invite.step === "connecting") event.preventDefault();
    });
    $("lan-request-dialog").addEventListener("cancel", (event) => {
      if (["code", "connecting"].includes(this.request.step)) event.preventDefault();
    });
    for (const dialog of [$("lan-invite-dialog"), $("lan-request-dialog")]) {
      dialog.addEventListener("close", () => this.dialogClosed());
    }
  }

  /** Start listening: the card, the requests and the daemon's events. */
  start() {
    openEvents((event) => this.event(event));
  }

  /** A LAN session of ours that has not connected yet (after a reload): show its step.
   * Resolves true if it did. */
  async resume(session) {
    if (!session?.lan || STARTED.has(session.phase)) return false;
    const name = session.lan.name;
    if (session.role === "host") {
      this.flow = { side: "outgoing", id: session.token, name, started: true };
      this.fillInvite(session.lan);
      this.invite.show("connecting");
      return true;
    }
    try {
      const { incoming } = await api("GET", "/api/nearby/requests");
      const mine = incoming.find((r) => r.id === session.token && r.code);
      if (!mine) return false;
      this.flow = { side: "incoming", id: mine.id, name, started: true };
      this.fillRequest(mine);
      this.showCode(mine.code);
      return true;
    } catch {
      return false;
    }
  }

  // -- the daemon's events ---------------------------------------------------------------

  event(event) {
    const flow = this.flow;
    switch (event.type) {
      case "state":
        this.refresh();
        break;
      case "nearby":
        this.peers = event.peers;
        this.renderPeers();
        break;
      case "nearby-visibility":
        this.renderVisibility(event);
        this.refresh();
        break;
      case "lan-request":
        this.incoming.set(event.request.id, event.request);
        this.renderRequests();
        announce(t("home.nearby.requests.item", { name: event.request.name }));
        if (!this.flow && !document.querySelector("dialog[open]")) this.openRequest(event.request);
        break;
      case "lan-impostor":
        announce(t("home.nearby.impostor", { name: event.name }));
        break;
      case "lan-request-withdrawn":
        this.incoming.delete(event.request_id);
        this.renderRequests();
        if (flow?.side === "incoming" && flow.id === event.request_id && !flow.started) {
          this.over(["expired", "gone"].includes(event.reason) ? event.reason : "withdrawn");
        }
        break;
      case "lan-accepted":
        if (event.direction === "outgoing" && flow?.side === "outgoing" && flow.id === event.request_id) {
          this.showCodeEntry();
        } else if (event.direction === "incoming") {
          this.answeredElsewhere(event.request_id);
        }
        break;
      case "lan-declined":
        if (event.direction === "outgoing" && flow?.side === "outgoing" && flow.id === event.request_id) {
          this.over(event.reason);
        } else if (event.direction === "incoming") {
          this.answeredElsewhere(event.request_id);
        }
        break;
      case "session":
        if (flow?.started && !flow.over && event.session.token === flow.id) {
          if (STARTED.has(event.session.phase)) {
            flow.over = true;
            location.assign("/session");
          }
        }
        break;
      case "error":
        if (flow?.started && !flow.over) this.over(event.code);
        break;
      case "session-ended":
        if (flow?.started && !flow.over) this.over(event.reason);
        break;
      default:
    }
  }

  async refresh() {
    try {
      const [nearby, requests] = await Promise.all([
        api("GET", "/api/nearby"),
        api("GET", "/api/nearby/requests"),
      ]);
      this.info = nearby;
      this.peers = nearby.peers;
      this.incoming = new Map(requests.incoming.filter((r) => r.state === "pending").map((r) => [r.id, r]));
      this.card.hidden = nearby.off === "disabled";
      if (nearby.visibility) this.renderVisibility(nearby.visibility);
      this.renderPeers();
      this.renderRequests();
      if (requests.outgoing && !this.flow) this.resumeInvite(requests.outgoing);
    } catch {
      // The events socket reconnects and asks again.
    }
  }

  // -- visibility ------------------------------------------------------------------------

  async chooseVisibility(mode) {
    this.showError(null);
    try {
      this.renderVisibility(await api("POST", "/api/nearby/visibility", { mode }));
    } catch (error) {
      this.showError(error);
      if (this.visibility) this.renderVisibility(this.visibility);
    }
  }

  async forgetNetwork(network) {
    this.showError(null);
    try {
      this.renderVisibility(await api("DELETE", `/api/nearby/visibility/networks/${network.id}`));
    } catch (error) {
      this.showError(error);
    }
  }

  renderVisibility(visibility) {
    this.visibility = visibility;
    for (const choice of document.querySelectorAll("input[name=lan_visibility]")) {
      choice.checked = choice.value === visibility.mode;
      choice.disabled = !visibility.enabled;
    }
    this.visibleUntil = visibility.mode === "timed" && visibility.remaining_seconds
      ? Date.now() + visibility.remaining_seconds * 1000 : null;
    clearInterval(this.ticker);
    this.ticker = this.visibleUntil ? setInterval(() => this.renderTimeLeft(), 1000) : null;
    this.renderTimeLeft();
    const list = $("nearby-networks");
    const items = visibility.networks.map((network) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.className = "mono";
      label.textContent = network.label;
      item.append(label, " ", button(t("home.nearby.visibility.forget"), "button button--sm button--ghost",
        () => this.forgetNetwork(network), t("home.nearby.visibility.forgetLabel", { label: network.label })));
      return item;
    });
    list.replaceChildren(...items);
    list.hidden = items.length === 0;
  }

  renderTimeLeft() {
    const state = $("nearby-visibility-state");
    const mode = this.visibility?.mode;
    if (mode === "timed" && this.visibleUntil) {
      state.textContent = t("home.nearby.visibility.left", { time: clock((this.visibleUntil - Date.now()) / 1000) });
    } else if (mode === "network") {
      state.textContent = t("home.nearby.visibility.always");
    } else {
      state.textContent = t("home.nearby.visibility.hidden");
    }
  }

  // -- the card --------------------------------------------------------------------------

  renderPeers() {
    const status = $("nearby-status");
    if (this.info && !this.info.enabled) {
      status.textContent = t(`home.nearby.off.${OFF.has(this.info.off) ? this.info.off : "stopped"}`);
    } else {
      status.textContent = this.peers.length ? "" : t("home.nearby.empty");
    }
    $("nearby-list").replaceChildren(...this.peers.map((peer) => this.peerItem(peer)));
  }

  peerItem(peer) {
    const item = document.createElement("li");
    item.className = "peer";
    item.dataset.fingerprint = peer.fingerprint;
    if (peer.flagged) item.classList.add("peer--flagged");
    const who = document.createElement("div");
    who.className = "peer__who";
    const name = document.createElement("strong");
    name.className = "peer__name";
    name.textContent = peer.name;
    who.append(name);
    if (peer.verified_before) who.append(" ", this.badge("badge--ok", t("home.nearby.verifiedBefore")));
    if (peer.flagged) who.append(" ", this.badge("badge--warn", t("home.nearby.flagged")));
    const fp = document.createElement("p");
    fp.className = "peer__fp mono small";
    fp.textContent = t("home.nearby.fingerprint", { fp: shortFingerprint(peer.fingerprint) });
    who.append(fp);
    if (peer.flagged && REASONS.has(peer.reason)) {
      const warning = document.createElement("p");
      warning.className = "peer__flag small";
      warning.textContent = t(`home.nearby.reasons.${peer.reason}`);
      who.append(warning);
    }
    const actions = document.createElement("div");
    actions.className = "peer__actions button-row";
    const values = { name: peer.name };
    if (peer.reason !== "key_mismatch") {
      actions.append(button(t("home.nearby.actions.invite"), "button button--sm", () => this.openInvite(peer),
        t("home.nearby.actions.inviteLabel", values)));
      if (peer.verified_before) {
        actions.append(button(t("home.nearby.actions.forget"), "button button--sm button--ghost",
          () => this.forget(peer), t("home.nearby.actions.forgetLabel", values)));
      } else {
        actions.append(button(t("home.nearby.actions.verify"), "button button--sm button--outline",
          () => this.openVerify(peer), t("home.nearby.actions.verifyLabel", values)));
      }
    }
    item.append(who, actions);
    return item;
  }

  badge(kind, text) {
    const badge = document.createElement("span");
    badge.className = `badge ${kind}`;
    badge.textContent = text;
    return badge;
  }

  renderRequests() {
    const list = $("lan-requests");
    const items = [...this.incoming.values()].map((request) => {
      const item = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = t("home.nearby.requests.item", { name: request.name });
      item.append(text, button(t("home.nearby.requests.answer"), "button button--sm", () => this.openRequest(request)));
      return item;
    });
    list.replaceChildren(...items);
    list.hidden = items.length === 0;
  }

  showError(error) {
    $("nearby-error").textContent = error ? errorText(error) : "";
  }

  // -- inviting --------------------------------------------------------------------------

  fillInvite(peer) {
    $("lan-invite-title").textContent = t("home.nearby.invite.title", { name: peer.name });
    $("lan-invite-fp").textContent = t("home.nearby.fingerprint", { fp: shortFingerprint(peer.fingerprint) });
    const flag = $("lan-invite-flag");
    flag.hidden = !(peer.flagged && REASONS.has(peer.reason));
    flag.textContent = flag.hidden ? "" : t(`home.nearby.reasons.${peer.reason}`);
  }

  async openInvite(peer) {
    if (this.flow) return;
    this.showError(null);
    if (!(await this.ensureTerms())) return;
    this.flow = { side: "outgoing", id: null, name: peer.name, fingerprint: peer.fingerprint };
    this.fillInvite(peer);
    $("lan-invite-error").textContent = "";
    this.invite.show("setup");
  }

  /** Our invite still open (after a reload): waiting for them, or for the code. */
  resumeInvite(outgoing) {
    this.flow = { side: "outgoing", id: outgoing.id, name: outgoing.name, fingerprint: outgoing.fingerprint };
    this.fillInvite(outgoing);
    if (outgoing.state === "accepted") {
      this.showCodeEntry();
    } else {
      $("lan-waiting-text").textContent = t("home.nearby.invite.waiting", { name: outgoing.name });
      this.invite.show("waiting");
    }
  }

  async sendInvite() {
    const flow = this.flow;
    const send = $("lan-invite-send");
    setBusy(send, true);
    $("lan-invite-error").textContent = "";
    try {
      const ttl = Number($("lan-invite-form").elements.lan_ttl.value);
      const { request_id: id } = await api("POST", "/api/nearby/invite", { fingerprint: flow.fingerprint, ttl_minutes: ttl });
      flow.id = id;
      $("lan-waiting-text").textContent = t("home.nearby.invite.waiting", { name: flow.name });
      this.invite.show("waiting");
      announce($("lan-waiting-text").textContent);
    } catch (error) {
      $("lan-invite-error").textContent = errorText(error);
    } finally {
      setBusy(send, false);
    }
  }

  showCodeEntry() {
    const name = this.flow.name;
    $("lan-code-intro").textContent = t("home.nearby.code.intro", { name });
    $("lan-code-label").textContent = t("home.nearby.code.label", { name });
    $("lan-code-input").value = "";
    setFieldError($("lan-code-input"), $("lan-code-error"), "");
    $("lan-code-failed").textContent = "";
    this.invite.show("code");
    announce($("lan-code-intro").textContent);
  }

  checkCode() {
    const code = readCode($("lan-code-input").value);
    setFieldError($("lan-code-input"), $("lan-code-error"), code ? "" : t("home.nearby.code.error"));
    return code;
  }

  async sendCode() {
    const code = this.checkCode();
    if (!code) {
      $("lan-code-input").focus();
      return;
    }
    const flow = this.flow;
    const submit = $("lan-code-submit");
    setBusy(submit, true);
    try {
      flow.started = true;
      await api("POST", "/api/nearby/code", { request_id: flow.id, code });
      if (!flow.over) this.invite.show("connecting");
    } catch (error) {
      flow.started = false;
      if (error.code === "invalid_code") setFieldError($("lan-code-input"), $("lan-code-error"), t("home.nearby.code.error"));
      else this.over(error.code, errorText(error));
    } finally {
      setBusy(submit, false);
    }
  }

  async withdraw() {
    const flow = this.flow;
    if (flow?.side !== "outgoing") return;
    flow.over = true;
    this.invite.close();
    if (flow.id) await api("DELETE", `/api/nearby/invite/${encodeURIComponent(flow.id)}`).catch(() => {});
  }

  // -- being invited -----------------------------------------------------------------------

  fillRequest(request) {
    const values = { name: request.name };
    $("lan-request-title").textContent = t("home.nearby.request.title", values);
    $("lan-request-text").textContent = t("home.nearby.request.text", values);
    $("lan-request-fp").textContent = t("home.nearby.fingerprint", { fp: shortFingerprint(request.fingerprint) });
    $("lan-request-verified").hidden = !request.verified_before;
    const flag = $("lan-request-flag");
    flag.hidden = !(request.flagged && REASONS.has(request.reason));
    flag.textContent = flag.hidden ? "" : t(`home.nearby.reasons.${request.reason}`);
    $("lan-request-terms").textContent = t("home.nearby.request.terms", {
      ttl: request.ttl_minutes, length: request.max_message_length,
    });
    $("lan-tell-text").textContent = t("home.nearby.request.tell", values);
    $("lan-request-error").textContent = "";
  }

  openRequest(request) {
    if (this.flow) return;
    this.flow = { side: "incoming", id: request.id, name: request.name };
    this.fillRequest(request);
    this.request.show("ask");
  }

  async accept() {
    const flow = this.flow;
    if (!(await this.ensureTerms())) return;
    const accept = $("lan-request-accept");
    setBusy(accept, true);
    try {
      flow.started = true;
      const { code } = await api("POST", `/api/nearby/requests/${encodeURIComponent(flow.id)}/accept`);
      this.incoming.delete(flow.id);
      this.renderRequests();
      if (!flow.over) this.showCode(code);
    } catch (error) {
      flow.started = false;
      $("lan-request-error").textContent = errorText(error);
    } finally {
      setBusy(accept, false);
    }
  }

  showCode(code) {
    $("lan-code").textContent = spaced(code);
    this.request.show("code");
    announce(`${$("lan-tell-text").textContent} ${code.split("").join(" ")}`);
  }

  async decline() {
    const flow = this.flow;
    flow.over = true;
    this.request.close();
    this.incoming.delete(flow.id);
    this.renderRequests();
    await api("POST", `/api/nearby/requests/${encodeURIComponent(flow.id)}/decline`).catch(() => {});
  }

  async stopWaiting() {
    this.flow.over = true;
    this.request.close();
    await api("POST", "/api/session/end", {}).catch(() => {});
  }

  answeredElsewhere(id) {
    this.incoming.delete(id);
    this.renderRequests();
    const flow = this.flow;
    if (flow?.side === "incoming" && flow.id === id && !flow.started) {
      flow.over = true;
      this.request.close();
    }
  }

  // -- endings -----------------------------------------------------------------------------

  over(reason, text) {
    const flow = this.flow;
    if (!flow) return;
    flow.over = true;
    const message = text || overText(reason, flow.name);
    const [steps, element] = flow.side === "outgoing"
      ? [this.invite, $("lan-invite-over")]
      : [this.request, $("lan-request-over")];
    element.textContent = message;
    steps.show("over");
    announce(message);
  }

  dialogClosed() {
    // The dialog is closed: its flow is over (requests still open stay in the card).
    if (!$("lan-invite-dialog").open && !$("lan-request-dialog").open) {
      this.flow = null;
      this.invite.step = null;
      this.request.step = null;
    }
  }

  // -- verifying a fingerprint ----------------------------------------------------------------

  openVerify(peer) {
    this.verifying = { peer, replace: false };
    const values = { name: peer.name };
    $("lan-verify-title").textContent = t("home.nearby.verify.title", values);
    $("lan-verify-text").textContent = t("home.nearby.verify.text", values);
    $("lan-verify-fp").textContent = shortFingerprint(peer.fingerprint);
    $("lan-verify-error").textContent = "";
    const confirm = $("lan-verify-confirm");
    confirm.dataset.label = t("home.nearby.verify.confirm");
    confirm.textContent = confirm.dataset.label;
    $("lan-verify-dialog").showModal();
  }

  async confirmVerify() {
    const { peer, replace } = this.verifying;
    const confirm = $("lan-verify-confirm");
    setBusy(confirm, true);
    try {
      const body = await api("POST", "/api/nearby/verify", { fingerprint: peer.fingerprint, replace });
      this.peers = body.peers;
      this.renderPeers();
      $("lan-verify-dialog").close();
      announce(t("home.nearby.verifiedBefore"));
    } catch (error) {
      if (error.code === "name_verified_with_other_key") {
        this.verifying.replace = true;
        $("lan-verify-error").textContent = t("home.nearby.verify.otherKey", { name: peer.name });
        confirm.dataset.label = t("home.nearby.verify.replace");
      } else {
        $("lan-verify-error").textContent = errorText(error);
      }
    } finally {
      setBusy(confirm, false);
    }
  }

  async forget(peer) {
    this.showError(null);
    try {
      await api("DELETE", `/api/nearby/verify/${encodeURIComponent(peer.name)}`);
    } catch (error) {
      this.showError(error);
    }
  }
}
