// queue.js: sends drawings to the server reliably. Each drawing is written to the outbox
// (outbox-store.js) with its idempotency key before the first send; it leaves only when the
// server answers 201 or 200 (a replay), or a 4xx that sending again cannot fix. Everything else
// is retried with capped exponential backoff and jitter, or after the server's Retry-After.
// Sending resumes on page load, on the browser's 'online' event and when a drawing is added.
//
// Events (an EventTarget): 'item' {key, state:'waiting'|'saved'|'failed', id?, message?}
// and 'count' {count, online}.

import { ApiError, postDrawing } from './api.js';
import { openOutbox } from './outbox-store.js';

/** First retry delay; it doubles with every failure in a row. */
const BASE_DELAY_MS = 1000;
/** Longest wait between tries after network failures: short enough that a classroom whose
 *  Wi-Fi comes back sees its drawings saved within half a minute. */
const MAX_DELAY_MS = 30000;
/** Longest Retry-After honoured as given (a broken header must not park drawings for days). */
const MAX_RETRY_AFTER_MS = 10 * 60 * 1000;

/** "Equal jitter": half the delay fixed, half random, so a classroom does not retry in step. */
function backoff(failures) {
  const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, failures - 1));
  return delay / 2 + Math.random() * (delay / 2);
}

export function createQueue() {
  const events = new EventTarget();
  const emit = (type, detail) => events.dispatchEvent(new CustomEvent(type, { detail }));
  const storePromise = openOutbox();
  let running = false;
  let again = false;
  let failures = 0;       // failed sends in a row, for the backoff
  let holdUntil = 0;      // no sends before this time (ms since epoch)
  let holdByServer = false;
  let timer = null;

  async function reportCount() {
    const store = await storePromise;
    emit('count', { count: await store.count(), online: navigator.onLine });
  }

  function wakeAt(when) {
    clearTimeout(timer);
    timer = setTimeout(() => pump(), Math.max(0, when - Date.now()));
  }

  /** Sends one item; false when the server is unreachable or busy and the pump should stop. */
  async function send(store, item) {
    try {
      const answer = await postDrawing(item.key, item.body);
      await store.remove(item.key);
      failures = 0;
      holdByServer = false;
      emit('item', { key: item.key, state: 'saved', id: answer.id, duplicate: answer.status === 'duplicate' });
      return true;
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError(0, 'network', String(error));
      if (!apiError.retryable) {
        await store.remove(item.key);
        emit('item', { key: item.key, state: 'failed', message: apiError.message, code: apiError.code });
        return true;
      }
      failures += 1;
      holdByServer = apiError.retryAfter !== null;
      const wait = holdByServer
        ? Math.min(MAX_RETRY_AFTER_MS, apiError.retryAfter * 1000) + Math.random() * 1000
        : backoff(failures);
      holdUntil = Date.now() + wait;
      // Stored, so that a reload still honours what the server asked for.
      await store.put({ ...item, attempts: item.attempts + 1, nextAt: holdUntil, serverAsked: holdByServer });
      emit('item', { key: item.key, state: 'waiting', message: apiError.message });
      return false;
    }
  }

  /** Sends what is due, oldest first, one at a time. */
  async function pump() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const store = await storePromise;
      do {
        again = false;
        if (Date.now() < holdUntil) break;
        for (const item of await store.all()) {
          if (item.serverAsked && item.nextAt > Date.now()) continue;
          if (!(await send(store, item))) break;
        }
      } while (again && Date.now() >= holdUntil);
      // Wake for the first item that may go: after the hold, and after its own Retry-After.
      const left = await store.all();
      if (left.length) wakeAt(Math.min(...left.map((i) => (i.serverAsked ? Math.max(i.nextAt, holdUntil) : holdUntil))));
    } catch (error) {
      console.error('doodlebox: the outbox failed', error);
      wakeAt(Date.now() + MAX_DELAY_MS);
    } finally {
      running = false;
      reportCount();
    }
  }

  /** Try now, unless the server itself asked us to wait. */
  function kick() {
    if (!holdByServer) holdUntil = 0;
    pump();
  }

  window.addEventListener('online', kick);
  window.addEventListener('offline', reportCount);

  return {
    events,
    /** Stores the drawing durably, then starts sending it. Resolves once it is on disk. */
    async add(key, body) {
      const store = await storePromise;
      await store.put({ key, body, createdAt: Date.now(), attempts: 0, nextAt: 0, serverAsked: false });
      emit('item', { key, state: 'waiting' });
      reportCount();
      kick();
    },
    /** Starts sending whatever an earlier visit left behind. */
    start: kick,
    length: async () => (await storePromise).count(),
    storage: async () => (await storePromise).kind,
  };
}
