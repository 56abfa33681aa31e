// guess.js: the machine's live guess while the player draws ("I see… circle?").
// It asks POST /api/v1/classify after each stroke and at most every MIN_INTERVAL_MS while
// drawing. Without an active model the server answers 503 no_active_model: the guess box is
// hidden and asked again at most once per round, so a model activated mid-game shows up.
// When the answer says `unsure`, the machine says it is not sure instead of naming a shape.
// The implementor page reuses it with its own `render` (bars rather than words) and no prompt.

import { classify } from './api.js';

/** Least time between two classify requests. */
const MIN_INTERVAL_MS = 400;
/** Pause after a network or server error, unless Retry-After says longer. */
const ERROR_PAUSE_MS = 3000;
/** From this confidence on, the machine says it knows. */
const SURE = 0.75;
/** Guesses below this confidence are not worth showing; at most SHOW_COUNT are. */
const SHOW_MIN = 0.05;
const SHOW_COUNT = 3;

const pointsIn = (body) => body.strokes.reduce((n, s) => n + s.points.length, 0);
const label = (shape) => shape.replace(/_/g, ' ');

/**
 * `el` shows the guess. Options: `render(el, result)` draws a classify answer into `el` in place
 * of the game's sentence.
 */
export function createGuesser(el, { render = null } = {}) {
  let available = null;     // null: not known yet; false: the server has no active model
  let checkedThisRound = false;
  let round = 0;
  let prompt = '';
  let inFlight = false;
  let lastSent = 0;
  let wanted = null;        // a function building the freshest drawing to classify
  let timer = null;
  let pausedUntil = 0;
  let last = null;          // {result, points}: the latest answer this round

  function say(parts, sure = false) {
    el.replaceChildren(...parts.map((p) => {
      if (typeof p === 'string') return document.createTextNode(p);
      const b = document.createElement('b');
      b.textContent = p.b;
      return b;
    }));
    el.classList.toggle('sure', sure);
    el.hidden = available !== true;
  }

  function show(result) {
    if (render) {
      render(el, result);
      el.hidden = false;
      return;
    }
    // The model declines to commit (a scribble, or not one of its shapes): name nothing.
    if (result.unsure) {
      say(['Hmm… I\'m not sure what that is.']);
      return;
    }
    const top = (result.top_k && result.top_k.length ? result.top_k : [{ shape: result.shape, confidence: result.confidence }])
      .slice()
      .sort((a, b) => b.confidence - a.confidence);
    if (top[0] && top[0].confidence >= SURE) {
      say(['Oh, I know! It\'s ', { b: label(top[0].shape) }, top[0].shape === prompt ? '!' : '.'], true);
      return;
    }
    const candidates = top.filter((g) => g.confidence >= SHOW_MIN).slice(0, SHOW_COUNT);
    if (!candidates.length) {
      say(['Hmm… I\'m not sure yet.']);
      return;
    }
    const parts = ['I see… '];
    candidates.forEach((g, i) => parts.push(...(i ? [' '] : []), { b: label(g.shape) }, '?'));
    say(parts);
  }

  function hide() {
    el.hidden = true;
  }

  let listening = false; // waiting for the browser to come back online

  async function ask(body) {
    checkedThisRound = true;
    const myRound = round;
    try {
      const result = await classify(body);
      available = true;
      delete el.dataset.offline;
      if (myRound === round) last = { result, points: pointsIn(body) };
      return result;
    } catch (error) {
      if (error.status === 503 && error.code === 'no_active_model') {
        available = false;
        hide();
      } else {
        // Unreachable, busy, or this drawing cannot be judged: let the server be for a moment.
        pausedUntil = Date.now() + Math.max(ERROR_PAUSE_MS, (error.retryAfter || 0) * 1000);
        if (!navigator.onLine || error.status === 0 || error.status === undefined) {
          // Offline: say so plainly instead of freezing on the last words.
          say(['I can\'t guess while we\'re offline. Keep drawing: guessing resumes when you\'re back online.']);
          el.dataset.offline = 'true';
          if (!listening) {
            listening = true;
            window.addEventListener('online', () => {
              listening = false;
              delete el.dataset.offline;
              pausedUntil = 0;
              if (available === true) say(['Back online! I\'m watching…']);
              flush();
            }, { once: true });
          }
        }
      }
      return null;
    }
  }

  async function flush() {
    if (!wanted || inFlight || (available === false && checkedThisRound) || Date.now() < pausedUntil) return;
    const wait = lastSent + MIN_INTERVAL_MS - Date.now();
    if (wait > 0) {
      if (!timer) timer = setTimeout(() => { timer = null; flush(); }, wait);
      return;
    }
    // Without a prompt (the implementor page) the drawing is sent as it is: `shape` is optional.
    const body = prompt ? { shape: prompt, ...wanted() } : wanted();
    wanted = null;
    if (!body.strokes.length) return;
    inFlight = true;
    lastSent = Date.now();
    const myRound = round;
    const result = await ask(body);
    inFlight = false;
    if (result && myRound === round) show(result);
    flush();
  }

  return {
    /** A new round: forget the last guess; without a model, allow one new check. */
    newRound(shape) {
      round += 1;
      prompt = shape;
      last = null;
      wanted = null;
      checkedThisRound = false;
      if (available === true) say(['I\'m watching… start drawing!']);
      else hide();
    },
    /** Asks for a guess about `build()` ({canvas, strokes, device}) soon, throttled; the newest drawing wins. */
    poke(build) {
      wanted = build;
      flush();
    },
    /** The guess for the finished drawing, for the summary: reuses the live one when it is current. */
    async final(body) {
      wanted = null;
      if (last && last.points === pointsIn(body)) return last.result;
      if (available === false && checkedThisRound) return null;
      return ask(body);
    },
    /** true, false (no active model) or null (not known yet). */
    available: () => available,
  };
}
