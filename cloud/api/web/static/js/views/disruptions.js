// View: the signed-in firm's disruptions. Declare one (POST /firms/{firm}/disruptions),
// decide a suspicion raised by the gateways' Last Will (POST .../{id}/confirm or
// .../{id}/dismiss) and end a confirmed one (POST .../{id}/end). Every row is updated in
// place from the API's answer (no reload). Times are shown and entered in Japan time
// (Asia/Tokyo, the sites' zone), whatever the browser's zone is.

import { api } from "../api.js";
import { byId, h, replace, table } from "../dom.js";
import { formatNumber, key, language, t } from "../i18n.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";
import { cardify, labelRow } from "./cards.js";
import { presetDisruption } from "./takeover_form.js";

const ZONE = "Asia/Tokyo";
const ZONE_OFFSET = "+09:00"; // Japan has no daylight saving time

const STATUSES = {
  suspected: key("disruption_status.suspected"),
  confirmed: key("disruption_status.confirmed"),
  dismissed: key("disruption_status.dismissed"),
  ended: key("disruption_status.ended"),
};
const SOURCES = {
  declared: key("disruption_source.declared"),
  last_will: key("disruption_source.last_will"),
};
const DIALOG = {
  confirm: { title: key("disruptions.confirm_title"), ok: key("disruptions.confirm") },
  dismiss: { title: key("disruptions.dismiss_title"), ok: key("disruptions.dismiss") },
  end: { title: key("disruptions.end_title"), ok: key("disruptions.end") },
};

let rows = null;
let sites = null;
let pending = null; // {action, d} while the dialog is open

const labelOf = (map, code) => (Object.prototype.hasOwnProperty.call(map, code) ? t(map[code]) : String(code));

/** "2026-11-23T10:00" typed in Japan time -> ISO 8601 with the offset ("" stays null). */
export function fromJapanTime(local) {
  return local ? `${local.length === 16 ? `${local}:00` : local}${ZONE_OFFSET}` : null;
}

/** An API time (UTC) in Japan time, e.g. "Nov 23, 2026, 10:00". */
export function formatJapanTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const loc = language() === "ja" ? "ja-JP" : "en-US";
  return new Intl.DateTimeFormat(loc, { dateStyle: "medium", timeStyle: "short", timeZone: ZONE, hourCycle: "h23" }).format(d);
}

/** Wire the declare form, the refresh button and the decision dialog. */
export function init() {
  byId("disruption-new").addEventListener("click", openForm);
  byId("disruption-cancel").addEventListener("click", closeForm);
  byId("disruptions-refresh").addEventListener("click", () => enter());
  byId("disruption-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    declare();
  });
  const dialog = byId("disruption-dialog");
  dialog.addEventListener("close", () => {
    const p = pending;
    pending = null;
    if (p && dialog.returnValue === "confirm") decide(p.action, p.d);
  });
}

/** Load the firm's disruptions (and its sites for the declare form). */
export async function enter() {
  const [data, siteData] = await Promise.all([
    run(() => api(firmPath("/disruptions"))),
    sites ? Promise.resolve(sites) : run(() => api(firmPath("/sites"))),
  ]);
  if (siteData !== undefined) {
    sites = siteData || [];
    renderSites();
  }
  if (data !== undefined) {
    rows = data || [];
    render();
  }
}

/** Forget everything shown (sign-out). */
export function reset() {
  rows = null;
  sites = null;
  pending = null;
  closeForm();
  replace(byId("disruption-list"));
  replace(byId("d-site"));
  const dialog = byId("disruption-dialog");
  if (dialog.open) dialog.close("cancel");
}

/** Re-render in the current language. */
export function rerender() {
  if (rows) render();
  if (sites) renderSites();
}

function renderSites() {
  const select = byId("d-site");
  const chosen = select.value;
  replace(
    select,
    sites.map((s) => h("option", { value: s.id }, s.name && s.name !== s.id ? `${s.name} (${s.id})` : s.id)),
  );
  if (chosen) select.value = chosen;
}

function openForm() {
  const form = byId("disruption-form");
  form.reset();
  form.hidden = false;
  byId("d-site").focus();
}

function closeForm() {
  byId("disruption-form").hidden = true;
}

function evidence(d) {
  const det = d.detail || {};
  if (d.source !== "last_will" || !Array.isArray(det.offline)) return d.note ? h("span", { class: "sub" }, d.note) : null;
  const gateways = det.offline.map((g) => `${g.gateway_id} (${formatJapanTime(g.offline_at)})`).join(", ");
  const counts = {
    offline: formatNumber(det.offline.length, 0),
    total: formatNumber(det.gateways_total, 0),
    minutes: formatNumber(Number(det.window_s || 0) / 60, 0),
  };
  // detail.rule "site_bridge": raised by the site broker bridge's 0 (cloud/disruption/bridge.py)
  const bridged = det.rule === "site_bridge" && det.bridge;
  return h(
    "div",
    { class: "evidence", dataset: { rule: det.rule || "last_will" } },
    bridged
      ? t("disruptions.evidence_bridge", { ...counts, at: formatJapanTime(det.bridge.offline_at) })
      : t("disruptions.evidence", counts),
    h("span", { class: "sub" }, gateways),
    det.cleared ? h("span", { class: "sub" }, t("disruptions.cleared_bridge", { at: formatJapanTime(det.cleared.at) })) : null,
    d.note ? h("span", { class: "sub" }, d.note) : null,
  );
}

