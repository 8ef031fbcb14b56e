// View (c): work offered to the signed-in firm (assignments of partners' takeover plans),
// with Accept / Decline. GET /firms/{firm}/assignments?status=, POST .../{id}/accept and
// .../{id}/decline {"note"?}; the answered row is updated in place (no reload).

import { api } from "../api.js";
import { byId, h, replace, table } from "../dom.js";
import { dayBefore, formatDate, formatDateRange, formatHours, formatNumber, t } from "../i18n.js";
import { assignmentStatusLabel } from "../labels.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";

let rows = null;
let declining = null;

/** Wire the filter, the refresh button and the decline dialog. */
export function init() {
  byId("assignment-filter").addEventListener("change", () => enter());
  byId("assignments-refresh").addEventListener("click", () => enter());
  const dialog = byId("decline-dialog");
  dialog.addEventListener("close", () => {
    const a = declining;
    declining = null;
    if (a && dialog.returnValue === "confirm") decline(a, byId("decline-note").value.trim());
  });
}

/** Load the assignments for the current filter. */
export async function enter() {
  const status = byId("assignment-filter").value;
  const data = await run(() => api(firmPath("/assignments"), { query: { status } }));
  if (data !== undefined) {
    rows = Array.isArray(data) ? data : (data && (data.items || data.results)) || [];
    render();
  }
}

/** Forget everything shown (sign-out). */
export function reset() {
  rows = null;
  byId("assignment-filter").value = "";
  replace(byId("assignment-list"));
  const dialog = byId("decline-dialog");
  if (dialog.open) dialog.close("cancel");
}

/** Re-render in the current language. */
export function rerender() {
  if (rows) render();
}

function moldText(m) {
  if (!m) return "";
  return t("assignments.mold_summary", {
    w: formatNumber(m.width_mm, 0),
    h: formatNumber(m.height_mm, 0),
    d: formatNumber(m.thickness_mm, 0),
    kg: formatNumber(m.weight_kg, 0),
    kn: formatNumber(m.required_clamp_force_kN, 0),
    resin: m.resin || "—",
    cavities: formatNumber(m.cavities, 0),
  });
}

function row(a) {
  const proposed = a.status === "proposed";
  return h(
    "tr",
    { id: `assignment-${a.id}`, tabindex: "-1", dataset: { assignmentId: a.id, status: a.status } },
    h("th", { scope: "row" }, `#${a.id}`),
    h("td", {}, a.requester_firm_name || a.requester_firm_id, h("span", { class: "sub" }, a.request_id)),
    h("td", {}, a.job_id, h("span", { class: "sub" }, a.part_id)),
    h("td", { class: "mold" }, a.mold ? a.mold.id : "—", h("span", { class: "sub" }, moldText(a.mold))),
    h("td", {}, a.machine_id || "—", h("span", { class: "sub" }, a.site_id)),
    h("td", { class: "num" }, formatHours(a.hours)),
    h("td", { class: "num" }, formatNumber(a.parts, 0)),
    h("td", { class: "num" }, t("unit.km", { n: formatNumber(a.transport_km, 0) })),
    h("td", {}, a.window_start ? formatDateRange(a.window_start, dayBefore(a.window_end)) : "—"),
    h("td", {}, a.due_date ? formatDate(a.due_date) : "—"),
    h("td", { class: "status" }, h("span", { class: `badge status-${a.status}` }, assignmentStatusLabel(a.status))),
    h(
      "td",
      { class: "actions" },
      proposed
        ? [
            h(
              "button",
              { type: "button", class: "accept", "aria-label": t("assignments.accept_label", { id: a.id }), onclick: () => accept(a) },
              t("assignments.accept"),
            ),
            h(
              "button",
              { type: "button", class: "decline button-danger", "aria-label": t("assignments.decline_label", { id: a.id }), onclick: () => askDecline(a) },
              t("assignments.decline"),
            ),
          ]
        : null,
    ),
  );
}

function render() {
  if (!rows.length) {
    replace(byId("assignment-list"), h("p", { class: "empty", id: "assignments-empty" }, t("assignments.none")));
    return;
  }
  replace(
    byId("assignment-list"),
    table({
      cls: "data assignments",
      caption: t("assignments.caption"),
      head: [
        t("assignments.col_id"),
        t("assignments.col_requester"),
        t("assignments.col_job"),
        t("assignments.col_mold"),
        t("assignments.col_machine"),
        h("th", { scope: "col", class: "num" }, t("assignments.col_hours")),
        h("th", { scope: "col", class: "num" }, t("assignments.col_parts")),
        h("th", { scope: "col", class: "num" }, t("assignments.col_transport")),
        t("assignments.col_window"),
        t("assignments.col_due"),
        t("assignments.col_status"),
        h("th", { scope: "col" }, t("common.actions")),
      ],
      rows: rows.map(row),
    }),
  );
}

/** Put the answered assignment `updated` in place of its row (no reload). */
function update(previous, updated) {
  const merged = { ...previous, ...(updated && typeof updated === "object" && "status" in updated ? updated : {}) };
  rows = rows.map((r) => (r.id === previous.id ? merged : r));
  const old = document.getElementById(`assignment-${previous.id}`);
  const fresh = row(merged);
  if (old) old.replaceWith(fresh);
  else render();
  fresh.focus();
  return merged;
}

async function accept(a) {
  const path = firmPath(`/assignments/${encodeURIComponent(a.id)}/accept`);
  const res = await run(() => api(path, { method: "POST", body: {} }));
  if (res !== undefined) {
    const merged = update(a, res && res.status ? res : { status: "accepted" });
    setStatus(() => t("assignments.accepted_msg", { id: merged.id }));
  }
}

function askDecline(a) {
  declining = a;
  replace(
    byId("decline-summary"),
    t("decline.summary", { id: a.id, firm: a.requester_firm_name || a.requester_firm_id, job: a.job_id }),
  );
  byId("decline-note").value = "";
  const dialog = byId("decline-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  byId("decline-note").focus();
}

async function decline(a, note) {
  const path = firmPath(`/assignments/${encodeURIComponent(a.id)}/decline`);
  const res = await run(() => api(path, { method: "POST", body: note ? { note } : {} }));
  if (res !== undefined) {
    const merged = update(a, res && res.status ? res : { status: "declined" });
    setStatus(() => t("assignments.declined_msg", { id: merged.id }));
  }
}
