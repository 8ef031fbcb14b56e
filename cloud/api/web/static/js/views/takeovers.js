// View (b): the signed-in firm's takeover requests (it was disrupted) and their plans.
// GET /firms/{firm}/takeovers (list) and /firms/{firm}/takeovers/{id} (plan detail:
// jobs with needed / covered / accepted parts and unmet volume with reasons, and the
// assignments to partner machines with the partners' answers). A new request is made in
// ./takeover_form.js; an open plan is re-planned with POST .../{id}/replan. Unmet volume
// is rendered by ./unmet.js (every field the API gives, in words). An open drill's plan
// has "Make it a real request" (POST .../{id}/promote, after a confirm dialog): the answer,
// a new real request whose proposals are offered to the partners, is then shown.

import { api } from "../api.js";
import { byId, h, replace, table } from "../dom.js";
import { dayBefore, formatDateRange, formatHours, formatNumber, formatParts, language, t } from "../i18n.js";
import { assignmentStatusLabel, reasonLabel, takeoverStatusLabel } from "../labels.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";
import { cardify } from "./cards.js";
import * as form from "./takeover_form.js";

let list = null;
let detail = null;
let promoting = null; // the drill whose promotion the confirm dialog asks about

function items(data) {
  if (Array.isArray(data)) return data;
  return (data && (data.items || data.results || data.takeovers)) || [];
}

/** Wire the "new request" form: a created request's plan is shown at once. */
export function init() {
  form.init(showNew);
  const dialog = byId("promote-dialog");
  dialog.addEventListener("close", () => {
    const drill = promoting;
    promoting = null;
    if (drill && dialog.returnValue === "confirm") promote(drill);
  });
}

// Show a request the page just made (created or promoted) from the POST's answer itself:
// a read right after it could precede its commit.
function showNew(plan) {
  window.history.replaceState(null, "", `#takeovers/${encodeURIComponent(plan.id)}`);
  list = [plan, ...(list || []).filter((x) => x.id !== plan.id)];
  renderList();
  detail = plan;
  renderDetail();
  byId("takeover-plan").focus();
}

/** Show the list, and the plan of request `id` if given (route #takeovers/<id>). */
export async function enter(id) {
  const data = await run(() => api(firmPath("/takeovers")));
  if (data !== undefined) {
    list = items(data);
    renderList();
  }
  if (id) {
    const plan = await run(() => api(firmPath(`/takeovers/${encodeURIComponent(id)}`)));
    detail = plan || null;
  } else {
    detail = null;
  }
  renderDetail();
  if (detail) byId("takeover-plan").focus();
  else await form.openPreset();
}

/** Forget everything shown (sign-out). */
export function reset() {
  list = null;
  detail = null;
  promoting = null;
  const dialog = byId("promote-dialog");
  if (dialog.open) dialog.close("cancel");
  form.reset();
  replace(byId("takeover-list"));
  replace(byId("takeover-detail"));
}

/** Re-render in the current language. */
export function rerender() {
  if (list) renderList();
  renderDetail();
  form.rerender();
}

function windowText(r) {
  // window_end is exclusive: show the last day of the window
  return formatDateRange(r.window_start, dayBefore(r.window_end));
}

function coverage(r) {
  const jobs = r.jobs || [];
  const s = r.summary || {};
  const needed = jobs.length ? jobs.reduce((a, j) => a + Number(j.needed_parts || 0), 0) : s.needed_parts;
  const covered = jobs.length ? jobs.reduce((a, j) => a + Number(j.covered_parts || 0), 0) : s.covered_parts;
  const accepted = jobs.length ? jobs.reduce((a, j) => a + Number(j.accepted_parts || 0), 0) : s.accepted_parts;
  return { needed, covered, accepted };
}

function coverageText(r) {
  const c = coverage(r);
  if (c.needed === undefined || c.needed === null) return "—";
  const pct = c.needed > 0 ? formatNumber((100 * (c.covered || 0)) / c.needed, 0) : "100";
  return t("takeovers.coverage", { covered: formatParts(c.covered || 0), needed: formatParts(c.needed), pct });
}

