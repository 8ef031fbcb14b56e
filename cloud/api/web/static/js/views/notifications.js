// View: where the firm is notified (offers, answers, alerts) and what was sent lately.
// GET/PATCH /firms/{firm}/notifications: language (ja/en), e-mail addresses, LINE to-ids,
// the Slack webhook URL and the firm's own LINE channel access token. The two secrets are
// write-only: the API answers only whether each is set (and a masked URL), which is all
// the page ever shows; an empty field keeps the stored value, "remove" sends null.
// POST .../notifications/test sends one test message to every saved target and answers
// each target's outcome, listed under the button. GET .../notifications/deliveries: the
// newest deliveries with their outcome and reason. Times are Japan time.

import { byId, h, replace, table } from "../dom.js";
import { clearErrors, errorBox, submit as submitForm } from "../forms.js";
import { api } from "../api.js";
import { key, language, t } from "../i18n.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";
import { cardify } from "./cards.js";

const ZONE = "Asia/Tokyo";
const DELIVERIES_SHOWN = 50;
const EVENTS = {
  offer: key("notify.event.offer"),
  accepted: key("notify.event.accepted"),
  declined: key("notify.event.declined"),
  alert: key("notify.event.alert"),
  test: key("notify.event.test"),
};
const CHANNELS = { email: key("notify.channel.email"), slack: key("notify.channel.slack"), line: key("notify.channel.line") };
const OUTCOMES = { sent: key("notify.status.sent"), failed: key("notify.status.failed"), skipped: key("notify.status.skipped") };

// The translated label of `value` in `labels`, or the value itself if the API added one.
function label(labels, value) {
  return Object.prototype.hasOwnProperty.call(labels, value) ? t(labels[value]) : String(value);
}

let settings = null;
let deliveries = null;
let trial = null; // the last test message's outcomes ({language, deliveries}), or null

/** Nothing to wire up front (the form is built when the view shows). */
export function init() {}

/** Load the settings and the recent deliveries, and show them. */
export async function enter() {
  const [s, d] = await Promise.all([
    run(() => api(firmPath("/notifications"))),
    run(() => api(firmPath("/notifications/deliveries"), { query: { limit: DELIVERIES_SHOWN } })),
  ]);
  if (s !== undefined) settings = s;
  if (d !== undefined) deliveries = d || [];
  render();
}

/** Forget everything shown (sign-out). */
export function reset() {
  settings = null;
  deliveries = null;
  trial = null;
  replace(byId("notify-form-host"));
  replace(byId("notify-deliveries"));
}

/** Re-render in the current language (an unsaved edit is kept only for the settings shown). */
export function rerender() {
  if (settings) render();
}

