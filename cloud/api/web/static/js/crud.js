// A list of one kind of registry object of the signed-in firm with a form to add or edit
// one (the sites, lines, machines and molds views use it).
//
// New objects are POSTed to the kind's create endpoint (POST /firms/{firm}/{kind});
// edits are written with the registry's bulk upsert (PUT /firms/{firm}/registry with the
// one row), which every kind supports with the full set of fields. The API's 4xx details
// appear next to the fields they name (forms.js).

import { api } from "./api.js";
import { byId, h, replace, table } from "./dom.js";
import { key, t } from "./i18n.js";
import { errorBox, field, fill, input, submit, values } from "./forms.js";
import { firmPath, session } from "./state.js";
import { run, setStatus } from "./ui.js";

/**
 * An editor for one kind. `cfg`: { kind ("machines"), host (element id), specs,
 * columns: [[labelKey, record => text, cls?]], caption, titleNew, titleEdit (keys),
 * choices: async () => ({fieldName: [[value, text]]}) (optional), onBuilt(form) (optional) }.
 * Returns { enter, reset, rerender } for the view module.
 */
export function editor(cfg) {
  let rows = null;
  let editing = null;
  let form = null;
  const formId = `${cfg.kind}-form`;

  function build() {
    const title = h("h2", { id: `${formId}-title` });
    form = h(
      "form",
      { id: formId, class: "card reg-form", novalidate: true, "aria-labelledby": `${formId}-title`, onsubmit: save },
      title,
      h("div", { class: "reg-grid" }, cfg.specs.map((spec) => field(formId, spec))),
      errorBox(),
      h(
        "div",
        { class: "form-actions" },
        h("button", { type: "submit", id: `${formId}-save`, "data-i18n": key("reg.save") }, t("reg.save")),
        h(
          "button",
          { type: "button", id: `${formId}-new`, class: "button-secondary", "data-i18n": key("reg.new"), onclick: () => startNew(true) },
          t("reg.new"),
        ),
      ),
    );
    if (cfg.onBuilt) cfg.onBuilt(form);
    replace(byId(cfg.host), h("div", { id: `${cfg.kind}-list` }), form);
  }

  function setTitle() {
    replace(byId(`${formId}-title`), editing ? t(cfg.titleEdit, { id: editing.id }) : t(cfg.titleNew));
    form.dataset.mode = editing ? "edit" : "new";
    input(form, "id").readOnly = Boolean(editing);
    byId(`${formId}-new`).hidden = !editing;
  }

  function startNew(focus) {
    editing = null;
    form.reset();
    fill(form, cfg.specs, null);
    for (const el of form.querySelectorAll(".field-error")) replace(el);
    if (cfg.onFill) cfg.onFill(form, null);
    setTitle();
    if (focus) input(form, "id").focus();
  }

  function startEdit(record) {
    editing = record;
    fill(form, cfg.specs, record);
    if (cfg.onFill) cfg.onFill(form, record);
    setTitle();
    form.scrollIntoView({ block: "start" });
    const first = cfg.specs.find((s) => s.name !== "id");
    input(form, first.name).focus();
  }

  async function save(ev) {
    ev.preventDefault();
    const body = { ...values(form, cfg.specs) };
    if (cfg.firmField !== false) body.firm_id = session.me.firm_id;
    const res = editing
      ? await submit(form, firmPath("/registry"), { method: "PUT", body: { [cfg.kind]: [{ ...body, id: editing.id }] } })
      : await submit(form, firmPath(`/${cfg.kind}`), { method: "POST", body });
    if (res === undefined) return;
    setStatus(() => t("reg.saved", { id: editing ? editing.id : body.id }));
    await load();
    startNew(false);
  }

  function renderList() {
    const host = byId(`${cfg.kind}-list`);
    if (!rows.length) {
      replace(host, h("p", { class: "empty" }, t("reg.none")));
      return;
    }
    replace(
      host,
      table({
        cls: `data cards ${cfg.kind}`,
        caption: t(cfg.caption),
        head: [
          ...cfg.columns.map(([label, , cls]) => h("th", { scope: "col", class: cls || null }, t(label))),
          h("th", { scope: "col" }, t("common.actions")),
        ],
        rows: rows.map((r) =>
          h(
            "tr",
            { dataset: { id: r.id } },
            cfg.columns.map(([, value, cls], i) => h(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : { class: cls || null }, value(r))),
            h(
              "td",
              { class: "actions" },
              h(
                "button",
                { type: "button", class: "button-secondary edit", "aria-label": t("reg.edit_label", { id: r.id }), onclick: () => startEdit(r) },
                t("reg.edit"),
              ),
            ),
          ),
        ),
      }),
    );
  }

  async function load() {
    const data = await run(() => api(firmPath(`/${cfg.kind}`)));
    if (data !== undefined) {
      rows = Array.isArray(data) ? data : [];
      renderList();
    }
  }

  return {
    /** Build the form on first entry, refresh its choices and the list. */
    async enter() {
      if (!form) {
        build();
        startNew(false);
      }
      if (cfg.choices) {
        const choices = await run(cfg.choices);
        for (const [name, pairs] of Object.entries(choices || {})) {
          const el = input(form, name);
          const keep = el.value;
          replace(el, pairs.map(([v, text]) => h("option", { value: v }, text)));
          if (pairs.some(([v]) => v === keep)) el.value = keep;
        }
      }
      await load();
    },
    reset() {
      rows = null;
      editing = null;
      form = null;
      replace(byId(cfg.host));
    },
    rerender() {
      if (rows) renderList();
      if (form) setTitle();
    },
    /** The records listed (after enter). */
    rows: () => rows || [],
  };
}
