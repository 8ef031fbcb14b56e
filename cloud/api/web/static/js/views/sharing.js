// View: the firm's sharing policy. Grants (GET/POST /firms/{firm}/grants, PUT and DELETE
// .../grants/{id}) and partner groups (GET/POST /firms/{firm}/groups, DELETE
// .../groups/{id}), with a live plain-language preview of what the grantee will see
// (./grant_preview.js). "Save" of an edited grant replaces its terms in place (PUT): the
// grant keeps its id and the grantee sees the new terms from its next request on.

import { api } from "../api.js";
import { byId, h, replace, table } from "../dom.js";
import { formatDate, key, t } from "../i18n.js";
import { granularityLabel } from "../labels.js";
import { firmPath } from "../state.js";
import { run, setStatus } from "../ui.js";
import { cardify } from "./cards.js";
import { preview, previewText } from "./grant_preview.js";

const KINDS = {
  firm: key("sharing.kind_firm"),
  group: key("sharing.kind_group"),
  supporters: key("sharing.kind_supporters"),
};

let grants = null;
let groups = null;
let editing = null; // the grant being edited, or null for a new one
let draft = null; // the form's values while it is open

const kindLabel = (k) => (Object.prototype.hasOwnProperty.call(KINDS, k) ? t(KINDS[k]) : String(k));

/** Load the grants and groups. */
export async function enter() {
  const [g, p] = await Promise.all([run(() => api(firmPath("/grants"))), run(() => api(firmPath("/groups")))]);
  if (g !== undefined) grants = g || [];
  if (p !== undefined) groups = p || [];
  if (draft === null) draft = blank();
  render();
}

/** Forget everything shown (sign-out). */
export function reset() {
  grants = null;
  groups = null;
  editing = null;
  draft = null;
  for (const id of ["grant-editor", "grant-list", "group-editor", "group-list"]) replace(byId(id));
}

/** Re-render in the current language. */
export function rerender() {
  if (grants && groups) render();
}

function blank() {
  return { grantee_kind: "firm", grantee_id: "", capability_classes: [], granularity: "week", machine_detail: false, expires_at: null };
}

function render() {
  renderEditor();
  renderGrants();
  renderGroupEditor();
  renderGroups();
}

// ------------------------------------------------------------------ grant editor

function readForm() {
  const expires = byId("g-expires").value;
  return {
    grantee_kind: byId("g-kind").value,
    grantee_id: byId("g-grantee").value.trim(),
    capability_classes: byId("g-classes")
      .value.split(/[,、\s]+/)
      .map((c) => c.trim())
      .filter((c) => c),
    granularity: byId("g-granularity").value,
    machine_detail: byId("g-detail").checked,
    expires_at: expires ? `${expires}T00:00:00+09:00` : null,
  };
}

function renderPreview() {
  const p = preview(draft, groups || []);
  replace(
    byId("grant-preview"),
    h("p", { class: "preview-who" }, t("preview.will_see", { who: p.who })),
    h("ul", { class: "preview-sees" }, p.sees.map((s) => h("li", {}, s))),
    h("p", { class: "preview-never-title" }, t("preview.never_title")),
    h("ul", { class: "preview-never" }, p.never.map((s) => h("li", {}, s))),
    h("p", { class: "preview-until" }, p.until),
  );
}

