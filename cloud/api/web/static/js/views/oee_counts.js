// Part of the machines view: good and reject part counts an operator records for one
// machine over [start, end) (GET/POST /firms/{firm}/machines/{m}/operator-counts, PUT and
// DELETE .../{id} to correct or remove one). OEE quality of that interval then uses them
// (basis "operator" on the plant-overview dashboard). An overlapping entry is refused
// (409, the message names it): correct that entry instead. Times are entered and shown
// in Japan time (Asia/Tokyo).

import { api } from "../api.js";
import { byId, h, replace, table } from "../dom.js";
import { clearErrors, errorBox, submit as submitForm } from "../forms.js";
import { formatNumber, t } from "../i18n.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";
import { cardify } from "./cards.js";
import { formatJapanTime, fromJapanTime } from "./disruptions.js";

const JST_MS = 9 * 3600 * 1000; // Japan has no daylight saving time
const SHOWN = 50;

let machines = null; // [{id, name}]
let machineId = null;
let entries = null;
let editing = null; // the entry being corrected, or null

/** An API time (UTC) as a datetime-local value in Japan time ("2026-11-23T08:00"). */
function toJapanLocal(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : new Date(d.getTime() + JST_MS).toISOString().slice(0, 16);
}

const path = (suffix = "") => firmPath(`/machines/${encodeURIComponent(machineId)}/operator-counts${suffix}`);

/** Load the machines and the chosen machine's entries, and show the form. */
export async function enter() {
  const data = await run(() => api(firmPath("/machines")));
  if (data === undefined) return;
  machines = (data || []).map((m) => ({ id: m.id, name: m.name }));
  if (!machines.some((m) => m.id === machineId)) machineId = machines.length ? machines[0].id : null;
  editing = null;
  renderForm();
  await load();
}

/** Forget everything shown (sign-out). */
export function reset() {
  machines = null;
  machineId = null;
  entries = null;
  editing = null;
  replace(byId("oee-counts-host"));
}

/** Re-render in the current language (typed values are kept). */
export function rerender() {
  if (!machines) return;
  const kept = readForm();
  renderForm();
  writeForm(kept);
  renderList();
}

async function load() {
  if (!machineId) {
    entries = [];
    renderList();
    return;
  }
  const data = await run(() => api(path(), { query: { limit: SHOWN } }));
  if (data !== undefined) entries = data || [];
  renderList();
}

function field(name, label, control, hint = null) {
  const id = `oc-${name}`;
  control.id = id;
  control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: id }, label),
    control,
    hint ? h("span", { class: "sub", id: `${id}-hint` }, hint) : null,
    h("span", { class: "field-error", id: `${id}-error` }),
  );
}

function count(name) {
  return h("input", { name, type: "number", min: "0", step: "1", inputmode: "numeric", required: true, autocomplete: "off" });
}

function renderForm() {
  if (!machines) return;
  const title = editing ? t("counts.edit", { id: editing.id }) : t("counts.new");
  const form = h(
    "form",
    { id: "oc-form", class: "card form-grid", "aria-labelledby": "oc-form-title", onsubmit: save, novalidate: true },
    h("h2", { id: "oc-form-title", tabindex: "-1" }, title),
    h("p", { class: "hint wide" }, t("counts.intro")),
    field(
      "machine",
      t("counts.machine"),
      h(
        "select",
        { name: "machine", onchange: chooseMachine, disabled: Boolean(editing) },
        machines.map((m) => h("option", { value: m.id, selected: m.id === machineId }, m.name && m.name !== m.id ? `${m.name} (${m.id})` : m.id)),
      ),
    ),
    field("start", t("counts.start"), h("input", { name: "start", type: "datetime-local", required: true }), t("counts.time_hint")),
    field("end", t("counts.end"), h("input", { name: "end", type: "datetime-local", required: true }), t("counts.end_hint")),
    field("good", t("counts.good"), count("good")),
    field("reject", t("counts.reject"), count("reject")),
    field(
      "reject_reason",
      t("counts.reason"),
      h("input", { name: "reject_reason", type: "text", maxlength: "32", autocomplete: "off", spellcheck: "false", autocapitalize: "off" }),
      t("counts.reason_hint"),
    ),
    field("note", t("counts.note"), h("input", { name: "note", type: "text", maxlength: "500", autocomplete: "off" })),
    errorBox(),
    h(
      "div",
      { class: "form-actions wide" },
      h("button", { type: "submit", id: "oc-save" }, t("counts.save")),
      editing ? h("button", { type: "button", id: "oc-cancel", class: "button-secondary", onclick: cancelEdit }, t("common.cancel")) : null,
    ),
  );
  replace(byId("oee-counts-host"), form, h("div", { id: "oc-list" }));
  if (editing) writeForm({ ...editing, start: toJapanLocal(editing.start), end: toJapanLocal(editing.end) });
}

