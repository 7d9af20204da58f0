// The rendezvous's admin page: log in, list abuse reports, mark them handled, log out.
//
// The admin bearer token lives in sessionStorage: it survives a reload and a change of
// language in this tab, is never shared with other tabs, is gone when the tab closes,
// and never appears in a URL. Report texts come from strangers: they are only ever
// written with textContent, never parsed as HTML.
import { t, language } from "./lib/i18n.js";

const STORAGE_KEY = "chatorbit.admin.session";
const $ = (id) => document.getElementById(id);

const loginSection = $("login");
const reportsSection = $("reports");
const form = $("login-form");
const password = $("password");
const loginError = $("login-error");
const loginNotice = $("login-notice");
const submit = $("login-submit");
const reportsError = $("reports-error");
const template = $("report-template");

let expiryTimer = null;

class AdminError extends Error {
  constructor(status, code, retryAfter) {
    super(code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// -- the login, kept in this tab ------------------------------------------------------
function loadLogin() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (saved && typeof saved.token === "string" && Date.parse(saved.expires_at) > Date.now()) {
      return saved;
    }
  } catch {
    // unreadable: treated as logged out
  }
  sessionStorage.removeItem(STORAGE_KEY);
  return null;
}

function saveLogin(login) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ token: login.token, expires_at: login.expires_at }));
}

function forgetLogin() {
  sessionStorage.removeItem(STORAGE_KEY);
  if (expiryTimer !== null) {
    clearTimeout(expiryTimer);
    expiryTimer = null;
  }
}

