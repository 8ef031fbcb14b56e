// View (a): search the spare capacity partner firms share with the signed-in firm.
// GET /api/v1/capacity/search -> one card per partner firm: spare hours per capability
// class and period, and machine rows when the firm shares machine detail.

import { api } from "../api.js";
import { byId, h, replace, table } from "../dom.js";
import {
  addDays,
  dayBefore,
  formatDate,
  formatDateRange,
  formatDay,
  formatHours,
  formatList,
  formatNumber,
  t,
  today,
} from "../i18n.js";
import { classLabel, granularityLabel, regionLabel } from "../labels.js";
import { run } from "../ui.js";

const DEFAULT_DAYS = 28;
let last = null;

function setDefaultDates(form) {
  // the API's "today" is in Japan time, whatever the browser's time zone
  const start = today();
  if (!form.elements.start.value) form.elements.start.value = start;
  if (!form.elements.end.value) form.elements.end.value = addDays(start, DEFAULT_DAYS - 1);
}

/** Wire the search form. */
export function init() {
  const form = byId("search-form");
  setDefaultDates(form);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    search(form);
  });
  form.addEventListener("reset", () => {
    last = null;
    replace(byId("search-results"));
    // the reset itself runs after this handler: refill the dates afterwards
    setTimeout(() => setDefaultDates(form), 0);
  });
}

/** Forget the results (sign-out). */
export function reset() {
  const form = byId("search-form");
  form.reset();
  last = null;
  replace(byId("search-results"));
  setDefaultDates(form);
}

/** Re-render the last results in the current language. */
export function rerender() {
  if (last) render(last);
}

/**
 * The API query of the form: empty fields left out; "To" is the last day shown (the API's
 * `end` is exclusive); a mold thickness asks for machines whose mold-height range holds it.
 */
function queryOf(form) {
  const query = {};
  for (const [name, value] of new FormData(form)) {
    const v = String(value).trim();
    if (!v) continue;
    if (name === "end") query.end = addDays(v, 1);
    else if (name === "mold_thickness_mm") {
      query.min_mold_height_mm = v;
      query.max_mold_height_mm = v;
    } else query[name] = v;
  }
  return query;
}

async function search(form) {
  const query = queryOf(form);
  const data = await run(() => api("/capacity/search", { query }));
  if (data) {
    last = data;
    render(data);
  }
}

function render(data) {
  const results = data.results || [];
  const out = [
    h(
      "p",
      { class: "summary", id: "search-summary" },
      t("search.summary", {
        firms: formatNumber(results.length, 0),
        hours: formatHours(data.total_spare_h),
        period: formatDateRange(data.start, dayBefore(data.end)),
      }),
    ),
  ];
  if (!results.length) out.push(h("p", { class: "empty", id: "search-empty" }, t("search.no_results")));
  for (const firm of results) out.push(firmCard(firm));
  replace(byId("search-results"), out);
}

function firmCard(firm) {
  const titleId = `firm-${firm.firm_id}-title`;
  return h(
    "article",
    { class: "card firm-result", dataset: { firmId: firm.firm_id }, "aria-labelledby": titleId },
    h("h2", { id: titleId }, firm.firm_name),
    h(
      "p",
      { class: "meta" },
      h("span", {}, t("search.firm_region", { region: regionLabel(firm.region) })),
      h("span", {}, t("search.firm_granularity", { granularity: granularityLabel(firm.granularity) })),
      h("strong", { class: "firm-total" }, t("search.firm_total", { hours: formatHours(firm.spare_h_total) })),
    ),
    classesTable(firm),
    firm.machine_detail && (firm.machines || []).length
      ? machinesTable(firm)
      : h("p", { class: "hint" }, t("search.no_machine_detail")),
  );
}

function periodHeader(firm, period) {
  if (firm.granularity === "week") {
    return t("search.week_of", { date: formatDate(period, { month: "numeric", day: "numeric" }) });
  }
  return formatDay(period);
}

function classesTable(firm) {
  const classes = firm.classes || [];
  const periods = [...new Set(classes.flatMap((c) => (c.points || []).map((p) => p.period_start)))].sort();
  const perPeriod = Object.fromEntries(periods.map((p) => [p, 0]));
  const rows = classes.map((c) => {
    const byPeriod = Object.fromEntries((c.points || []).map((p) => [p.period_start, p.spare_h]));
    for (const p of periods) perPeriod[p] += Number(byPeriod[p] || 0);
    return h(
      "tr",
      { dataset: { class: c.capability_class } },
      h("th", { scope: "row", title: c.capability_class }, classLabel(c.capability_class)),
      h("td", { class: "num" }, formatNumber(c.machines, 0)),
      periods.map((p) => h("td", { class: "num" }, p in byPeriod ? formatNumber(byPeriod[p], 1) : "—")),
      h("td", { class: "num total" }, formatNumber(c.spare_h_total, 1)),
    );
  });
  const wrapper = table({
    cls: "data classes",
    caption: t("search.classes_caption"),
    head: [
      t("search.col_class"),
      t("search.col_machines"),
      ...periods.map((p) => h("th", { scope: "col", class: "num", title: formatDate(p) }, periodHeader(firm, p))),
      h("th", { scope: "col", class: "num" }, t("search.col_total_h")),
    ],
    rows,
  });
  wrapper.querySelector("table").append(
    h(
      "tfoot",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "row" }, t("search.total_row")),
        h("td", { class: "num" }, formatNumber(classes.reduce((s, c) => s + Number(c.machines || 0), 0), 0)),
        periods.map((p) => h("td", { class: "num" }, formatNumber(perPeriod[p], 1))),
        h("td", { class: "num total" }, formatNumber(firm.spare_h_total, 1)),
      ),
    ),
  );
  return wrapper;
}

function mm(v) {
  return v === null || v === undefined ? "—" : formatNumber(v, 0);
}

function machinesTable(firm) {
  const rows = firm.machines.map((m) =>
    h(
      "tr",
      { dataset: { machineId: m.machine_id } },
      h("th", { scope: "row" }, m.name || m.machine_id, m.name && m.name !== m.machine_id ? h("span", { class: "sub" }, m.machine_id) : null),
      h("td", { class: "nowrap" }, classLabel(m.capability_class)),
      h("td", { class: "num" }, mm(m.clamp_force_kN)),
      h("td", { class: "num" }, `${mm(m.tie_bar_h_mm)} × ${mm(m.tie_bar_v_mm)}`),
      h("td", { class: "num" }, `${mm(m.min_mold_height_mm)}–${mm(m.max_mold_height_mm)}`),
      h("td", { class: "num" }, mm(m.shot_capacity_g)),
      h("td", { class: "num" }, mm(m.locating_ring_mm)),
      h("td", {}, formatList(m.resins)),
      h("td", {}, formatList(m.certifications)),
      h("td", { class: "num total" }, formatNumber(m.spare_h_total, 1)),
    ),
  );
  return table({
    cls: "data machines",
    caption: t("search.machines_caption"),
    head: [
      t("search.col_machine"),
      t("search.col_class"),
      h("th", { scope: "col", class: "num" }, t("search.col_clamp_force")),
      h("th", { scope: "col", class: "num" }, t("search.col_tie_bars")),
      h("th", { scope: "col", class: "num" }, t("search.col_mold_height")),
      h("th", { scope: "col", class: "num" }, t("search.col_shot")),
      h("th", { scope: "col", class: "num" }, t("search.col_locating_ring")),
      t("search.col_resins"),
      t("search.col_certifications"),
      h("th", { scope: "col", class: "num" }, t("search.col_spare_h")),
    ],
    rows,
  });
}
