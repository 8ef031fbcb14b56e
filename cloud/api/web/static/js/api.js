// The API client: JSON over fetch with the firm's API key as a Bearer token.

import { t } from "./i18n.js";

/** The API, relative to the page (/app/ -> /api/v1), so a path prefix of a proxy works. */
export const API_BASE = "../api/v1";

/** An API error: HTTP status, the API's error code, its message and detail. */
export class ApiError extends Error {
  constructor(status, code, message, detail = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

let apiKey = null;
let unauthorizedHandler = null;

/** Use `key` for every later request (null: none). */
export function setKey(key) {
  apiKey = key;
}

/** Called with the ApiError whenever the API answers 401 (the key is no longer valid). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/**
 * Call the API. `query` entries that are empty are left out; `body` is sent as JSON.
 * A Blob or File `body` (a spreadsheet upload) is sent as it is, with its own type.
 * Resolves to the parsed JSON (or null for an empty body); rejects with ApiError.
 */
export async function api(path, { method = "GET", query = null, body = undefined, quiet401 = false } = {}) {
  const url = new URL(API_BASE + path, document.baseURI);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const raw = body instanceof Blob;
  if (body !== undefined) headers["Content-Type"] = raw ? body.type || "application/octet-stream" : "application/json";
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network_error", t("error.network"), String(err));
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = data && typeof data === "object" ? data.error : null;
    const err = new ApiError(
      res.status,
      (e && e.code) || `http_${res.status}`,
      (e && e.message) || res.statusText || t("error.unknown"),
      e ? e.detail : text,
    );
    if (res.status === 401 && !quiet401 && unauthorizedHandler) unauthorizedHandler(err);
    throw err;
  }
  return data;
}
