// Message catalogues (static/i18n/{en,ja}.json), the current language, and Intl formatting.
//
// Every visible string comes from a catalogue: static markup names its key in a
// data-i18n attribute (text) or data-i18n-<attribute> (e.g. data-i18n-placeholder);
// scripts call t() with a literal key string, or wrap a literal key string in key() when
// it is looked up later (tests/web grep both forms against the catalogues).

export const LANGUAGES = ["en", "ja"];
const FALLBACK = "en";

const catalogues = {};
let current = FALLBACK;
const listeners = [];

/** Load every catalogue (once, at start-up). */
export async function loadCatalogues() {
  await Promise.all(
    LANGUAGES.map(async (lang) => {
      const url = new URL(`../i18n/${lang}.json`, import.meta.url);
      const res = await fetch(url, { headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error(`catalogue ${lang}: HTTP ${res.status}`);
      catalogues[lang] = await res.json();
    }),
  );
}

/** The language to start in: ?lang= if supported, else the browser's, else English. */
export function pickLanguage(search = window.location.search, preferred = navigator.languages) {
  const asked = new URLSearchParams(search).get("lang");
  if (asked && LANGUAGES.includes(asked.toLowerCase())) return asked.toLowerCase();
  for (const tag of preferred && preferred.length ? preferred : [navigator.language]) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return FALLBACK;
}

/** The current language code ("en" or "ja"). */
export function language() {
  return current;
}

/** Marks a literal catalogue key that is translated later (returns it unchanged). */
export function key(k) {
  return k;
}

/**
 * The message `k` in the current language, with `{name}` placeholders replaced from
 * `params`. A missing key logs a warning and shows the key itself.
 */
export function t(k, params = {}) {
  let text = catalogues[current]?.[k];
  if (text === undefined) {
    console.warn(`i18n: missing key "${k}" (${current})`);
    text = catalogues[FALLBACK]?.[k] ?? k;
  }
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** Translate the static markup under `root`. */
export function applyTranslations(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll("*")) {
    for (const attr of el.getAttributeNames()) {
      if (attr.startsWith("data-i18n-")) {
        el.setAttribute(attr.slice("data-i18n-".length), t(el.getAttribute(attr)));
      }
    }
  }
}

/** Switch to `lang`: update <html lang>, the static markup and every registered view. */
export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : FALLBACK;
  document.documentElement.lang = current;
  applyTranslations();
  document.title = t("app.title");
  for (const fn of listeners) fn(current);
}

/** Call `fn(lang)` after every language switch (views re-render their data). */
export function onLanguageChange(fn) {
  listeners.push(fn);
}

// --- Intl formatting for the current language --------------------------------------------

const LOCALES = { en: "en-US", ja: "ja-JP" };

function locale() {
  return LOCALES[current] || current;
}

/** A number with at most `digits` fraction digits ("1,234.5"). */
export function formatNumber(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "—";
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(Number(n));
}

/** Hours with the unit ("12.5 h" / "12.5 時間"). */
export function formatHours(n) {
  return t("unit.hours", { n: formatNumber(n, 1) });
}

/** A count of parts with the unit ("1,200 pcs" / "1,200 個"). */
export function formatParts(n) {
  return t("unit.parts", { n: formatNumber(n, 0) });
}

function parseDay(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(iso || ""));
  return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
}

/** A calendar date "YYYY-MM-DD" in the locale's medium style (no time-zone shift). */
export function formatDate(iso, options = { dateStyle: "medium" }) {
  const d = parseDay(iso);
  if (!d) return iso ? String(iso) : "—";
  return new Intl.DateTimeFormat(locale(), { ...options, timeZone: "UTC" }).format(d);
}

/** A short day label for table headers ("Mon, 11/23" / "11/23(月)"). */
export function formatDay(iso) {
  return formatDate(iso, { month: "numeric", day: "numeric", weekday: "short" });
}

/** "YYYY-MM-DD" plus `n` days (negative: earlier). */
export function addDays(iso, n) {
  const d = parseDay(iso);
  if (!d) return iso;
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** The day before "YYYY-MM-DD" (for showing exclusive window ends inclusively). */
export function dayBefore(iso) {
  return addDays(iso, -1);
}

/** Today's date "YYYY-MM-DD" in `timeZone` (the API's sites are in Japan by default). */
export function today(timeZone = "Asia/Tokyo") {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date())
    .reduce((acc, p) => ({ ...acc, [p.type]: p.value }), {});
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** "start – end" of two calendar dates. */
export function formatDateRange(start, end) {
  const a = parseDay(start);
  const b = parseDay(end);
  if (!a || !b) return `${formatDate(start)} – ${formatDate(end)}`;
  const fmt = new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeZone: "UTC" });
  return fmt.formatRange ? fmt.formatRange(a, b) : `${fmt.format(a)} – ${fmt.format(b)}`;
}

/** A list of strings joined the locale's way ("PP, ABS, PC"). */
export function formatList(items) {
  const list = (items || []).map(String);
  if (!list.length) return "—";
  return new Intl.ListFormat(locale(), { style: "short", type: "unit" }).format(list);
}
