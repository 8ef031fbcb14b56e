// The signed-in principal (from GET /me), shared by the views.

export const session = {
  /** {firm_id, firm_name, region, role, key_id} of the signed-in key, or null. */
  me: null,
};

/** Path of the signed-in firm's resources, e.g. firmPath("/assignments"). */
export function firmPath(suffix) {
  return `/firms/${encodeURIComponent(session.me.firm_id)}${suffix}`;
}