function actionButton(action, d, cls) {
  const labels = {
    confirm: [t("disruptions.confirm"), t("disruptions.confirm_label", { id: d.id })],
    dismiss: [t("disruptions.dismiss"), t("disruptions.dismiss_label", { id: d.id })],
    end: [t("disruptions.end"), t("disruptions.end_label", { id: d.id })],
  }[action];
  return h("button", { type: "button", class: `${action} ${cls}`, "aria-label": labels[1], onclick: () => ask(action, d) }, labels[0]);
}

function row(d) {
  const actions = [];
  if (d.status === "suspected") {
    actions.push(actionButton("confirm", d, "button-danger"), actionButton("dismiss", d, "button-secondary"));
  } else if (d.status === "confirmed") {
    actions.push(
      actionButton("end", d, ""),
      h(
        "button",
        { type: "button", class: "takeover button-secondary", "aria-label": t("disruptions.takeover_label", { id: d.id }), onclick: () => askTakeover(d) },
        t("disruptions.takeover"),
      ),
    );
  }
  return h(
    "tr",
    { id: `disruption-${d.id}`, tabindex: "-1", dataset: { disruptionId: d.id, status: d.status } },
    h("th", { scope: "row" }, `#${d.id}`),
    h("td", {}, d.site_id),
    h("td", { class: "status" }, h("span", { class: `badge status-${d.status}` }, labelOf(STATUSES, d.status))),
    h("td", {}, labelOf(SOURCES, d.source), evidence(d)),
    h("td", { class: "nowrap" }, formatJapanTime(d.start)),
    h("td", { class: "nowrap" }, d.end ? formatJapanTime(d.end) : t("disruptions.ongoing")),
    h("td", { class: "num" }, t("unit.km", { n: formatNumber(d.radius_km, 1) })),
    h("td", { class: "actions" }, actions),
  );
}

function render() {
  if (!rows.length) {
    replace(byId("disruption-list"), h("p", { class: "empty", id: "disruptions-empty" }, t("disruptions.none")));
    return;
  }
  replace(
    byId("disruption-list"),
    cardify(table({
      cls: "data disruptions",
      caption: t("disruptions.caption"),
      head: [
        t("disruptions.col_id"),
        t("disruptions.site"),
        t("disruptions.col_status"),
        t("disruptions.col_source"),
        t("disruptions.col_start"),
        t("disruptions.col_end"),
        h("th", { scope: "col", class: "num" }, t("disruptions.col_radius")),
        h("th", { scope: "col" }, t("common.actions")),
      ],
      rows: rows.map(row),
    })),
  );
}

function upsert(d) {
  const known = rows.some((r) => r.id === d.id);
  rows = known ? rows.map((r) => (r.id === d.id ? d : r)) : [d, ...rows];
  const old = document.getElementById(`disruption-${d.id}`);
  if (old) {
    const fresh = row(d);
    old.replaceWith(fresh);
    labelRow(fresh);
    fresh.focus();
  } else {
    render();
    document.getElementById(`disruption-${d.id}`)?.focus();
  }
}

async function declare() {
  const radius = byId("d-radius").value;
  const body = {
    site_id: byId("d-site").value,
    start: fromJapanTime(byId("d-start").value),
    end: fromJapanTime(byId("d-end").value),
    note: byId("d-note").value.trim(),
  };
  if (radius !== "") body.radius_km = Number(radius);
  const d = await run(() => api(firmPath("/disruptions"), { method: "POST", body }));
  if (d !== undefined) {
    closeForm();
    upsert(d);
    setStatus(() => t("disruptions.declared_msg", { id: d.id, site: d.site_id }));
  }
}

function ask(action, d) {
  pending = { action, d };
  replace(byId("disruption-dialog-title"), t(DIALOG[action].title));
  replace(byId("disruption-dialog-ok"), t(DIALOG[action].ok));
  byId("disruption-dialog-ok").className = action === "end" ? "" : "button-danger";
  replace(byId("disruption-dialog-summary"), t("disruptions.dialog_summary", { id: d.id, site: d.site_id, start: formatJapanTime(d.start) }));
  byId("dd-radius-field").hidden = action !== "confirm";
  byId("dd-end-field").hidden = action !== "end";
  byId("dd-radius").value = String(d.radius_km ?? "");
  byId("dd-end").value = "";
  byId("dd-note").value = d.note || "";
  const dialog = byId("disruption-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  (action === "confirm" ? byId("dd-radius") : byId("dd-note")).focus();
}

async function decide(action, d) {
  const body = {};
  const note = byId("dd-note").value.trim();
  if (note !== (d.note || "")) body.note = note;
  if (action === "confirm" && byId("dd-radius").value !== "") body.radius_km = Number(byId("dd-radius").value);
  if (action === "end" && byId("dd-end").value) body.end = fromJapanTime(byId("dd-end").value);
  const path = firmPath(`/disruptions/${encodeURIComponent(d.id)}/${action}`);
  const res = await run(() => api(path, { method: "POST", body }));
  if (res !== undefined) {
    upsert(res);
    const message = {
      confirm: () => t("disruptions.confirmed_msg", { id: d.id }),
      dismiss: () => t("disruptions.dismissed_msg", { id: d.id }),
      end: () => t("disruptions.ended_msg", { id: d.id }),
    }[action];
    setStatus(message);
  }
}

function askTakeover(d) {
  presetDisruption(d.id);
  window.location.hash = "#takeovers";
}
