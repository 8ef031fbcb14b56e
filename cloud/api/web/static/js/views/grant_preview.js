// What a partner will see through one sharing grant, in plain words, computed from the
// grant's fields alone (the same rules as renkei.cloud.capacity.policy and the capacity
// search's answer):
//   - firm / group grants: the firm's name and region, and spare hours per capability class
//     (all classes, or the listed classes and processes) per day or per ISO week; with
//     machine_detail also each machine (id, name, site, clamp force, tie-bar spacing, mold
//     height, shot capacity, locating ring, resins, certificates) and its spare hours;
//   - supporter grants: only totals of a region over enough firms, never the firm's name;
//   - never: process settings, raw telemetry, bookings (plans and customers), and without
//     machine_detail any single machine.
// preview(grant, groups) -> {who, sees: [text], never: [text], until}.

import { formatDate, language, t } from "../i18n.js";
import { classLabel } from "../labels.js";

/** Items joined the language's way ("a, b, c" / "a、b、c"). */
function formatList(items) {
  return items.join(language() === "ja" ? "、" : ", ");
}

/** The day an expiry falls on in Japan time ("YYYY-MM-DD" or an ISO time). */
function expiryDay(v) {
  const s = String(v);
  if (!s.includes("T")) return formatDate(s);
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-US", { dateStyle: "medium", timeZone: "Asia/Tokyo" }).format(d);
}

function who(g, groups) {
  const id = g.grantee_id || "…";
  if (g.grantee_kind === "group") {
    const group = (groups || []).find((x) => x.id === g.grantee_id);
    if (!group) return t("preview.who_group_unknown", { group: id });
    return t("preview.who_group", { group: group.name, members: formatList(group.members.length ? group.members : [t("preview.no_members")]) });
  }
  if (g.grantee_kind === "supporters") {
    return id === "*" ? t("preview.who_supporters_any") : t("preview.who_supporters", { region: id });
  }
  return t("preview.who_firm", { firm: id });
}

function classesText(g) {
  const classes = (g.capability_classes || []).filter((c) => c);
  return classes.length ? formatList(classes.map(classLabel)) : t("preview.all_classes");
}

/** The preview of grant `g` (fields of GrantCreate); `groups` are the owner's groups. */
export function preview(g, groups = []) {
  const perDay = g.granularity === "day";
  const sees = [];
  const never = [t("preview.never_settings"), t("preview.never_telemetry"), t("preview.never_bookings")];
  if (g.grantee_kind === "supporters") {
    sees.push(t("preview.sees_region_totals"), perDay ? t("preview.sees_hours_day") : t("preview.sees_hours_week"));
    never.unshift(t("preview.never_name"), t("preview.never_machines"));
  } else {
    sees.push(
      t("preview.sees_name_region"),
      t("preview.sees_classes", { classes: classesText(g) }),
      perDay ? t("preview.sees_hours_day") : t("preview.sees_hours_week"),
    );
    if (g.machine_detail) sees.push(t("preview.sees_machines"));
    else never.unshift(t("preview.never_machines"));
  }
  const until = g.expires_at ? t("preview.until", { date: expiryDay(g.expires_at) }) : t("preview.until_revoked");
  return { who: who(g, groups), sees, never, until };
}

/** The preview as one sentence ("Firm X will see: a, b; never: c, d. Until revoked."). */
export function previewText(g, groups = []) {
  const p = preview(g, groups);
  return t("preview.sentence", { who: p.who, sees: formatList(p.sees), never: formatList(p.never), until: p.until });
}
