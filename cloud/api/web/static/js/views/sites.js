// View: the signed-in firm's sites and their production lines (list, add, edit).
// GET/POST /firms/{firm}/sites and /lines; edits via PUT /firms/{firm}/registry.

import { api } from "../api.js";
import { editor } from "../crud.js";
import { formatList, formatNumber, key } from "../i18n.js";
import { regionLabel } from "../labels.js";
import { firmPath } from "../state.js";

const REGIONS = ["hokkaido", "tohoku", "kanto", "chubu", "kansai", "chugoku", "shikoku", "kyushu"];
const REGION_KEYS = [
  key("region.hokkaido"),
  key("region.tohoku"),
  key("region.kanto"),
  key("region.chubu"),
  key("region.kansai"),
  key("region.chugoku"),
  key("region.shikoku"),
  key("region.kyushu"),
];

const sites = editor({
  kind: "sites",
  host: "sites-host",
  caption: key("reg.sites_caption"),
  titleNew: key("reg.site_new"),
  titleEdit: key("reg.site_edit"),
  specs: [
    { name: "id", label: key("reg.f.id"), type: "text", required: true, hint: key("reg.id_hint") },
    { name: "name", label: key("reg.f.name"), type: "text", required: true },
    { name: "region", label: key("reg.f.region"), type: "select", options: REGIONS.map((r, i) => [r, REGION_KEYS[i]]) },
    { name: "prefecture", label: key("reg.f.prefecture"), type: "text" },
    { name: "address", label: key("reg.f.address"), type: "text" },
    { name: "latitude_deg", label: key("reg.f.latitude_deg"), type: "number", required: true },
    { name: "longitude_deg", label: key("reg.f.longitude_deg"), type: "number", required: true },
    { name: "resins", label: key("reg.f.resins"), type: "list", hint: key("reg.list_hint") },
    { name: "certifications", label: key("reg.f.certifications"), type: "list", hint: key("reg.list_hint") },
  ],
  columns: [
    [key("reg.f.id"), (s) => s.id],
    [key("reg.f.name"), (s) => s.name],
    [key("reg.f.region"), (s) => regionLabel(s.region)],
    [key("reg.f.position"), (s) => `${formatNumber(s.latitude_deg, 4)}, ${formatNumber(s.longitude_deg, 4)}`],
    [key("reg.f.resins"), (s) => formatList(s.resins)],
  ],
});

const lines = editor({
  kind: "lines",
  host: "lines-host",
  firmField: false,
  caption: key("reg.lines_caption"),
  titleNew: key("reg.line_new"),
  titleEdit: key("reg.line_edit"),
  specs: [
    { name: "id", label: key("reg.f.id"), type: "text", required: true, hint: key("reg.id_hint") },
    { name: "site_id", label: key("reg.f.site_id"), type: "select", options: [] },
    { name: "name", label: key("reg.f.name"), type: "text", required: true },
    { name: "area", label: key("reg.f.area"), type: "text" },
  ],
  columns: [
    [key("reg.f.id"), (l) => l.id],
    [key("reg.f.site_id"), (l) => l.site_id],
    [key("reg.f.name"), (l) => l.name],
    [key("reg.f.area"), (l) => l.area || "—"],
  ],
  choices: async () => {
    const list = await api(firmPath("/sites"));
    return { site_id: list.map((s) => [s.id, `${s.id} — ${s.name}`]) };
  },
});

export function init() {}

export async function enter() {
  await sites.enter();
  await lines.enter();
}

export function reset() {
  sites.reset();
  lines.reset();
}

export function rerender() {
  sites.rerender();
  lines.rerender();
}
