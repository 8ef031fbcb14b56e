// Tiny DOM helpers. Data from the API is only ever set as text (never as HTML).

/**
 * Create an element: h("td", {class: "num", dataset: {id: 3}}, "text", childNode, [more]).
 * Attributes named on* with a function value become event listeners; `false`/null/undefined
 * attributes are left out; `true` sets an empty boolean attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** `document.getElementById`, failing loudly when the markup lacks the element. */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/**
 * A data table. Every body cell gets its column's heading as `data-label`, so narrow
 * screens show each row as a card of "label: value" lines (css/app.css) instead of
 * scrolling sideways; a day-by-day matrix (class "classes") keeps its sideways scroll.
 */
export function table({ caption, head, rows, cls = "" }) {
  const labels = head.map((cell) => (cell instanceof Node ? cell.textContent : String(cell)).trim());
  for (const tr of rows.flat()) {
    if (!(tr instanceof Element)) continue;
    [...tr.children].forEach((cell, i) => {
      if (labels[i] && !cell.dataset.label) cell.dataset.label = labels[i];
    });
  }
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: cls },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, head.map((cell) => (cell instanceof Node ? cell : h("th", { scope: "col" }, cell))))),
      h("tbody", {}, rows),
    ),
  );
}