// -- the API -------------------------------------------------------------------------
async function call(method, path, body) {
  const headers = {};
  const login = loadLogin();
  if (login) headers.Authorization = `Bearer ${login.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new AdminError(0, "network");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new AdminError(response.status, data?.error || "error", Number.isFinite(retry) ? retry : null);
  }
  return data;
}

function describe(error) {
  switch (error?.code) {
    case "wrong_password":
      return t("admin.login.wrong");
    case "admin_disabled":
      return t("admin.login.disabled");
    case "admin_login_required":
      return t("admin.login.expired");
    case "rate_limited":
      return t("admin.errors.rateLimited", { seconds: error.retryAfter ?? 60 });
    case "report_not_found":
      return t("admin.errors.notFound");
    case "network":
      return t("admin.errors.network");
    default:
      return t("admin.errors.generic");
  }
}

// -- what is shown -------------------------------------------------------------------
function announce(text) {
  const live = $("live");
  if (!live) return;
  live.textContent = "";
  setTimeout(() => { live.textContent = text; }, 50);
}

const dateFormat = new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" });

function setTime(element, iso) {
  element.dateTime = iso;
  element.textContent = dateFormat.format(new Date(iso));
}

function showLogin(notice = "") {
  forgetLogin();
  reportsSection.hidden = true;
  loginSection.hidden = false;
  loginNotice.textContent = notice;
  $("open-list").replaceChildren();
  $("handled-list").replaceChildren();
  password.value = "";
  password.focus();
}

function showReports(login, { focus = false } = {}) {
  loginSection.hidden = true;
  loginNotice.textContent = "";
  loginError.textContent = "";
  reportsSection.hidden = false;
  $("session-info").textContent = t("admin.reports.loggedInUntil", {
    time: dateFormat.format(new Date(login.expires_at)),
  });
  if (expiryTimer !== null) clearTimeout(expiryTimer);
  const left = Math.min(Date.parse(login.expires_at) - Date.now(), 2 ** 31 - 1);
  expiryTimer = setTimeout(() => showLogin(t("admin.login.expired")), Math.max(left, 0));
  if (focus) $("reports-title").focus();
}

function renderReport(report) {
  const item = template.content.firstElementChild.cloneNode(true);
  const field = (name) => item.querySelector(`[data-field="${name}"]`);
  item.dataset.reportId = String(report.id);
  item.setAttribute("aria-labelledby", `report-${report.id}-reason`);
  field("reason").id = `report-${report.id}-reason`;
  field("reason").textContent = report.reason;
  field("number").textContent = t("admin.report.number", { id: report.id });
  field("token").textContent = report.token;
  setTime(field("created"), report.created_at);
  field("contact").textContent = report.contact || t("admin.report.noContact");
  field("details").textContent = report.details || t("admin.report.noDetails");
  if (report.handled) {
    setTime(field("handled"), report.handled_at);
    item.querySelector('[data-if="open"]').remove();
  } else {
    item.querySelector('[data-if="handled"]').remove();
    const button = item.querySelector('[data-action="handled"]');
    button.setAttribute("aria-label", t("admin.reports.markHandledLabel", { id: report.id }));
    button.addEventListener("click", () => markHandled(report.id, button));
  }
  return item;
}

function renderList(name, reports) {
  $(`${name}-list`).replaceChildren(...reports.map(renderReport));
  $(`${name}-count`).textContent = `(${reports.length})`;
  $(`${name}-empty`).hidden = reports.length > 0;
}

async function loadReports() {
  reportsError.textContent = "";
  reportsSection.setAttribute("aria-busy", "true");
  try {
    const { reports } = await call("GET", "/api/admin/reports?include_handled=1");
    const open = reports.filter((report) => !report.handled);
    const handled = reports.filter((report) => report.handled);
    renderList("open", open);
    renderList("handled", handled);
    return { open: open.length, handled: handled.length };
  } catch (error) {
    if (error.status === 401) {
      showLogin(describe(error));
    } else {
      reportsError.textContent = describe(error);
    }
    return null;
  } finally {
    reportsSection.removeAttribute("aria-busy");
  }
}

async function markHandled(id, button) {
  button.disabled = true;
  try {
    await call("POST", `/api/admin/reports/${encodeURIComponent(id)}/handled`, {});
  } catch (error) {
    button.disabled = false;
    if (error.status === 401) {
      showLogin(describe(error));
    } else {
      reportsError.textContent = describe(error);
    }
    return;
  }
  const counts = await loadReports();
  if (counts) {
    announce(t("admin.reports.markedHandled", { id }));
    // Keep keyboard users in the open list: the next report's button, else the heading.
    const next = $("open-list").querySelector('[data-action="handled"]');
    (next || $("reports-title")).focus();
  }
}

// -- wiring --------------------------------------------------------------------------
async function logIn(event) {
  event.preventDefault();
  loginError.textContent = "";
  loginNotice.textContent = "";
  password.removeAttribute("aria-invalid");
  if (!password.value) {
    loginError.textContent = t("admin.login.required");
    password.setAttribute("aria-invalid", "true");
    password.focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = submit.dataset.busy;
  try {
    forgetLogin();
    const login = await call("POST", "/api/admin/login", { password: password.value });
    saveLogin(login);
    password.value = "";
    showReports(login, { focus: true });
    const counts = await loadReports();
    if (counts) announce(t("admin.reports.loaded", counts));
  } catch (error) {
    loginError.textContent = describe(error);
    password.setAttribute("aria-invalid", "true");
    password.select();
    password.focus();
  } finally {
    submit.disabled = false;
    submit.textContent = submit.dataset.idle;
  }
}

async function logOut() {
  try {
    await call("POST", "/api/admin/logout", {});
  } catch {
    // Already expired or unreachable: the token is forgotten here either way.
  }
  showLogin(t("admin.login.loggedOut"));
}

if (form) {
  // The form never submits by itself (POST, so a password can never land in a URL);
  // its button is disabled in the HTML until this script has taken over.
  form.addEventListener("submit", logIn);
  submit.disabled = false;
  $("refresh").addEventListener("click", async () => {
    announce(t("admin.reports.loading"));
    const counts = await loadReports();
    if (counts) announce(t("admin.reports.loaded", counts));
  });
  $("logout").addEventListener("click", logOut);

  const saved = loadLogin();
  if (saved) {
    showReports(saved);
    loadReports();
  } else {
    loginSection.hidden = false;
  }
}
