// Labels of the API's codes (processes, regions, statuses, reasons, roles), from the
// catalogues. Unknown codes are shown as they are.

import { formatNumber, key, t } from "./i18n.js";

const PROCESSES = {
  injection_molding: key("process.injection_molding"),
  press: key("process.press"),
  machining: key("process.machining"),
};

const REGIONS = {
  hokkaido: key("region.hokkaido"),
  tohoku: key("region.tohoku"),
  kanto: key("region.kanto"),
  chubu: key("region.chubu"),
  kansai: key("region.kansai"),
  chugoku: key("region.chugoku"),
  shikoku: key("region.shikoku"),
  kyushu: key("region.kyushu"),
};

const ROLES = {
  operator: key("role.operator"),
  partner: key("role.partner"),
  supporter: key("role.supporter"),
  engineer: key("role.engineer"),
  admin: key("role.admin"),
};

const GRANULARITIES = {
  day: key("granularity.day"),
  week: key("granularity.week"),
};

const ASSIGNMENT_STATUSES = {
  proposed: key("assignment_status.proposed"),
  accepted: key("assignment_status.accepted"),
  declined: key("assignment_status.declined"),
  withdrawn: key("assignment_status.withdrawn"),
  drill: key("assignment_status.drill"),
};

const TAKEOVER_STATUSES = {
  open: key("takeover_status.open"),
  closed: key("takeover_status.closed"),
};

const UNMET_REASONS = {
  no_compatible_machine: key("reason.no_compatible_machine"),
  no_capacity: key("reason.no_capacity"),
  not_shared: key("reason.not_shared"),
  only_inside_zone: key("reason.only_inside_zone"),
};

function label(map, code) {
  return Object.prototype.hasOwnProperty.call(map, code) ? t(map[code]) : String(code ?? "—");
}

export const processLabel = (code) => label(PROCESSES, code);
export const regionLabel = (code) => label(REGIONS, code);
export const roleLabel = (code) => label(ROLES, code);
export const granularityLabel = (code) => label(GRANULARITIES, code);
export const assignmentStatusLabel = (code) => label(ASSIGNMENT_STATUSES, code);
export const takeoverStatusLabel = (code) => label(TAKEOVER_STATUSES, code);
export const reasonLabel = (code) => label(UNMET_REASONS, code);

/**
 * A capability class id in words: "injection_molding:1000-2000kN" -> "Injection molding,
 * 1,000–2,000 kN"; "machining:5axis" -> "Machining, 5-axis".
 */
export function classLabel(id) {
  const [process, band = ""] = String(id).split(":");
  let m;
  let bandText = band;
  if ((m = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)kN$/.exec(band))) {
    bandText = t("class.band_range", { min: formatNumber(m[1], 0), max: formatNumber(m[2], 0) });
  } else if ((m = /^(\d+(?:\.\d+)?)kN\+$/.exec(band))) {
    bandText = t("class.band_min", { min: formatNumber(m[1], 0) });
  } else if ((m = /^(\d+)axis$/.exec(band))) {
    bandText = t("class.axes", { n: m[1] });
  }
  return bandText ? t("class.label", { process: processLabel(process), band: bandText }) : processLabel(process);
}