function lines(text) {
  return text
    .split(/[\s,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

function formatTime(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return iso ? String(iso) : "—";
  const loc = language() === "ja" ? "ja-JP" : "en-GB";
  return new Intl.DateTimeFormat(loc, { dateStyle: "medium", timeStyle: "short", timeZone: ZONE, hourCycle: "h23" }).format(d);
}

function field(id, name, label, control, hint = null) {
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("div", { class: "field-error", id: `${id}-error` }),
  );
}

// A write-only secret: what is stored (never the value), a field for a new value, and a
// "remove" box when one is stored.
function secretField({ id, name, label, now, hint, removeLabel, set, input }) {
  return h(
    "div",
    { class: "field wide", dataset: { field: name } },
    h("label", { for: id }, label),
    h("p", { id: `${id}-now`, class: "masked" }, now),
    h("input", {
      id,
      name,
      autocomplete: "off",
      spellcheck: "false",
      autocapitalize: "off",
      "aria-describedby": `${id}-now ${id}-hint`,
      ...input,
    }),
    h("p", { class: "hint", id: `${id}-hint` }, hint),
    set ? h("div", { class: "check" }, h("input", { id: `${id}-clear`, type: "checkbox" }), h("label", { for: `${id}-clear` }, removeLabel)) : null,
    h("div", { class: "field-error", id: `${id}-error` }),
  );
}

function renderForm() {
  const s = settings;
  const slackNow = s.slack_webhook_set ? t("notify.slack_stored", { masked: s.slack_webhook_masked || "" }) : t("notify.slack_none");
  const form = h(
    "form",
    { id: "notify-form", class: "card form-grid", "aria-labelledby": "notify-form-title", onsubmit: save, novalidate: true },
    h("h2", { id: "notify-form-title", tabindex: "-1" }, t("notify.settings")),
    field(
      "n-language",
      "language",
      t("notify.language"),
      h(
        "select",
        { id: "n-language", name: "language" },
        h("option", { value: "ja", selected: s.language === "ja" }, "日本語"),
        h("option", { value: "en", selected: s.language === "en" }, "English"),
      ),
    ),
    field(
      "n-email",
      "email_to",
      t("notify.email_to"),
      h("textarea", { id: "n-email", name: "email_to", rows: "3", spellcheck: "false", autocapitalize: "off", "aria-describedby": "n-email-hint" }, s.email_to.join("\n")),
      t("notify.one_per_line"),
    ),
    field(
      "n-line",
      "line_to",
      t("notify.line_to"),
      h("textarea", { id: "n-line", name: "line_to", rows: "3", spellcheck: "false", autocapitalize: "off", "aria-describedby": "n-line-hint" }, s.line_to.join("\n")),
      t("notify.line_hint"),
    ),
    secretField({
      id: "n-slack",
      name: "slack_webhook_url",
      label: t("notify.slack"),
      now: slackNow,
      hint: t("notify.slack_hint"),
      removeLabel: t("notify.slack_remove"),
      set: s.slack_webhook_set,
      input: { type: "url", placeholder: "https://hooks.slack.com/services/…" },
    }),
    secretField({
      id: "n-line-token",
      name: "line_channel_token",
      label: t("notify.line_token"),
      now: s.line_channel_token_set ? t("notify.line_token_set") : t("notify.line_token_none"),
      hint: t("notify.line_token_hint"),
      removeLabel: t("notify.line_token_remove"),
      set: s.line_channel_token_set,
      input: { type: "password" },
    }),
    h("p", { class: "hint wide" }, s.updated_at ? t("notify.updated", { at: formatTime(s.updated_at) }) : t("notify.never")),
    errorBox(),
    h("div", { class: "form-actions wide" }, h("button", { type: "submit", id: "notify-save" }, t("notify.save"))),
  );
  replace(byId("notify-form-host"), form, renderTrial());
}

// ------------------------------------------------------------------ test message

function renderTrial() {
  return h(
    "section",
    { id: "notify-test", class: "card", "aria-labelledby": "notify-test-title" },
    h("h2", { id: "notify-test-title" }, t("notify.test_title")),
    h("p", { class: "hint", id: "notify-test-hint" }, t("notify.test_hint")),
    h("div", { class: "form-actions" }, h("button", { type: "button", id: "notify-test-send", class: "button-secondary", "aria-describedby": "notify-test-hint", onclick: sendTest }, t("notify.test_send"))),
    h("div", { id: "notify-test-result", "aria-live": "polite" }, trialResult()),
  );
}

function trialResult() {
  if (trial === null) return null;
  if (!trial.deliveries.length) return h("p", { class: "empty", id: "notify-test-none" }, t("notify.test_none"));
  return h(
    "ul",
    { class: "test-outcomes", "aria-label": t("notify.test_outcomes") },
    trial.deliveries.map((d) =>
      h(
        "li",
        { dataset: { channel: d.channel, status: d.status } },
        h("span", { class: `badge delivery-${d.status}` }, label(OUTCOMES, d.status)),
        " ",
        h("strong", {}, label(CHANNELS, d.channel)),
        " ",
        h("span", { class: "masked" }, d.target),
        d.reason ? h("span", { class: "sub reason" }, d.reason) : null,
      ),
    ),
  );
}

async function sendTest() {
  const button = byId("notify-test-send");
  button.disabled = true;
  try {
    const out = await run(() => api(firmPath("/notifications/test"), { method: "POST" }));
    if (out === undefined) return;
    trial = out;
    replace(byId("notify-test-result"), trialResult());
    const count = (status) => out.deliveries.filter((d) => d.status === status).length;
    setStatus(() => (
      out.deliveries.length
        ? t("notify.test_done", { sent: count("sent"), failed: count("failed"), skipped: count("skipped") })
        : t("notify.test_none")
    ));
    const d = await run(() => api(firmPath("/notifications/deliveries"), { query: { limit: DELIVERIES_SHOWN } }));
    if (d !== undefined) {
      deliveries = d || [];
      renderDeliveries();
    }
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}

function renderDeliveries() {
  if (deliveries === null) {
    replace(byId("notify-deliveries"));
    return;
  }
  const title = h("h2", { id: "notify-deliveries-title" }, t("notify.deliveries"));
  if (!deliveries.length) {
    replace(byId("notify-deliveries"), title, h("p", { class: "empty", id: "notify-deliveries-empty" }, t("notify.no_deliveries")));
    return;
  }
  const rows = deliveries.map((d) =>
    h(
      "tr",
      { dataset: { deliveryId: d.id, status: d.status } },
      h("td", {}, formatTime(d.at)),
      h("td", {}, label(EVENTS, d.event)),
      h("td", {}, d.reference),
      h("td", {}, label(CHANNELS, d.channel)),
      h("td", {}, d.target),
      h("td", { class: "status" }, h("span", { class: `badge delivery-${d.status}` }, label(OUTCOMES, d.status))),
      h("td", {}, d.reason || "—"),
    ),
  );
  replace(
    byId("notify-deliveries"),
    title,
    cardify(table({
      cls: "data deliveries",
      caption: t("notify.deliveries_caption"),
      head: [t("notify.col_at"), t("notify.col_event"), t("notify.col_reference"), t("notify.col_channel"), t("notify.col_target"), t("notify.col_status"), t("notify.col_reason")],
      rows,
    })),
  );
}

function render() {
  if (settings) renderForm();
  renderDeliveries();
}

function body() {
  const out = {
    language: byId("n-language").value,
    email_to: lines(byId("n-email").value),
    line_to: lines(byId("n-line").value),
  };
  for (const [id, name] of [["n-slack", "slack_webhook_url"], ["n-line-token", "line_channel_token"]]) {
    const value = byId(id).value.trim();
    const clear = document.getElementById(`${id}-clear`);
    if (value) out[name] = value;
    else if (clear && clear.checked) out[name] = null;
  }
  return out;
}

async function save(ev) {
  ev.preventDefault();
  const form = byId("notify-form");
  const button = byId("notify-save");
  button.disabled = true;
  try {
    clearErrors(form);
    const saved = await submitForm(form, firmPath("/notifications"), { method: "PATCH", body: body() });
    if (saved === undefined) return;
    settings = saved; // re-rendered: the secrets typed in are gone, only "set" shows
    renderForm();
    setStatus(() => t("notify.saved"));
    byId("notify-form-title").focus();
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}
