// Forms built from field specs, and the API's 4xx details shown next to the fields.
//
// A spec: { name, label (a catalogue key), type: "text" | "number" | "integer" | "select" |
// "list", required, options: [[value, label key], ...], hint (a key) }. Labels carry
// data-i18n, so a language switch re-translates them in place (values are kept).
// "list" fields take values separated by ";" or "," and are sent as arrays.

import { ApiError, api } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { run } from "./ui.js";

/** The input of field `name` in `form`. */
export function input(form, name) {
  return form.elements.namedItem(name);
}

function control(id, spec) {
  const common = {
    id,
    name: spec.name,
    required: Boolean(spec.required),
    "aria-describedby": `${id}-error${spec.hint ? ` ${id}-hint` : ""}`,
  };
  if (spec.type === "select") {
    return h(
      "select",
      common,
      spec.options.map(([value, label]) => h("option", { value, "data-i18n": label }, t(label))),
    );
  }
  const number = spec.type === "number" || spec.type === "integer";
  return h("input", {
    ...common,
    type: number ? "number" : "text",
    step: spec.type === "integer" ? "1" : number ? "any" : null,
    min: number && spec.min !== undefined ? String(spec.min) : null,
    inputmode: spec.type === "integer" ? "numeric" : number ? "decimal" : null,
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
  });
}

/** A labelled field with its hint and (hidden) error line. */
export function field(formId, spec) {
  const id = `${formId}-${spec.name}`;
  return h(
    "div",
    { class: "field", dataset: { field: spec.name } },
    h("label", { for: id, "data-i18n": spec.label }, t(spec.label)),
    control(id, spec),
    spec.hint ? h("span", { class: "sub", id: `${id}-hint`, "data-i18n": spec.hint }, t(spec.hint)) : null,
    h("span", { class: "field-error", id: `${id}-error` }),
  );
}

/** The form's values as the API wants them: numbers parsed, empty fields left out. */
export function values(form, specs) {
  const out = {};
  for (const spec of specs) {
    const el = input(form, spec.name);
    if (!el || el.disabled) continue;
    const raw = String(el.value).trim();
    if (spec.type === "list") {
      out[spec.name] = raw.split(/[;,、]/).map((s) => s.trim()).filter(Boolean);
    } else if (raw === "") {
      continue;
    } else if (spec.type === "number" || spec.type === "integer") {
      out[spec.name] = Number(raw);
    } else {
      out[spec.name] = raw;
    }
  }
  return out;
}

/** Put `record`'s values into the form's fields. */
export function fill(form, specs, record) {
  for (const spec of specs) {
    const el = input(form, spec.name);
    if (!el) continue;
    const v = record ? record[spec.name] : undefined;
    if (Array.isArray(v)) el.value = v.join("; ");
    else el.value = v === null || v === undefined ? (spec.type === "select" ? el.options[0]?.value ?? "" : "") : String(v);
  }
}

/** Hide every field error of `form` and its form-level error list. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) replace(el);
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const box = form.querySelector(".form-errors");
  if (box) {
    replace(box);
    box.hidden = true;
  }
}

/** The field an API location names: its last part ("body.width_mm", "molds[0].width_mm"). */
function fieldOf(loc) {
  const parts = String(loc || "").split(".");
  return parts[parts.length - 1].replace(/\[\d+\]$/, "");
}

/**
 * Show an API error on `form`: each detail item {loc, msg} next to the field it names,
 * the rest (and the message when no item names a field) in the form's error list.
 */
export function showErrors(form, err) {
  clearErrors(form);
  const detail = Array.isArray(err.detail) ? err.detail : [];
  const rest = [];
  let first = null;
  for (const item of detail) {
    const name = fieldOf(item.loc);
    const slot = form.querySelector(`.field[data-field="${CSS.escape(name)}"] .field-error`);
    const el = input(form, name);
    if (slot && el) {
      slot.append(h("span", { class: "field-error-line" }, item.msg));
      el.setAttribute("aria-invalid", "true");
      first = first || el;
    } else {
      rest.push(item.loc ? `${item.loc}: ${item.msg}` : item.msg);
    }
  }
  if (!first || rest.length) {
    const box = form.querySelector(".form-errors");
    if (box) {
      replace(box, h("ul", {}, (rest.length ? rest : [err.message]).map((m) => h("li", {}, m))));
      box.hidden = false;
    }
  }
  if (first) first.focus();
}

/** The form-level error box (role=alert) a form built with these helpers ends with. */
export function errorBox() {
  return h("div", { class: "form-errors", role: "alert", hidden: true });
}

/**
 * Call the API for `form`: the page's busy indicator and banner as `run`, and the
 * error's details next to the fields. Resolves to the result, or undefined on error.
 */
export async function submit(form, path, options) {
  clearErrors(form);
  let failure = null;
  const result = await run(async () => {
    try {
      return await api(path, options);
    } catch (err) {
      failure = err;
      throw err;
    }
  });
  if (failure instanceof ApiError && failure.status >= 400 && failure.status < 500) showErrors(form, failure);
  return failure ? undefined : result;
}

/** A table of an import's problems: where (file:line.column or sheet!cell) and what. */
export function problemTable(detail, caption) {
  const items = Array.isArray(detail) ? detail : [];
  return h(
    "div",
    { class: "problems" },
    h(
      "table",
      { class: "data cards problems-table" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("reg.problem_where")), h("th", { scope: "col" }, t("reg.problem_what")))),
      h(
        "tbody",
        {},
        items.map((p) =>
          h(
            "tr",
            { dataset: { loc: p.loc || "" } },
            h("td", { dataset: { label: t("reg.problem_where") } }, h("code", {}, p.loc || "—")),
            h("td", { dataset: { label: t("reg.problem_what") } }, p.msg || ""),
          ),
        ),
      ),
    ),
  );
}
