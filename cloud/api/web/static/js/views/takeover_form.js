// The "new takeover request" form of the takeovers view: origin site (or a confirmed
// disruption), the window (first and last day, inclusive; the API's window_end is the day
// after), the jobs (job id, part, mold of the firm, weekly volume, optional due date) and
// whether it is a disaster drill ("drill": true: planned with every reason, but partners
// are not contacted and nothing is booked). POST /firms/{firm}/takeovers plans it at once;
// onCreated(plan) then shows the plan.

import { api } from "../api.js";
import { byId, h, replace } from "../dom.js";
import { addDays, t } from "../i18n.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";

const MAX_JOBS = 500; // the API's limit

let molds = null;
let sites = null;
let disruptions = null;
let jobCount = 0;
let created = () => {};
let preset = null; // a confirmed disruption's id to start the next form from

/** Open the form with disruption `id` chosen the next time the takeovers view shows. */
export function presetDisruption(id) {
  preset = id;
}

/** Open the form if a disruption was preset (called when the takeovers view shows). */
export async function openPreset() {
  if (preset === null) return;
  disruptions = null; // the preset one was just confirmed or declared: reload the choices
  await open();
}

/** Wire the "new request" button; `onCreated(plan)` is called after a successful POST. */
export function init(onCreated) {
  created = onCreated;
  byId("takeover-new").addEventListener("click", open);
}

/** Forget the form and the loaded choices (sign-out). */
export function reset() {
  preset = null;
  molds = null;
  sites = null;
  disruptions = null;
  replace(byId("takeover-form-slot"));
}

/** Re-render the (empty) form in the current language, if it is open. */
export function rerender() {
  if (document.getElementById("takeover-form")) render();
}

async function open() {
  const [m, s, d] = await Promise.all([
    molds ? molds : run(() => api(firmPath("/molds"))),
    sites ? sites : run(() => api(firmPath("/sites"))),
    disruptions ? disruptions : run(() => api(firmPath("/disruptions"), { query: { status: "confirmed" } })),
  ]);
  if (m === undefined || s === undefined) return;
  molds = m || [];
  sites = s || [];
  disruptions = d || [];
  render();
  if (preset !== null) {
    const d = disruptions.find((x) => x.id === preset);
    preset = null;
    if (d) {
      byId("tf-disruption").value = String(d.id);
      byId("tf-origin").value = d.site_id;
    }
  }
  byId("tf-origin").focus();
}

function close() {
  replace(byId("takeover-form-slot"));
  byId("takeover-new").focus();
}

function jobRow(n) {
  const id = (name) => `tf-job-${n}-${name}`;
  return h(
    "fieldset",
    { class: "job-row", dataset: { job: n } },
    h("legend", {}, t("takeover_new.job_legend", { n })),
    h("div", { class: "field" }, h("label", { for: id("id") }, t("takeover.col_job")), h("input", { id: id("id"), name: "job_id", required: true, pattern: "[A-Za-z0-9_.\\-]{1,64}", value: `J${n}` })),
    h("div", { class: "field" }, h("label", { for: id("part") }, t("takeover.col_part")), h("input", { id: id("part"), name: "part_id", required: true, maxlength: "200" })),
    h(
      "div",
      { class: "field" },
      h("label", { for: id("mold") }, t("takeover.col_mold")),
      h("select", { id: id("mold"), name: "mold_id", required: true }, molds.map((m) => h("option", { value: m.id }, m.name && m.name !== m.id ? `${m.id} — ${m.name}` : m.id))),
    ),
    h("div", { class: "field" }, h("label", { for: id("volume") }, t("takeover_new.weekly_volume")), h("input", { id: id("volume"), name: "weekly_volume", type: "number", min: "1", step: "1", required: true, inputmode: "numeric" })),
    h("div", { class: "field" }, h("label", { for: id("due") }, t("takeover_new.due_date")), h("input", { id: id("due"), name: "due_date", type: "date" })),
    h(
      "button",
      { type: "button", class: "button-secondary remove-job", "aria-label": t("takeover_new.remove_job_label", { n }), onclick: (ev) => removeJob(ev.currentTarget) },
      t("takeover_new.remove_job"),
    ),
  );
}

