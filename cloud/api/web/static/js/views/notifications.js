// View: where the firm is notified (offers, answers, alerts) and what was sent lately.
// GET/PATCH /firms/{firm}/notifications: language (ja/en), e-mail addresses, LINE to-ids
// and the Slack webhook URL. The URL is write-only: the API answers only whether it is
// set and a masked form, which is all the page ever shows; an empty URL field keeps the
// stored URL, "remove" sends null. GET .../notifications/deliveries: the newest
// deliveries with their outcome and reason. Times are Japan time.

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
};
const CHANNELS = { email: key("notify.channel.email"), slack: key("notify.channel.slack"), line: key("notify.channel.line") };
const OUTCOMES = { sent: key("notify.status.sent"), failed: key("notify.status.failed"), skipped: key("notify.status.skipped") };

// The translated label of `value` in `labels`, or the value itself if the API added one.
function label(labels, value) {
  return Object.prototype.hasOwnProperty.call(labels, value) ? t(labels[value]) : String(value);
}

let settings = null;
let deliveries = null;

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
    h(
      "div",
      { class: "field wide", dataset: { field: "slack_webhook_url" } },
      h("label", { for: "n-slack" }, t("notify.slack")),
      h("p", { id: "n-slack-now", class: "masked" }, slackNow),
      h("input", {
        id: "n-slack",
        name: "slack_webhook_url",
        type: "url",
        autocomplete: "off",
        spellcheck: "false",
        autocapitalize: "off",
        placeholder: "https://hooks.slack.com/services/…",
        "aria-describedby": "n-slack-now n-slack-hint",
      }),
      h("p", { class: "hint", id: "n-slack-hint" }, t("notify.slack_hint")),
      s.slack_webhook_set
        ? h("div", { class: "check" }, h("input", { id: "n-slack-clear", type: "checkbox" }), h("label", { for: "n-slack-clear" }, t("notify.slack_remove")))
        : null,
      h("div", { class: "field-error", id: "n-slack-error" }),
    ),
    h("p", { class: "hint wide" }, s.updated_at ? t("notify.updated", { at: formatTime(s.updated_at) }) : t("notify.never")),
    errorBox(),
    h("div", { class: "form-actions wide" }, h("button", { type: "submit", id: "notify-save" }, t("notify.save"))),
  );
  replace(byId("notify-form-host"), form);
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
  const url = byId("n-slack").value.trim();
  const clear = document.getElementById("n-slack-clear");
  if (url) out.slack_webhook_url = url;
  else if (clear && clear.checked) out.slack_webhook_url = null;
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
    settings = saved; // re-rendered: the URL typed in is gone, only its masked form shows
    renderForm();
    setStatus(t("notify.saved"));
    byId("notify-form-title").focus();
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}
