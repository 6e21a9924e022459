// The console's only way to talk to Vouch: the public REST API, with the signed-in person's API
// key in the Authorization header. The key is never put in a URL or a cookie.

/** A failed API call, carrying the problem+json body Vouch answered with. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `Vouch answered HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = (problem && problem.code) || (status ? `http_${status}` : 'network_error');
    this.problem = problem || null;
  }
}

let sessionKey = null;
let sessionLost = () => {};

export function setKey(key) {
  sessionKey = key;
}

/** Called when the session's key stops working (revoked while signed in). */
export function onSessionLost(handler) {
  sessionLost = handler;
}

/**
 * Call the API. `options.key` uses another key than the session's (sign-in); such calls never
 * end the session.
 */
export async function api(method, path, body, options = {}) {
  const key = options.key ?? sessionKey;
  const headers = { Accept: 'application/json, application/problem+json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, {
      code: 'network_error',
      detail: 'Vouch could not be reached. Check your connection and try again.',
    });
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json);
    if (res.status === 401 && options.key === undefined && sessionKey) sessionLost(err);
    throw err;
  }
  return json;
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body, options);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** `?a=1&b=2` from the entries that have a value. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A path segment from an id (ids come from the API or the address bar). */
export const seg = (id) => encodeURIComponent(id);
