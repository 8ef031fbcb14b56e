// View: spreadsheets in. The registry from CSV (one table per file) or XLSX (one sheet
// per table): POST /firms/{firm}/registry/{table}.csv or /registry.xlsx; the production
// plan from CSV or XLSX: POST /firms/{firm}/bookings.csv|.xlsx[?replace=true]. A rejected file lists
// every bad cell (where + what) and nothing is written.

import { ApiError, api } from "../api.js";
import { byId, h, replace } from "../dom.js";
import { problemTable } from "../forms.js";
import { formatNumber, t } from "../i18n.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";

const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

// what each result area shows, kept to re-render it after a language switch
const shown = { registry: null, bookings: null };

async function call(path, options) {
  let failure = null;
  const result = await run(async () => {
    try {
      return await api(path, options);
    } catch (err) {
      failure = err;
      throw err;
    }
  });
  return failure ? { failure } : { result };
}

function render(area) {
  const host = byId(`${area}-upload-result`);
  const s = shown[area];
  if (!s) {
    replace(host);
    return;
  }
  if (s.failure) {
    const f = s.failure;
    const detail = f instanceof ApiError && Array.isArray(f.detail) ? f.detail : [];
    replace(
      host,
      h("p", { class: "upload-failed" }, t("upload.rejected", { file: s.file, n: formatNumber(detail.length || 1, 0) })),
      detail.length ? problemTable(detail, t("upload.problems_caption", { file: s.file })) : h("p", {}, f.message),
    );
    return;
  }
  if (area === "registry") {
    const parts = Object.entries(s.result.written || {}).map(([table, n]) => t("upload.table_rows", { table, n: formatNumber(n, 0) }));
    replace(host, h("p", { class: "upload-ok" }, t("upload.registry_done", { file: s.file, rows: parts.join(", ") })));
  } else {
    replace(host, h("p", { class: "upload-ok" }, t("upload.bookings_done", { file: s.file, n: formatNumber(s.result.length, 0) })));
  }
}

async function importRegistry(ev) {
  ev.preventDefault();
  const file = byId("registry-file").files[0];
  if (!file) {
    shown.registry = { file: "—", failure: new ApiError(0, "missing_file", t("upload.choose_file")) };
    render("registry");
    byId("registry-file").focus();
    return;
  }
  const xlsx = /\.xlsx$/i.test(file.name);
  const table = byId("registry-table").value;
  const path = xlsx ? firmPath("/registry.xlsx") : firmPath(`/registry/${encodeURIComponent(table)}.csv`);
  const body = new Blob([file], { type: xlsx ? XLSX : "text/csv" });
  shown.registry = { file: file.name, ...(await call(path, { method: "POST", body })) };
  render("registry");
  if (shown.registry.result) setStatus(() => t("upload.registry_status", { file: file.name }));
}

async function uploadBookings(ev) {
  ev.preventDefault();
  const file = byId("bookings-file").files[0];
  if (!file) {
    shown.bookings = { file: "—", failure: new ApiError(0, "missing_file", t("upload.choose_file")) };
    render("bookings");
    byId("bookings-file").focus();
    return;
  }
  const query = { replace: byId("bookings-replace").checked ? "true" : "" };
  const xlsx = /\.xlsx$/i.test(file.name);
  const body = new Blob([file], { type: xlsx ? XLSX : "text/csv" });
  const path = firmPath(xlsx ? "/bookings.xlsx" : "/bookings.csv");
  shown.bookings = { file: file.name, ...(await call(path, { method: "POST", query, body })) };
  render("bookings");
  if (shown.bookings.result) setStatus(() => t("upload.bookings_status", { file: file.name }));
}

function syncTable() {
  const file = byId("registry-file").files[0];
  byId("registry-table").disabled = Boolean(file && /\.xlsx$/i.test(file.name));
}

/** Wire the two upload forms. */
export function init() {
  byId("registry-upload-form").addEventListener("submit", importRegistry);
  byId("bookings-upload-form").addEventListener("submit", uploadBookings);
  byId("registry-file").addEventListener("change", syncTable);
}

export function enter() {}

export function reset() {
  shown.registry = null;
  shown.bookings = null;
  for (const id of ["registry-upload-form", "bookings-upload-form"]) byId(id).reset();
  syncTable();
  render("registry");
  render("bookings");
}

export function rerender() {
  render("registry");
  render("bookings");
}
