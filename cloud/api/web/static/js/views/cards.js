// Tables of this page's action views (disruptions, grants, groups) become cards on a
// narrow screen (CSS: table.cards at max-width 700px), so their action buttons are never
// off screen. cardify(wrapper) labels every cell with its column's header text
// (data-label, shown before the cell's value by the CSS) and marks the table.

/** Label the cells of the table in `wrapper` (from dom.table()) and return `wrapper`. */
export function cardify(wrapper) {
  const tbl = wrapper.querySelector("table");
  if (!tbl) return wrapper;
  tbl.classList.add("cards");
  const heads = [...tbl.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const tr of tbl.querySelectorAll("tbody tr")) labelRow(tr, heads);
  return wrapper;
}

/** Label the cells of one row (a row rendered after the table, e.g. updated in place). */
export function labelRow(tr, heads = null) {
  const names = heads || [...(tr.closest("table")?.querySelectorAll("thead th") || [])].map((th) => th.textContent.trim());
  [...tr.children].forEach((cell, i) => {
    if (names[i]) cell.dataset.label = names[i];
  });
  return tr;
}
