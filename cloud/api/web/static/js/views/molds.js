// View: the signed-in firm's molds (list, add, edit). GET/POST /firms/{firm}/molds;
// edits via PUT /firms/{firm}/registry.

import { editor } from "../crud.js";
import { formatNumber, key, t } from "../i18n.js";

const molds = editor({
  kind: "molds",
  host: "molds-host",
  caption: key("reg.molds_caption"),
  titleNew: key("reg.mold_new"),
  titleEdit: key("reg.mold_edit"),
  specs: [
    { name: "id", label: key("reg.f.id"), type: "text", required: true, hint: key("reg.id_hint") },
    { name: "name", label: key("reg.f.name"), type: "text", required: true },
    { name: "width_mm", label: key("reg.f.width_mm"), type: "number", min: 0, required: true },
    { name: "height_mm", label: key("reg.f.height_mm"), type: "number", min: 0, required: true },
    { name: "thickness_mm", label: key("reg.f.thickness_mm"), type: "number", min: 0, required: true },
    { name: "weight_kg", label: key("reg.f.weight_kg"), type: "number", min: 0, required: true },
    { name: "required_clamp_force_kN", label: key("reg.f.required_clamp_force_kN"), type: "number", min: 0, required: true },
    { name: "shot_weight_g", label: key("reg.f.shot_weight_g"), type: "number", min: 0, required: true },
    { name: "resin", label: key("reg.f.resin"), type: "text", required: true },
    { name: "cavities", label: key("reg.f.cavities"), type: "integer", min: 1, required: true },
    { name: "locating_ring_mm", label: key("reg.f.locating_ring_mm"), type: "number", min: 0, required: true },
    { name: "cycle_time_s", label: key("reg.f.cycle_time_s"), type: "number", min: 0, required: true },
    { name: "shot_count", label: key("reg.f.shot_count"), type: "integer", min: 0 },
    { name: "maintenance_interval_shots", label: key("reg.f.maintenance_interval_shots"), type: "integer", min: 1 },
  ],
  columns: [
    [key("reg.f.id"), (m) => m.id],
    [key("reg.f.name"), (m) => m.name],
    [key("reg.f.size"), (m) => t("reg.size_mm", { w: formatNumber(m.width_mm, 0), h: formatNumber(m.height_mm, 0), d: formatNumber(m.thickness_mm, 0) })],
    [key("reg.f.required_clamp_force_kN"), (m) => formatNumber(m.required_clamp_force_kN, 0), "num"],
    [key("reg.f.resin"), (m) => m.resin],
    [key("reg.f.cycle_time_s"), (m) => formatNumber(m.cycle_time_s, 1), "num"],
  ],
});

export function init() {}
export const enter = () => molds.enter();
export const reset = () => molds.reset();
export const rerender = () => molds.rerender();