function readForm() {
  const form = document.getElementById("oc-form");
  if (!form) return null;
  const out = {};
  for (const name of ["start", "end", "good", "reject", "reject_reason", "note"]) out[name] = form.elements.namedItem(name).value;
  return out;
}

function writeForm(v) {
  const form = document.getElementById("oc-form");
  if (!form || !v) return;
  for (const name of ["start", "end", "good", "reject", "reject_reason", "note"]) {
    const value = v[name];
    form.elements.namedItem(name).value = value === null || value === undefined ? "" : String(value);
  }
}

function body() {
  const v = readForm();
  const out = { start: fromJapanTime(v.start), end: fromJapanTime(v.end), note: v.note.trim() };
  // Numbers as typed ("" stays a string, so the API names the empty field).
  for (const name of ["good", "reject"]) out[name] = v[name] === "" ? "" : Number(v[name]);
  const reason = v.reject_reason.trim();
  out.reject_reason = reason === "" ? null : reason;
  return out;
}

function quality(e) {
  const total = e.good + e.reject;
  return total > 0 ? `${formatNumber((100 * e.good) / total, 1)} %` : "—";
}

function renderList() {
  const host = document.getElementById("oc-list");
  if (!host) return;
  const title = h("h2", { id: "oc-list-title" }, t("counts.list", { machine: machineId || "—" }));
  if (!entries || !entries.length) {
    replace(host, title, h("p", { class: "empty", id: "oc-empty" }, t("counts.none")));
    return;
  }
  const rows = entries.map((e) =>
    h(
      "tr",
      { dataset: { id: e.id } },
      h("td", {}, formatJapanTime(e.start)),
      h("td", {}, formatJapanTime(e.end)),
      h("td", { class: "num" }, formatNumber(e.good, 0)),
      h("td", { class: "num" }, formatNumber(e.reject, 0)),
      h("td", { class: "num" }, quality(e)),
      h("td", {}, [e.reject_reason, e.note].filter(Boolean).join(" — ") || "—"),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", class: "edit", onclick: () => startEdit(e), "aria-label": t("counts.edit", { id: e.id }) }, t("counts.correct")),
        h("button", { type: "button", class: "delete button-secondary", onclick: () => remove(e), "aria-label": t("counts.delete_label", { id: e.id }) }, t("counts.delete")),
      ),
    ),
  );
  replace(
    host,
    title,
    cardify(table({
      cls: "data operator-counts",
      caption: t("counts.caption"),
      head: [t("counts.start"), t("counts.end"), t("counts.good"), t("counts.reject"), t("counts.quality"), t("counts.reason_note"), t("common.actions")],
      rows,
    })),
  );
}

async function chooseMachine(ev) {
  machineId = ev.target.value;
  await load();
}

function startEdit(e) {
  editing = e;
  renderForm();
  renderList();
  byId("oc-form-title").focus();
}

function cancelEdit() {
  editing = null;
  renderForm();
  renderList();
}

async function remove(e) {
  if (!window.confirm(t("counts.delete_confirm", { id: e.id }))) return;
  const done = await run(() => api(path(`/${e.id}`), { method: "DELETE" }));
  if (done === undefined) return;
  if (editing && editing.id === e.id) editing = null;
  setStatus(() => t("counts.deleted", { id: e.id }));
  renderForm();
  await load();
}

async function save(ev) {
  ev.preventDefault();
  const form = byId("oc-form");
  const button = byId("oc-save");
  button.disabled = true;
  try {
    clearErrors(form);
    const options = { method: editing ? "PUT" : "POST", body: body() };
    const saved = await submitForm(form, path(editing ? `/${editing.id}` : ""), options);
    if (saved === undefined) return;
    editing = null;
    const id = saved.entry.id;
    const said = {
      written: () => t("counts.saved_oee", { id }),
      pending: () => t("counts.saved_pending", { id }),
    }[saved.oee];
    setStatus(said || (() => t("counts.saved", { id })));
    renderForm();
    await load();
    byId("oc-form-title").focus();
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}