function onInput() {
  draft = readForm();
  renderPreview();
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function renderEditor() {
  const d = draft;
  const option = (value, label, chosen) => h("option", { value, selected: chosen === value }, label);
  const form = h(
    "form",
    { id: "grant-form", class: "card form-grid", "aria-labelledby": "grant-form-title", oninput: onInput, onchange: onInput, onsubmit: saveGrant },
    h("h2", { id: "grant-form-title" }, editing ? t("sharing.edit_title", { id: editing.id }) : t("sharing.new_title")),
    field(
      "g-kind",
      t("sharing.grantee_kind"),
      h("select", { id: "g-kind" }, Object.keys(KINDS).map((k) => option(k, kindLabel(k), d.grantee_kind))),
    ),
    field(
      "g-grantee",
      t("sharing.grantee_id"),
      h("input", { id: "g-grantee", required: true, maxlength: "64", list: "g-grantee-options", value: d.grantee_id, spellcheck: "false", autocapitalize: "off", "aria-describedby": "g-grantee-hint" }),
    ),
    h("datalist", { id: "g-grantee-options" }, (groups || []).map((g) => h("option", { value: g.id }, g.name))),
    h("p", { id: "g-grantee-hint", class: "hint wide" }, t("sharing.grantee_hint")),
    field(
      "g-classes",
      t("sharing.classes"),
      h("input", { id: "g-classes", value: (d.capability_classes || []).join(", "), spellcheck: "false", autocapitalize: "off", "aria-describedby": "g-classes-hint" }),
    ),
    h("p", { id: "g-classes-hint", class: "hint wide" }, t("sharing.classes_hint")),
    field(
      "g-granularity",
      t("sharing.granularity"),
      h("select", { id: "g-granularity" }, ["week", "day"].map((k) => option(k, granularityLabel(k), d.granularity))),
    ),
    field("g-expires", t("sharing.expires"), h("input", { id: "g-expires", type: "date", value: d.expires_at ? String(d.expires_at).slice(0, 10) : "" })),
    h(
      "div",
      { class: "field checkbox" },
      h("input", { id: "g-detail", type: "checkbox", checked: Boolean(d.machine_detail) }),
      h("label", { for: "g-detail" }, t("sharing.machine_detail")),
    ),
    h("section", { id: "grant-preview", class: "preview wide", "aria-live": "polite", "aria-label": t("preview.title") }),
    h(
      "div",
      { class: "form-actions wide" },
      h("button", { type: "submit", id: "grant-save" }, editing ? t("sharing.save_edit") : t("sharing.create")),
      editing ? h("button", { type: "button", id: "grant-cancel", class: "button-secondary", onclick: cancelEdit }, t("common.cancel")) : null,
    ),
  );
  replace(byId("grant-editor"), form);
  renderPreview();
}

function editGrant(g) {
  editing = g;
  draft = {
    grantee_kind: g.grantee_kind,
    grantee_id: g.grantee_id,
    capability_classes: [...g.capability_classes],
    granularity: g.granularity,
    machine_detail: g.machine_detail,
    expires_at: g.expires_at ? japanDay(g.expires_at) : null,
  };
  renderEditor();
  byId("g-kind").focus();
}

function cancelEdit() {
  editing = null;
  draft = blank();
  renderEditor();
}

/** The Japan-time calendar day of an ISO time ("YYYY-MM-DD"). */
function japanDay(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso).slice(0, 10);
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
}

async function saveGrant(ev) {
  ev.preventDefault();
  draft = readForm();
  const old = editing;
  const saved = old
    ? await run(() => api(firmPath(`/grants/${encodeURIComponent(old.id)}`), { method: "PUT", body: draft }))
    : await run(() => api(firmPath("/grants"), { method: "POST", body: draft }));
  if (saved === undefined) return;
  grants = old ? grants.map((g) => (g.id === saved.id ? saved : g)) : [...grants, saved];
  editing = null;
  draft = blank();
  renderEditor();
  renderGrants();
  document.getElementById(`grant-${saved.id}`)?.focus();
  setStatus(() => (old ? t("sharing.updated_msg", { id: saved.id }) : t("sharing.created_msg", { id: saved.id })));
}

// ------------------------------------------------------------------ grant list

function grantRow(g) {
  return h(
    "tr",
    { id: `grant-${g.id}`, tabindex: "-1", dataset: { grantId: g.id } },
    h("th", { scope: "row" }, `#${g.id}`),
    h("td", {}, kindLabel(g.grantee_kind), h("span", { class: "sub" }, g.grantee_id)),
    h("td", { class: "grant-preview" }, previewText(g, groups || [])),
    h("td", { class: "nowrap" }, g.expires_at ? japanDay(g.expires_at) : "—"),
    h(
      "td",
      { class: "actions" },
      h("button", { type: "button", class: "edit button-secondary", "aria-label": t("sharing.edit_label", { id: g.id }), onclick: () => editGrant(g) }, t("sharing.edit")),
      h("button", { type: "button", class: "revoke button-danger", "aria-label": t("sharing.revoke_label", { id: g.id }), onclick: () => revokeGrant(g) }, t("sharing.revoke")),
    ),
  );
}

