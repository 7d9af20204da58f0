// The landing page: request a token, join with an invite, or invite someone nearby
// (terms consent first).
import { api } from "./lib/api.js";
import "./lib/common.js";
import { setBusy, setFieldError, wholeNumber } from "./lib/forms.js";
import { t } from "./lib/i18n.js";
import { setupHideAddress } from "./lib/hide-address.js";
import { parseInvite } from "./lib/invite.js";
import { Nearby } from "./lib/nearby.js";
import { Terms } from "./lib/terms.js";

const $ = (id) => document.getElementById(id);
const KNOWN_ERRORS = new Set([
  "invalid_invite", "token_not_found", "session_ended", "session_full", "invite_unused",
  "session_in_progress", "rendezvous_unreachable", "rendezvous_untrusted", "rate_limited",
  "invalid_ttl_minutes",
  "invalid_max_message_length", "invalid_validity_option",
]);

const terms = new Terms($("terms-dialog"), $("home").dataset.termsAccepted === "true");
setupHideAddress($("hide-address"), $("hide-address-status"));

function errorText(error) {
  return KNOWN_ERRORS.has(error.code) ? t(`home.errors.${error.code}`) : error.message;
}

function showRunning() {
  $("running").hidden = false;
  $("cards").hidden = true;
  $("nearby").classList.add("is-off");
}

// People nearby (no server needed): the card, their invitations, the code.
const nearby = new Nearby({ ensureTerms: () => terms.ensure() });
nearby.start();

// A session already running: offer the way back instead of the forms (a LAN session
// still waiting for its code is shown where it was).
api("GET", "/api/state")
  .then(async ({ session }) => {
    if (session && session.phase !== "ended" && !(await nearby.resume(session))) showRunning();
  })
  .catch(() => {});

// -- request a token ---------------------------------------------------------------------

const requestForm = $("request-form");
const ttlCustom = $("ttl-custom");
const limit = $("limit");
let requestTried = false;

function readRequest() {
  const ttlChoice = requestForm.elements.ttl.value;
  const ttl = ttlChoice === "custom" ? wholeNumber(ttlCustom.value, 1, 10000) : Number(ttlChoice);
  const maxLength = wholeNumber(limit.value, 200, 16000);
  setFieldError(ttlCustom, $("ttl-custom-error"), ttl === null ? t("home.request.ttl.error") : "");
  setFieldError(limit, $("limit-error"), maxLength === null ? t("home.request.limit.error") : "");
  if (ttl === null || maxLength === null) return null;
  return { validity_option: requestForm.elements.validity.value, ttl_minutes: ttl, max_message_length: maxLength };
}

for (const radio of requestForm.elements.ttl) {
  radio.addEventListener("change", () => {
    $("ttl-custom-field").hidden = requestForm.elements.ttl.value !== "custom";
    if (requestTried) readRequest();
  });
}
for (const input of [ttlCustom, limit]) {
  input.addEventListener("input", () => {
    if (requestTried) readRequest();
  });
}

requestForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  requestTried = true;
  $("request-error").textContent = "";
  const body = readRequest();
  if (!body) {
    requestForm.querySelector("[aria-invalid=true]")?.focus();
    return;
  }
  if (!(await terms.ensure())) return;
  const submit = $("request-submit");
  setBusy(submit, true);
  try {
    await api("POST", "/api/tokens", body);
    location.assign("/session");
  } catch (error) {
    setBusy(submit, false);
    $("request-error").textContent = errorText(error);
    if (error.code === "session_in_progress") showRunning();
  }
});

// -- join with an invite -----------------------------------------------------------------

const joinForm = $("join-form");
const inviteInput = $("invite");
let joinTried = false;

function readInvite() {
  const { invite, error } = parseInvite(inviteInput.value);
  setFieldError(inviteInput, $("invite-error"), error ? t(`home.join.errors.${error}`) : "");
  return invite || null;
}

// /join#TOKEN-secret fills in the invite; the hash is then dropped from the address bar.
if (location.hash.length > 1) {
  try {
    inviteInput.value = decodeURIComponent(location.hash.slice(1));
  } catch {
    inviteInput.value = location.hash.slice(1);
  }
  history.replaceState(null, "", location.pathname);
  inviteInput.focus();
}

inviteInput.addEventListener("input", () => {
  if (joinTried) readInvite();
});

joinForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  joinTried = true;
  $("join-error").textContent = "";
  const invite = readInvite();
  if (!invite) {
    inviteInput.focus();
    return;
  }
  if (!(await terms.ensure())) return;
  const submit = $("join-submit");
  setBusy(submit, true);
  try {
    await api("POST", "/api/join", { invite });
    location.assign("/session");
  } catch (error) {
    setBusy(submit, false);
    $("join-error").textContent = errorText(error);
    if (error.code === "session_in_progress") showRunning();
  }
});
