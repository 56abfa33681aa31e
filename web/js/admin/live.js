// admin/live.js: the portal's one live feed. Opens GET /api/v1/admin/events (Server-Sent
// Events) once per page and hands each notice to the screens that listen. EventSource
// reconnects by itself after a network drop or a server restart, sending the last id it
// heard: the server replays what was missed, or (a new page, a restart, too long away)
// sends a `resync` notice, on which screens refetch what they show. The server ends the
// stream when the session ends; the reconnection is then refused and we go to sign-in.

import { BASE, get } from './api.js';

/** Every notice the server sends. */
const TYPES = ['resync', 'drawings', 'flags', 'reviewed', 'threshold', 'model_activated', 'shapes', 'job'];
/** After the browser gave up reconnecting, how long to wait before checking the session. */
const RECHECK_MS = 3000;

const listeners = new Set();
let source = null;

function dispatch(type, data) {
  for (const listener of [...listeners]) {
    try {
      listener(type, data);
    } catch (error) {
      console.error('a live listener failed', error);
    }
  }
}

function open() {
  source = new EventSource(`${BASE}/events`);
  for (const type of TYPES) {
    source.addEventListener(type, (event) => {
      let data = {};
      try { data = JSON.parse(event.data); } catch { /* a notice without a body */ }
      dispatch(type, data);
    });
  }
  source.addEventListener('open', () => { document.documentElement.dataset.live = 'open'; });
  source.addEventListener('error', () => {
    document.documentElement.dataset.live = source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
    if (source.readyState !== EventSource.CLOSED) return;
    // Refused (401 after the session ended, or an error page): ask who we are; api.js
    // goes to sign-in on a 401, otherwise try the stream again.
    setTimeout(async () => {
      try {
        await get('/me');
        open();
      } catch { /* signed out: api.js has moved on to the sign-in page */ }
    }, RECHECK_MS);
  });
}

/**
 * Calls `listener(type, data)` for every notice (and `resync` on each (re)connection);
 * returns the function that stops it. The first listener opens the feed.
 */
export function onLive(listener) {
  listeners.add(listener);
  if (!source) open();
  return () => listeners.delete(listener);
}

/** Closes the feed (signing out). */
export function closeLive() {
  if (source) source.close();
  source = null;
}

/**
 * A refetch at most once per `ms` however many notices arrive: returns a function that
 * schedules `refresh`.
 */
export function debounced(refresh, ms = 300) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, ms);
  };
}
