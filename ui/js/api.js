// api.js — the page's only way to aigw: fetch() to the admin API, /metrics and /ui/api/, with
// the session cookie (same origin) and, on every call that changes something, the CSRF token
// the login gave (kept in this module's memory only). Every call is bounded in time.
let csrfToken = null;
let onSessionLost = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrf(token) { csrfToken = token; }
export function whenSessionLost(fn) { onSessionLost = fn; }

const TIMEOUT_MS = 15000;

// call('POST', '/admin/keys', {…}) → the parsed JSON answer; throws ApiError with aigw's
// message (OpenAI's error shape) when the status is not 2xx. opts.text: the body as text.
export async function call(method, path, body, opts = {}) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-AIGW-CSRF'] = csrfToken;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store', signal: ctl.signal });
  } catch (e) {
    throw new ApiError(0, 'network', e.name === 'AbortError' ? `aigw did not answer ${path} within ${TIMEOUT_MS / 1000} s` : `aigw cannot be reached: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text || res.statusText;
    let code = null;
    try {
      const j = JSON.parse(text);
      message = j.error?.message ?? message;
      code = j.error?.code ?? null;
    } catch { /* not JSON: the text as it is */ }
    if (res.status === 401 && !path.startsWith('/ui/api/login')) onSessionLost();
    throw new ApiError(res.status, code, message);
  }
  if (opts.text) return text;
  return text ? JSON.parse(text) : null;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body ?? {});
export const patch = (path, body) => call('PATCH', path, body);
export const del = (path) => call('DELETE', path);
export const enc = encodeURIComponent;
