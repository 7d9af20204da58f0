// The rendezvous's invite page. The invite is after "#" in the address: browsers never send
// that part to any server. This script reads it, asks this server for the token's public
// status (the token only, never the secret) and, on the button, hands the invite to the
// visitor's own orbitd at http://127.0.0.1:<port>/join#<invite>, the port kept in
// localStorage. It sends nothing else anywhere.
import { copyField } from "./lib/clipboard.js";
import { t, language } from "./lib/i18n.js";
import { parseInvite } from "./lib/invite.js";

const PORT_KEY = "chatorbit.join.port";
const DEFAULT_PORT = 7170;
const $ = (id) => document.getElementById(id);

let hash = location.hash.slice(1);
try {
  hash = decodeURIComponent(hash);
} catch {
  // keep it raw: parseInvite refuses it if it is not an invite
}
const { invite } = parseInvite(hash);
const status = $("join-status");
const portInput = $("port");
const portError = $("port-error");

// The language links keep the invite (it is in the fragment, which "?lang=" would drop).
for (const link of document.querySelectorAll("a[data-lang]")) {
  link.href = `${link.getAttribute("href")}${location.hash}`;
}

function savedPort() {
  try {
    const port = Number(localStorage.getItem(PORT_KEY));
    return Number.isInteger(port) && port > 0 && port < 65536 ? port : DEFAULT_PORT;
  } catch {
    return DEFAULT_PORT;
  }
}

function readPort() {
  const text = portInput.value.trim();
  const port = Number(text);
  const ok = /^\d{1,5}$/.test(text) && port > 0 && port < 65536;
  portError.textContent = ok ? "" : t("join.badPort");
  portInput.setAttribute("aria-invalid", ok ? "false" : "true");
  return ok ? port : null;
}

async function showStatus(token) {
  try {
    const response = await fetch(`/api/session/${encodeURIComponent(token)}/status`, {
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    if (response.status === 404) {
      status.textContent = t("join.unknown");
      return;
    }
    if (!response.ok) throw new Error(String(response.status));
    const found = await response.json();
    if (found.state === "ENDED" || found.state === "ACTIVE") {
      status.textContent = t("join.expired");
      $("join-waiting").hidden = true;
      return;
    }
    const time = new Date(found.valid_until).toLocaleString(language, {
      dateStyle: "medium",
      timeStyle: "short",
    });
    const lines = [t("join.validUntil", { time })];
    if (found.timer?.ttl_minutes) lines.push(t("join.validFor", { minutes: found.timer.ttl_minutes }));
    status.textContent = lines.join(" ");
  } catch {
    status.textContent = t("join.unavailable");
  }
}

portInput.value = String(savedPort());
if (invite) {
  $("invite").value = invite;
  $("join-command").textContent = `orbitd join ${invite}`;
  $("open-button").disabled = false;
  showStatus(invite.split("-")[0]);
} else {
  status.textContent = t("join.badInvite");
  $("join-waiting").hidden = true;
}

portInput.addEventListener("input", readPort);
$("open-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const port = readPort();
  if (!invite || port === null) return;
  try {
    localStorage.setItem(PORT_KEY, String(port));
  } catch {
    // private mode: the port is only not remembered
  }
  location.href = `http://127.0.0.1:${port}/join#${invite}`;
});

$("copy-invite").addEventListener("click", async () => {
  const result = await copyField($("invite"));
  $("copy-status").textContent = t(result === "copied" ? "join.copied" : "join.copyManual");
});
