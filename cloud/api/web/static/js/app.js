// The partner web page: sign-in, language switch, hash routing between the views.
//
//   #search          (a) partners' spare capacity          operator, partner, admin
//   #takeovers[/id]  (b) the firm's takeover plans          operator, admin
//   #assignments     (c) work offered to the firm           operator, partner, admin
//   #sites #machines #molds   the firm's registry           operator, admin
//   #uploads         registry (CSV/XLSX) and bookings (CSV)  operator, admin
//   #disruptions     declare / confirm / dismiss / end       operator, admin
//   #sharing         grants and partner groups (preview)     operator, admin
//   #notifications   e-mail/LINE/Slack targets, deliveries   operator, admin
//
// The API key lives in sessionStorage only (this tab; cleared on sign-out), never in
// localStorage or a cookie. A 401 from any call signs out and shows the sign-in form.

import { ApiError, api, onUnauthorized, setKey } from "./api.js";
import { byId, replace } from "./dom.js";
import { language, loadCatalogues, onLanguageChange, pickLanguage, setLanguage, t } from "./i18n.js";
import { roleLabel } from "./labels.js";
import { session } from "./state.js";
import { clearError, rerenderFeedback, run, setStatus, showError } from "./ui.js";
import * as assignments from "./views/assignments.js";
import * as disruptions from "./views/disruptions.js";
import * as search from "./views/search.js";
import * as sharing from "./views/sharing.js";
import * as takeovers from "./views/takeovers.js";
import * as machines from "./views/machines.js";
import * as molds from "./views/molds.js";
import * as notifications from "./views/notifications.js";
import * as sites from "./views/sites.js";
import * as uploads from "./views/uploads.js";

const KEY_STORAGE = "renkei.apiKey";

const VIEWS = {
  search: { roles: ["operator", "partner", "admin"], module: search },
  takeovers: { roles: ["operator", "admin"], module: takeovers },
  assignments: { roles: ["operator", "partner", "admin"], module: assignments },
  sites: { roles: ["operator", "admin"], module: sites },
  machines: { roles: ["operator", "admin"], module: machines },
  molds: { roles: ["operator", "admin"], module: molds },
  uploads: { roles: ["operator", "admin"], module: uploads },
  disruptions: { roles: ["operator", "admin"], module: disruptions },
  sharing: { roles: ["operator", "admin"], module: sharing },
  notifications: { roles: ["operator", "admin"], module: notifications },
};

function allowedViews(role) {
  return Object.keys(VIEWS).filter((name) => VIEWS[name].roles.includes(role));
}

function showOnly(sectionId) {
  for (const section of document.querySelectorAll("main > section.view")) {
    section.hidden = section.id !== sectionId;
  }
}

function renderWhoami() {
  const whoami = byId("whoami");
  if (!session.me) {
    whoami.hidden = true;
    replace(whoami);
    return;
  }
  replace(whoami, t("auth.whoami", { firm: session.me.firm_name, role: roleLabel(session.me.role) }));
  whoami.hidden = false;
}

function showSignIn() {
  byId("nav").hidden = true;
  byId("sign-out").hidden = true;
  renderWhoami();
  showOnly("view-signin");
  document.documentElement.dataset.view = "signin";
}

async function route() {
  if (!session.me) {
    showSignIn();
    return;
  }
  const [name, arg] = window.location.hash.replace(/^#/, "").split("/");
  const allowed = allowedViews(session.me.role);
  for (const link of byId("nav").querySelectorAll("a[data-view]")) {
    link.hidden = !allowed.includes(link.dataset.view);
  }
  byId("nav").hidden = allowed.length === 0;
  byId("sign-out").hidden = false;
  renderWhoami();
  if (!allowed.length) {
    showOnly("view-none");
    document.documentElement.dataset.view = "none";
    return;
  }
  const view = allowed.includes(name) ? name : allowed[0];
  if (view !== name) window.history.replaceState(null, "", `#${view}`);
  for (const link of byId("nav").querySelectorAll("a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  showOnly(`view-${view}`);
  document.documentElement.dataset.view = view;
  const mod = VIEWS[view].module;
  if (mod.enter) await mod.enter(arg ? decodeURIComponent(arg) : undefined);
}

async function signIn(key) {
  setKey(key);
  const me = await run(() => api("/me", { quiet401: true }));
  if (!me) {
    setKey(null);
    sessionStorage.removeItem(KEY_STORAGE);
    return false;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  session.me = me;
  byId("api-key").value = "";
  setStatus(() => t("auth.signed_in", { firm: me.firm_name }));
  await route();
  return true;
}

function signOut({ keepError = false } = {}) {
  sessionStorage.removeItem(KEY_STORAGE);
  setKey(null);
  session.me = null;
  for (const { module } of Object.values(VIEWS)) module.reset();
  if (!keepError) clearError();
  setStatus("");
  const url = new URL(window.location.href);
  url.hash = "";
  window.history.replaceState(null, "", url.pathname + url.search);
  showSignIn();
  byId("api-key").focus();
}

function toggleLanguage() {
  const next = language() === "en" ? "ja" : "en";
  setLanguage(next);
  const url = new URL(window.location.href);
  url.searchParams.set("lang", next);
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
}

function bind() {
  byId("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = byId("api-key").value.trim();
    if (!key) {
      showError(new ApiError(0, "missing_key", t("auth.missing_key")));
      byId("api-key").focus();
      return;
    }
    const button = byId("signin-submit");
    button.disabled = true;
    try {
      await signIn(key);
    } finally {
      button.disabled = false;
    }
  });
  byId("sign-out").addEventListener("click", () => {
    signOut();
    setStatus(() => t("auth.signed_out"));
  });
  byId("lang-toggle").addEventListener("click", toggleLanguage);
  byId("error-close").addEventListener("click", clearError);
  byId("takeovers-refresh").addEventListener("click", () => {
    const [, arg] = window.location.hash.replace(/^#/, "").split("/");
    takeovers.enter(arg ? decodeURIComponent(arg) : undefined);
  });
  window.addEventListener("hashchange", () => route());
  onUnauthorized((err) => {
    // the key was revoked (or the server forgot it): back to the sign-in form
    err.handled = true;
    signOut({ keepError: true });
    showError(err, t("auth.expired"));
  });
  onLanguageChange(() => {
    renderWhoami();
    rerenderFeedback();
    for (const { module } of Object.values(VIEWS)) module.rerender();
  });
  search.init();
  assignments.init();
  uploads.init();
  disruptions.init();
  takeovers.init();
}

async function main() {
  try {
    await loadCatalogues();
  } catch (err) {
    // without catalogues there is no text to show but this one
    document.body.textContent = `Renkei: ${err}`;
    return;
  }
  setLanguage(pickLanguage());
  bind();
  const stored = sessionStorage.getItem(KEY_STORAGE);
  if (stored) await signIn(stored);
  else showSignIn();
  document.documentElement.dataset.ready = "true";
}

main();
