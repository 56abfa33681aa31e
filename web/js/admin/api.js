// admin/api.js: the portal's one door to the admin API (/api/v1/admin).
// Every failure becomes an AdminError with the server's {"error":{"code","message"}}; a 401
// (no session, or it expired) sends the browser to the sign-in page and back here after.
// State-changing calls are same-origin fetches, so the server's Origin check lets them in.

/** Where the admin API lives. */
export const BASE = '/api/v1/admin';
/** How long one request may take before it counts as a network failure. */
const TIMEOUT_MS = 30000;

export class AdminError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // 0 when no HTTP answer came back
    this.code = code;     // the server's snake_case code, or "network" / "http_<status>"
  }

  /** The route itself is missing (an older server): the screen says "not available". */
  get missing() {
    return this.status === 404 || this.status === 405;
  }
}

/** Sends the browser to the sign-in page, coming back to where it was. */
export function toLogin() {
  const here = location.pathname + location.search + location.hash;
  location.assign(`/admin/login?next=${encodeURIComponent(here)}`);
}

/** Builds `path?query` from an object, leaving out empty values. */
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function errorOf(response) {
  let error = {};
  try {
    error = (await response.json()).error || {};
  } catch {
    error = {};
  }
  return new AdminError(
    response.status,
    error.code || `http_${response.status}`,
    error.message || `The server answered ${response.status}.`,
  );
}

/** A raw fetch of an admin path with the session cookie; throws AdminError unless 2xx. */
export async function request(method, path, { body, json, timeoutMs = TIMEOUT_MS } = {}) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let response;
  try {
    const headers = { Accept: 'application/json' };
    if (json !== undefined) headers['Content-Type'] = 'application/json';
    response = await fetch(BASE + path, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers,
      body: json !== undefined ? JSON.stringify(json) : body,
      signal: abort.signal,
      // A streamed upload (a File body) needs no duplex flag; a ReadableStream would.
    });
  } catch {
    throw new AdminError(0, 'network', 'Could not reach the Doodlebox server.');
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 401) {
    toLogin();
    throw new AdminError(401, 'unauthorized', 'Your session has ended; sign in again.');
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** JSON in, JSON out (null for an empty answer such as 204). */
export async function api(method, path, json, options = {}) {
  const response = await request(method, path, { ...options, json });
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new AdminError(response.status, 'bad_response', 'The server sent an answer that is not JSON.');
  }
}

export const get = (path, query) => api('GET', withQuery(path, query));
export const post = (path, json = {}) => api('POST', path, json);
export const put = (path, json) => api('PUT', path, json);
export const patch = (path, json) => api('PATCH', path, json);
export const del = (path) => api('DELETE', path);

/** How often a job started from the portal is asked how it is doing, in ms. */
const JOB_POLL_MS = 500;

/**
 * Follows a job from a 202 answer (`{id, kind, status}`) until it has finished, calling
 * `onChange(job)` on each look. Resolves with the completed job (its `result` is what the
 * work produced); a failed or cancelled job throws an AdminError with its reason.
 */
export async function followJob(accepted, onChange = () => {}) {
  for (;;) {
    const job = await get(`/jobs/${accepted.id}`);
    onChange(job);
    if (job.status === 'completed') return job;
    if (job.status === 'failed' || job.status === 'cancelled') {
      throw new AdminError(200, `job_${job.status}`, `The ${job.kind} job ${job.status}: ${job.error || 'no reason given'}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
  }
}