function removeJob(button) {
  const rows = byId("tf-jobs").querySelectorAll("fieldset.job-row");
  if (rows.length > 1) button.closest("fieldset").remove();
}

function addJob() {
  const list = byId("tf-jobs");
  if (list.querySelectorAll("fieldset.job-row").length >= MAX_JOBS) return;
  jobCount += 1;
  const fresh = jobRow(jobCount);
  list.append(fresh);
  fresh.querySelector("input[name=part_id]").focus();
}

function render() {
  jobCount = 1;
  const form = h(
    "form",
    { id: "takeover-form", class: "card form-grid", "aria-labelledby": "takeover-form-title", onsubmit: submit },
    h("h2", { id: "takeover-form-title" }, t("takeover_new.title")),
    h("p", { class: "hint wide" }, t("takeover_new.intro")),
    h(
      "div",
      { class: "field" },
      h("label", { for: "tf-disruption" }, t("takeover_new.disruption")),
      h(
        "select",
        { id: "tf-disruption" },
        h("option", { value: "" }, t("takeover_new.no_disruption")),
        disruptions.map((d) => h("option", { value: String(d.id) }, t("takeover_new.disruption_option", { id: d.id, site: d.site_id }))),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "tf-origin" }, t("takeovers.col_origin")),
      h("select", { id: "tf-origin", required: true }, sites.map((s) => h("option", { value: s.id }, s.id))),
    ),
    h("div", { class: "field" }, h("label", { for: "tf-start" }, t("takeover_new.first_day")), h("input", { id: "tf-start", type: "date", required: true })),
    h("div", { class: "field" }, h("label", { for: "tf-last" }, t("takeover_new.last_day")), h("input", { id: "tf-last", type: "date", required: true })),
    h("div", { class: "field" }, h("label", { for: "tf-id" }, t("takeover_new.request_id")), h("input", { id: "tf-id", pattern: "[A-Za-z0-9_.\\-]{1,64}", spellcheck: "false", autocapitalize: "off" })),
    h("div", { id: "tf-jobs", class: "wide stack" }, jobRow(1)),
    h(
      "div",
      { class: "check wide" },
      h("input", { id: "tf-drill", type: "checkbox", "aria-describedby": "tf-drill-hint" }),
      h("label", { for: "tf-drill" }, t("takeover_new.drill")),
    ),
    h("p", { id: "tf-drill-hint", class: "hint wide" }, t("takeover_new.drill_hint")),
    h(
      "div",
      { class: "form-actions wide" },
      h("button", { type: "button", id: "tf-add-job", class: "button-secondary", onclick: addJob }, t("takeover_new.add_job")),
      h("button", { type: "submit", id: "tf-submit" }, t("takeover_new.submit")),
      h("button", { type: "button", id: "tf-cancel", class: "button-secondary", onclick: close }, t("common.cancel")),
    ),
  );
  replace(byId("takeover-form-slot"), form);
}

function body() {
  const disruption = byId("tf-disruption").value;
  const out = {
    origin_site_id: byId("tf-origin").value,
    window_start: byId("tf-start").value,
    window_end: addDays(byId("tf-last").value, 1), // the API's end is exclusive
    jobs: [],
  };
  if (disruption) out.disruption_id = Number(disruption);
  const id = byId("tf-id").value.trim();
  if (id) out.id = id;
  if (byId("tf-drill").checked) out.drill = true;
  for (const row of byId("tf-jobs").querySelectorAll("fieldset.job-row")) {
    const get = (name) => row.querySelector(`[name=${name}]`).value.trim();
    const job = { job_id: get("job_id"), part_id: get("part_id"), mold_id: get("mold_id"), weekly_volume: Number(get("weekly_volume")) };
    if (get("due_date")) job.due_date = get("due_date");
    out.jobs.push(job);
  }
  return out;
}

async function submit(ev) {
  ev.preventDefault();
  const button = byId("tf-submit");
  button.disabled = true;
  try {
    const plan = await run(() => api(firmPath("/takeovers"), { method: "POST", body: body() }));
    if (plan !== undefined) {
      replace(byId("takeover-form-slot"));
      setStatus(() => t("takeover_new.created_msg", { id: plan.id }));
      await created(plan);
    }
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}