function renderList() {
  if (!list.length) {
    replace(byId("takeover-list"), h("p", { class: "empty", id: "takeovers-empty" }, t("takeovers.none")));
    return;
  }
  const rows = list.map((r) =>
    h(
      "tr",
      { dataset: { requestId: r.id } },
      h("th", { scope: "row" }, r.id),
      h(
        "td",
        {},
        h("span", { class: `badge status-${r.status}` }, takeoverStatusLabel(r.status)),
        r.drill ? h("span", { class: "badge drill" }, t("takeover.drill")) : null,
      ),
      h("td", {}, windowText(r)),
      h("td", {}, r.origin_site_id),
      h("td", { class: "num" }, formatNumber(r.revision, 0)),
      h("td", {}, coverageText(r)),
      h("td", {}, h("a", { href: `#takeovers/${encodeURIComponent(r.id)}`, class: "button-link" }, t("takeovers.open_plan"))),
    ),
  );
  replace(
    byId("takeover-list"),
    cardify(table({
      cls: "data takeovers",
      caption: t("takeovers.list_caption"),
      head: [
        t("takeovers.col_request"),
        t("takeovers.col_status"),
        t("takeovers.col_window"),
        t("takeovers.col_origin"),
        h("th", { scope: "col", class: "num" }, t("takeovers.col_revision")),
        t("takeovers.col_coverage"),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("common.actions"))),
      ],
      rows,
    })),
  );
}

// The API renders each explanation in every language; show the current one.
function localized(text) {
  return (text && (text[language()] || text.en)) || "";
}

// Why volume is unmet, with the numbers: job-level facts, then the nearest candidates.
function explanationBlock(e) {
  if (!e) return null;
  const facts = (e.shortfalls || []).map((s) => h("li", { dataset: { rule: s.rule } }, localized(s.text)));
  const candidates = (e.candidates || []).map((c) =>
    h("li", { dataset: { firmId: c.firm_id, siteId: c.site_id } }, localized(c.text)),
  );
  return h(
    "div",
    { class: "explanation" },
    facts.length ? h("ul", { class: "facts-list" }, facts) : null,
    candidates.length ? h("p", { class: "nearest" }, t("takeover.nearest")) : null,
    candidates.length ? h("ol", { class: "candidates" }, candidates) : null,
  );
}

function unmetList(job) {
  const unmet = job.unmet || [];
  if (!unmet.length) return h("span", { class: "ok" }, t("takeover.fully_covered"));
  return h(
    "ul",
    { class: "unmet" },
    unmet.map((u) =>
      h(
        "li",
        { dataset: { reason: u.reason } },
        t("takeover.unmet_item", { parts: formatParts(u.parts), reason: reasonLabel(u.reason) }),
        explanationBlock(u.explanation),
      ),
    ),
  );
}

function jobsTable(r) {
  const rows = (r.jobs || []).map((j) =>
    h(
      "tr",
      { dataset: { jobId: j.job_id } },
      h("th", { scope: "row" }, j.job_id),
      h("td", {}, j.part_id),
      h("td", {}, j.mold_id),
      h("td", { class: "num" }, formatNumber(j.needed_parts, 0)),
      h("td", { class: "num" }, formatNumber(j.covered_parts, 0)),
      h("td", { class: "num" }, formatNumber(j.accepted_parts, 0)),
      h("td", { class: "unmet-cell" }, unmetList(j)),
    ),
  );
  return cardify(table({
    cls: "data jobs",
    caption: t("takeover.jobs_caption"),
    head: [
      t("takeover.col_job"),
      t("takeover.col_part"),
      t("takeover.col_mold"),
      h("th", { scope: "col", class: "num" }, t("takeover.col_needed")),
      h("th", { scope: "col", class: "num" }, t("takeover.col_covered")),
      h("th", { scope: "col", class: "num" }, t("takeover.col_accepted")),
      t("takeover.col_unmet"),
    ],
    rows,
  }));
}

function assignmentsTable(r) {
  const assignments = r.assignments || [];
  if (!assignments.length) return h("p", { class: "empty" }, t("takeover.no_assignments"));
  const rows = assignments.map((a) =>
    h(
      "tr",
      { dataset: { assignmentId: a.id, status: a.status } },
      h("th", { scope: "row" }, `#${a.id}`),
      h("td", {}, a.job_id),
      h("td", {}, a.partner_firm_name || a.partner_firm_id),
      h("td", {}, a.site_id),
      h("td", {}, a.machine_id || t("takeover.machine_hidden")),
      h("td", { class: "num" }, formatHours(a.hours)),
      h("td", { class: "num" }, formatNumber(a.parts, 0)),
      h("td", { class: "num" }, t("unit.km", { n: formatNumber(a.transport_km, 0) })),
      h("td", { class: "status" }, h("span", { class: `badge status-${a.status}` }, assignmentStatusLabel(a.status))),
      h("td", { class: "num" }, formatNumber(a.revision, 0)),
    ),
  );
  return cardify(table({
    cls: "data plan-assignments",
    caption: t("takeover.assignments_caption"),
    head: [
      t("takeover.col_assignment"),
      t("takeover.col_job"),
      t("takeover.col_partner"),
      t("takeover.col_site"),
      t("takeover.col_machine"),
      h("th", { scope: "col", class: "num" }, t("takeover.col_hours")),
      h("th", { scope: "col", class: "num" }, t("takeover.col_parts")),
      h("th", { scope: "col", class: "num" }, t("takeover.col_transport")),
      t("takeover.col_status"),
      h("th", { scope: "col", class: "num" }, t("takeovers.col_revision")),
    ],
    rows,
  }));
}