function renderGrants() {
  if (!grants.length) {
    replace(byId("grant-list"), h("p", { class: "empty", id: "grants-empty" }, t("sharing.no_grants")));
    return;
  }
  replace(
    byId("grant-list"),
    cardify(table({
      cls: "data grants",
      caption: t("sharing.grants_caption"),
      head: [t("sharing.col_grant"), t("sharing.col_grantee"), t("preview.title"), t("sharing.col_expires"), h("th", { scope: "col" }, t("common.actions"))],
      rows: grants.map(grantRow),
    })),
  );
}

async function revokeGrant(g) {
  if (!window.confirm(t("sharing.revoke_confirm", { id: g.id, grantee: g.grantee_id }))) return;
  const res = await run(() => api(firmPath(`/grants/${encodeURIComponent(g.id)}`), { method: "DELETE" }));
  if (res === undefined) return;
  grants = grants.filter((x) => x.id !== g.id);
  if (editing && editing.id === g.id) cancelEdit();
  renderGrants();
  setStatus(() => t("sharing.revoked_msg", { id: g.id }));
}

// ------------------------------------------------------------------ partner groups

function renderGroupEditor() {
  replace(
    byId("group-editor"),
    h(
      "form",
      { id: "group-form", class: "card form-grid", "aria-labelledby": "group-form-title", onsubmit: createGroup },
      h("h2", { id: "group-form-title" }, t("groups.new_title")),
      field("grp-id", t("groups.id"), h("input", { id: "grp-id", required: true, pattern: "[A-Za-z0-9_.\\-]{1,64}", spellcheck: "false", autocapitalize: "off" })),
      field("grp-name", t("groups.name"), h("input", { id: "grp-name", required: true, maxlength: "200" })),
      field("grp-members", t("groups.members"), h("input", { id: "grp-members", spellcheck: "false", autocapitalize: "off", "aria-describedby": "grp-members-hint" })),
      h("p", { id: "grp-members-hint", class: "hint wide" }, t("groups.members_hint")),
      h("div", { class: "form-actions wide" }, h("button", { type: "submit", id: "group-create" }, t("groups.create"))),
    ),
  );
}

function renderGroups() {
  if (!groups.length) {
    replace(byId("group-list"), h("p", { class: "empty", id: "groups-empty" }, t("groups.none")));
    return;
  }
  replace(
    byId("group-list"),
    cardify(table({
      cls: "data groups",
      caption: t("groups.caption"),
      head: [t("groups.id"), t("groups.name"), t("groups.members"), t("sharing.col_created"), h("th", { scope: "col" }, t("common.actions"))],
      rows: groups.map((g) =>
        h(
          "tr",
          { id: `group-${g.id}`, dataset: { groupId: g.id } },
          h("th", { scope: "row" }, g.id),
          h("td", {}, g.name),
          h("td", {}, g.members.join(", ") || "—"),
          h("td", { class: "nowrap" }, formatDate(japanDay(g.created_at))),
          h(
            "td",
            { class: "actions" },
            h("button", { type: "button", class: "delete button-danger", "aria-label": t("groups.delete_label", { id: g.id }), onclick: () => deleteGroup(g) }, t("groups.delete")),
          ),
        ),
      ),
    })),
  );
}

async function createGroup(ev) {
  ev.preventDefault();
  const body = {
    id: byId("grp-id").value.trim(),
    name: byId("grp-name").value.trim(),
    members: byId("grp-members")
      .value.split(/[,、\s]+/)
      .map((m) => m.trim())
      .filter((m) => m),
  };
  const g = await run(() => api(firmPath("/groups"), { method: "POST", body }));
  if (g === undefined) return;
  groups = [...groups, g];
  renderGroupEditor();
  renderGroups();
  renderEditor(); // the group is now a grantee choice, and the preview may name it
  setStatus(() => t("groups.created_msg", { id: g.id }));
}

async function deleteGroup(g) {
  if (!window.confirm(t("groups.delete_confirm", { id: g.id }))) return;
  const res = await run(() => api(firmPath(`/groups/${encodeURIComponent(g.id)}`), { method: "DELETE" }));
  if (res === undefined) return;
  groups = groups.filter((x) => x.id !== g.id);
  // the API deleted the grants made to the group as well
  grants = grants.filter((x) => !(x.grantee_kind === "group" && x.grantee_id === g.id));
  renderGroups();
  renderGrants();
  setStatus(() => t("groups.deleted_msg", { id: g.id }));
}
