// api.js: the one place that talks to the Doodlebox server's JSON API.
// Every failure becomes an ApiError: status 0 for "could not reach the server", otherwise the
// HTTP status with the server's {"error":{"code","message"}} and any Retry-After, in seconds.

/** How long one request may take before it counts as a network failure. */
const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;         // 0 when no HTTP answer came back
    this.code = code;             // the server's snake_case code, or "network" / "http_<status>"
    this.retryAfter = retryAfter; // seconds the server asked us to wait, or null
  }

  /** Worth sending again later: no answer, a timeout, rate limiting or a server-side problem. */
  get retryable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Retry-After is either whole seconds or an HTTP date. */
export function parseRetryAfter(value) {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

async function call(method, path, { body, headers = {}, timeoutMs = TIMEOUT_MS } = {}) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let response;
  let text;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin', // the player's session cookie
      cache: 'no-store',
      headers: {
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
    });
    text = await response.text();
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the Doodlebox server.');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `The server answered ${response.status}.`,
      parseRetryAfter(response.headers.get('Retry-After')),
    );
  }
  if (data === null) {
    throw new ApiError(response.status, 'bad_response', 'The server sent an answer that is not JSON.');
  }
  return data;
}

/** Prompts wait briefly: offline, the game picks a shape itself rather than keep a player waiting. */
const PROMPT_TIMEOUT_MS = 4000;

/** {shape, description, difficulty}: what to draw next. */
export const getPrompt = () => call('GET', '/api/v1/prompt', { timeoutMs: PROMPT_TIMEOUT_MS });

/** {shapes:[{name, description, difficulty}]}. */
export const getShapes = () => call('GET', '/api/v1/shapes', { timeoutMs: PROMPT_TIMEOUT_MS });

/** {id, status:"created"|"duplicate"}. The key is made when the drawing starts. */
export const postDrawing = (idempotencyKey, drawing) =>
  call('POST', '/api/v1/drawings', { body: drawing, headers: { 'Idempotency-Key': idempotencyKey }, timeoutMs: 30000 });

/** {shape, confidence, top_k:[{shape, confidence}], model_version}; 503 no_active_model without a model. */
export const classify = (drawing) => call('POST', '/api/v1/classify', { body: drawing, timeoutMs: 5000 });

/** {urls:[...], qr_svg:"<svg…>"} for the classroom join page. */
export const getJoin = () => call('GET', '/api/v1/join');

/** Sets the player's optional nickname (1 to 40 characters). */
export const putPlayer = (nickname) => call('PUT', '/api/v1/player', { body: { nickname } });

/** The active model's card; 503 no_active_model without one. */
export const getModel = () => call('GET', '/api/v1/model');

/** The OpenAPI 3.1 document of the public API. */
export const getOpenApi = () => call('GET', '/api/v1/openapi.json');
