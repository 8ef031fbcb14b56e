// Page-wide feedback: the error banner, the status line and the busy indicator.

import { byId, replace } from "./dom.js";
import { key, t } from "./i18n.js";

/** Translated explanations of the API's error codes (the API's own message follows). */
const HINTS = {
  unauthenticated: key("error.code.unauthenticated"),
  forbidden: key("error.code.forbidden"),
  not_found: key("error.code.not_found"),
  conflict: key("error.code.conflict"),
  invalid: key("error.code.invalid"),
  network_error: key("error.code.network_error"),
  too_many_requests: key("error.code.too_many_requests"),
};

let lastError = null;
let busy = 0;

function renderError() {
  const banner = byId("error");
  if (!lastError) {
    banner.hidden = true;
    replace(byId("error-message"));
    replace(byId("error-code"));
    return;
  }
  const { err, context } = lastError;
  const parts = [];
  if (context) parts.push(context);
  if (Object.prototype.hasOwnProperty.call(HINTS, err.code)) parts.push(t(HINTS[err.code]));
  if (err.message && err.message !== context) parts.push(err.message);
  replace(byId("error-message"), parts.join(" — "));
  replace(byId("error-code"), err.code ? `(${err.code}${err.status ? ` · HTTP ${err.status}` : ""})` : "");
  banner.hidden = false;
}

/**
 * Show `err` (an ApiError or Error) in the error banner: an optional translated `context`,
 * the translated hint for the API's error code if there is one, the API's own message
 * and the code itself.
 */
export function showError(err, context = "") {
  lastError = { err: { code: err.code || "error", status: err.status || 0, message: err.message || String(err) }, context };
  renderError();
}

/** Hide the error banner. */
export function clearError() {
  lastError = null;
  renderError();
}

/** Announce `message` in the polite status line (screen readers read it). */
// the status line's text, or a function giving it in the current language
let status = "";

/**
 * Show a short status message. Pass a function that calls `t` (the catalogue lookup) so it
 * follows a language switch; a plain string stays as it is.
 */
export function setStatus(message) {
  status = message || "";
  renderStatus();
}

function renderStatus() {
  replace(byId("status"), typeof status === "function" ? status() : status);
}

/** Re-render translated feedback after a language switch. */
export function rerenderFeedback() {
  renderError();
  renderStatus();
}

/**
 * Run an API action: clears the previous error, shows the busy indicator, and shows any
 * error in the banner (unless the 401 handler already dealt with it).
 * Resolves to the action's result, or undefined when it failed.
 */
export async function run(action) {
  clearError();
  busy += 1;
  byId("loading").hidden = false;
  document.documentElement.dataset.busy = "true";
  try {
    return await action();
  } catch (err) {
    if (!err.handled) showError(err);
    return undefined;
  } finally {
    busy -= 1;
    if (busy === 0) {
      byId("loading").hidden = true;
      delete document.documentElement.dataset.busy;
    }
  }
}
