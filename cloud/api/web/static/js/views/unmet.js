// An unmet volume of a takeover plan, in words, whatever fields the API gives it.
//
// Today an unmet entry is {parts, reason}. Richer explanations (the rule, the required and
// the offered values of the nearest candidates, texts in ja and en) are shown without a
// change here: every further field is rendered generically —
//   - a text field (message, text, explanation, summary, detail) as a sentence; an object
//     {en: "...", ja: "..."} is read in the page's language;
//   - a rule code (rule, code) with its label when the catalogue knows it;
//   - any other scalar as "name: value", an object as its fields, an array as one line per
//     item (at most MAX_ITEMS), nested at most MAX_DEPTH levels.
// Field names are shown humanised ("tie_bar_h_mm" -> "tie bar h mm"); values as text only.

import { h } from "../dom.js";
import { formatNumber, formatParts, language, t } from "../i18n.js";
import { reasonLabel } from "../labels.js";

const MAX_ITEMS = 8;
const MAX_DEPTH = 3;
const TEXT_FIELDS = ["message", "text", "explanation", "summary", "detail", "description"];
const CODE_FIELDS = ["rule", "code"];
const SKIP = new Set(["parts", "reason"]);

function isLocalised(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && (typeof v.en === "string" || typeof v.ja === "string");
}

/** A string, or {en, ja} read in the current language (falling back to English). */
export function localised(v) {
  if (isLocalised(v)) return v[language()] ?? v.en ?? v.ja;
  return typeof v === "string" ? v : null;
}

function humanise(name) {
  return String(name).replace(/_/g, " ");
}

function scalar(v) {
  if (typeof v === "number") return formatNumber(v, 2);
  if (typeof v === "boolean") return v ? "✓" : "✗";
  if (v === null || v === undefined) return "—";
  return String(v);
}

/** "name: value" lines (a <ul>) for the fields of `obj` not in `skip`. */
function fields(obj, skip, depth) {
  const items = [];
  for (const [name, v] of Object.entries(obj)) {
    if (skip.has(name)) continue;
    items.push(h("li", { dataset: { field: name } }, h("span", { class: "field-name" }, `${humanise(name)}: `), value(v, depth + 1)));
  }
  return items.length ? h("ul", { class: "unmet-fields" }, items) : null;
}

function value(v, depth) {
  const text = localised(v);
  if (text !== null) return text;
  if (Array.isArray(v)) {
    if (depth > MAX_DEPTH) return `[${v.length}]`;
    const shown = v.slice(0, MAX_ITEMS).map((item) => h("li", {}, value(item, depth + 1)));
    if (v.length > MAX_ITEMS) shown.push(h("li", {}, t("unmet.more", { n: formatNumber(v.length - MAX_ITEMS, 0) })));
    return h("ul", { class: "unmet-fields" }, shown);
  }
  if (v !== null && typeof v === "object") {
    if (depth > MAX_DEPTH) return "{…}";
    const head = [];
    for (const f of TEXT_FIELDS) if (localised(v[f]) !== null) head.push(h("span", { class: "unmet-text" }, localised(v[f])));
    const rest = fields(v, new Set(TEXT_FIELDS.filter((f) => localised(v[f]) !== null)), depth);
    return h("span", { class: "unmet-object" }, head, rest);
  }
  return scalar(v);
}

/** The <li> of one unmet entry: "{parts} pcs: {reason label}", then whatever else it has. */
export function unmetItem(u) {
  const code = u.reason ?? u.rule ?? u.code;
  const extra = [];
  const skip = new Set(SKIP);
  for (const f of CODE_FIELDS) {
    if (f in u && u[f] !== code && typeof u[f] === "string") {
      extra.push(h("span", { class: "unmet-rule", dataset: { rule: u[f] } }, t("unmet.rule", { rule: reasonLabel(u[f]), code: u[f] })));
    }
    skip.add(f);
  }
  for (const f of TEXT_FIELDS) {
    const text = localised(u[f]);
    if (text !== null) {
      extra.push(h("span", { class: "unmet-text" }, text));
      skip.add(f);
    }
  }
  const more = fields(u, skip, 0);
  return h(
    "li",
    { dataset: { reason: code } },
    t("takeover.unmet_item", { parts: formatParts(u.parts), reason: reasonLabel(code) }),
    extra,
    more,
  );
}