function renderDetail() {
  if (!detail) {
    replace(byId("takeover-detail"));
    return;
  }
  const r = detail;
  const c = coverage(r);
  const facts = [
    [t("takeovers.col_status"), takeoverStatusLabel(r.status) + (r.drill ? ` · ${t("takeover.drill")}` : "")],
    [t("takeovers.col_window"), windowText(r)],
    [t("takeovers.col_origin"), r.origin_site_id],
    [t("takeover.disruption"), r.disruption_id ?? "—"],
    [t("takeovers.col_revision"), formatNumber(r.revision, 0)],
    ...(r.promoted_to ? [[t("takeover.promoted_to"), r.promoted_to]] : []),
    [t("takeover.col_needed"), formatParts(c.needed)],
    [t("takeover.col_covered"), formatParts(c.covered)],
    [t("takeover.col_accepted"), formatParts(c.accepted)],
  ];
  replace(
    byId("takeover-detail"),
    h(
      "section",
      { class: "card plan", id: "takeover-plan", tabindex: "-1", dataset: { requestId: r.id, revision: r.revision }, "aria-labelledby": "plan-title" },
      h("h2", { id: "plan-title" }, t("takeover.title", { id: r.id })),
      // a drill (rehearsal) plan, once the API marks one: partners are not contacted
      r.drill === true ? h("p", { class: "badge status-drill", id: "plan-drill" }, t("takeover.drill_badge")) : null,
      h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v))))),
      r.status === "open"
        ? h(
            "div",
            { class: "toolbar" },
            h("button", { type: "button", id: "plan-replan", onclick: () => replanDetail(r) }, t("takeover.replan")),
            h("span", { class: "hint" }, t("takeover.replan_hint")),
          )
        : null,
      r.drill === true && r.status === "open" && !r.promoted_to
        ? h(
            "div",
            { class: "toolbar" },
            h("button", { type: "button", id: "plan-promote", class: "button-danger", onclick: () => askPromote(r) }, t("takeover.promote")),
            h("span", { class: "hint" }, t("takeover.promote_hint")),
          )
        : null,
      h("h3", {}, t("takeover.jobs")),
      jobsTable(r),
      h("h3", {}, t("takeover.assignments")),
      assignmentsTable(r),
    ),
  );
}

async function replanDetail(r) {
  const path = firmPath(`/takeovers/${encodeURIComponent(r.id)}/replan`);
  const plan = await run(() => api(path, { method: "POST", body: {} }));
  if (plan === undefined) return;
  detail = plan;
  if (list) {
    list = list.map((x) => (x.id === plan.id ? { ...x, revision: plan.revision, summary: plan.summary, status: plan.status } : x));
    renderList();
  }
  renderDetail();
  byId("takeover-plan").focus();
  setStatus(() => t("takeover.replanned_msg", { id: plan.id, revision: plan.revision }));
}

function askPromote(r) {
  promoting = r;
  replace(byId("promote-summary"), t("promote.summary", { id: r.id, window: windowText(r), jobs: formatNumber((r.jobs || []).length, 0) }));
  byId("promote-dialog").showModal();
  byId("promote-cancel").focus();
}

async function promote(drill) {
  const path = firmPath(`/takeovers/${encodeURIComponent(drill.id)}/promote`);
  const plan = await run(() => api(path, { method: "POST", body: {} }));
  if (plan === undefined) return;
  if (list) list = list.map((x) => (x.id === drill.id ? { ...x, status: "closed", promoted_to: plan.id } : x));
  showNew(plan);
  setStatus(() => t("takeover.promoted_msg", { drill: drill.id, id: plan.id }));
}
