// View: the signed-in firm's machines (list, add, edit). GET/POST /firms/{firm}/machines;
// edits via PUT /firms/{firm}/registry. The form shows the attributes of the chosen
// process only (injection molding, press, machining); the others are not sent. Below:
// operators' good/reject part counts per machine (views/oee_counts.js).

import { api } from "../api.js";
import { editor } from "../crud.js";
import { input } from "../forms.js";
import { formatNumber, key, t } from "../i18n.js";
import { processLabel } from "../labels.js";
import { firmPath } from "../state.js";
import * as counts from "./oee_counts.js";

const IMM = "injection_molding";
const num = (name, label, group, extra = {}) => ({ name, label, type: "number", min: 0, group, ...extra });

const SPECS = [
  { name: "id", label: key("reg.f.id"), type: "text", required: true, hint: key("reg.id_hint") },
  { name: "name", label: key("reg.f.name"), type: "text", required: true },
  { name: "line_id", label: key("reg.f.line_id"), type: "select", options: [] },
  {
    name: "process",
    label: key("reg.f.process"),
    type: "select",
    options: [
      [IMM, key("process.injection_molding")],
      ["press", key("process.press")],
      ["machining", key("process.machining")],
    ],
  },
  num("clamp_force_kN", key("reg.f.clamp_force_kN"), IMM),
  num("tie_bar_h_mm", key("reg.f.tie_bar_h_mm"), IMM),
  num("tie_bar_v_mm", key("reg.f.tie_bar_v_mm"), IMM),
  num("min_mold_height_mm", key("reg.f.min_mold_height_mm"), IMM),
  num("max_mold_height_mm", key("reg.f.max_mold_height_mm"), IMM),
  num("shot_capacity_g", key("reg.f.shot_capacity_g"), IMM),
  num("locating_ring_mm", key("reg.f.locating_ring_mm"), IMM),
  num("tonnage_kN", key("reg.f.tonnage_kN"), "press"),
  num("bed_width_mm", key("reg.f.bed_width_mm"), "press"),
  num("bed_depth_mm", key("reg.f.bed_depth_mm"), "press"),
  { name: "axes", label: key("reg.f.axes"), type: "integer", min: 2, group: "machining" },
  num("envelope_x_mm", key("reg.f.envelope_x_mm"), "machining"),
  num("envelope_y_mm", key("reg.f.envelope_y_mm"), "machining"),
  num("envelope_z_mm", key("reg.f.envelope_z_mm"), "machining"),
];

function showProcess(form) {
  const process = input(form, "process").value;
  for (const spec of SPECS) {
    if (!spec.group) continue;
    const on = spec.group === process;
    input(form, spec.name).disabled = !on;
    form.querySelector(`.field[data-field="${spec.name}"]`).hidden = !on;
  }
}

function size(m) {
  if (m.process === IMM) return t("reg.machine_imm", { kn: formatNumber(m.clamp_force_kN, 0), h: formatNumber(m.tie_bar_h_mm, 0), v: formatNumber(m.tie_bar_v_mm, 0) });
  if (m.process === "press") return t("reg.machine_press", { kn: formatNumber(m.tonnage_kN, 0) });
  return t("reg.machine_axes", { n: formatNumber(m.axes, 0) });
}

const machines = editor({
  kind: "machines",
  host: "machines-host",
  caption: key("reg.machines_caption"),
  titleNew: key("reg.machine_new"),
  titleEdit: key("reg.machine_edit"),
  specs: SPECS,
  columns: [
    [key("reg.f.id"), (m) => m.id],
    [key("reg.f.name"), (m) => m.name],
    [key("reg.f.line_id"), (m) => m.line_id],
    [key("reg.f.process"), (m) => processLabel(m.process)],
    [key("reg.f.size"), size],
  ],
  choices: async () => {
    const lines = await api(firmPath("/lines"));
    return { line_id: lines.map((l) => [l.id, `${l.id} — ${l.name}`]) };
  },
  onBuilt: (form) => input(form, "process").addEventListener("change", () => showProcess(form)),
  onFill: (form) => showProcess(form),
});

export function init() {}
export const enter = async () => {
  await machines.enter();
  await counts.enter();
};
export const reset = () => {
  machines.reset();
  counts.reset();
};
export const rerender = () => {
  machines.rerender();
  counts.rerender();
};
