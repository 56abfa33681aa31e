// admin/ui.js: small helpers every screen shares: building elements, toasts (with an undo
// button), number/date/byte formats, and the "not available" and error notes.

import { formatDate, timeElement } from '../dates.js';

/** How long a toast stays, in ms (an undo toast stays longer). */
const TOAST_MS = 4000;
const UNDO_TOAST_MS = 8000;

/**
 * Builds an element: h('button', {type: 'button', onclick}, 'Text', child, ...).
 * Attributes starting with "on" become listeners; `dataset` and `style` objects are merged;
 * `false`, `null` and `undefined` attributes and children are skipped. Text is never HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset' || name === 'style') {
      Object.assign(el[name], value);
    } else if (name === 'className') {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A short message at the bottom of the screen; with `undo`, a button that calls it. */
export function toast(message, { undo, error = false } = {}) {
  const box = document.getElementById('toasts');
  // A modal dialog sits in the top layer, above everything else: toasts go inside it while
  // it is open (so its undo button stays reachable), and back to the page after.
  const host = document.querySelector('dialog[open]') || document.body;
  if (box.parentElement !== host) host.append(box);
  const item = h('div', { className: error ? 'toast error' : 'toast' }, h('span', {}, message));
  const close = () => item.remove();
  if (undo) {
    item.append(h('button', {
      type: 'button',
      onclick: async () => {
        close();
        await undo();
      },
    }, 'Undo'));
  }
  box.append(item);
  setTimeout(close, undo ? UNDO_TOAST_MS : TOAST_MS);
  return item;
}

/** Shows an AdminError (or any error) as an error toast. */
export function toastError(error) {
  toast(error && error.message ? error.message : String(error), { error: true });
}

/** The note a screen shows when its API route does not exist on this server yet. */
export function notAvailable(what) {
  return h('p', { className: 'note unavailable' },
    `${what} is not available on this server yet (its API answered 404). `,
    'It arrives with a newer Doodlebox; the rest of the portal works without it.');
}

/** The note a panel shows when loading failed. */
export function failed(error) {
  return h('p', { className: 'note error', role: 'alert' }, `Could not load this: ${error.message || error}`);
}

/** A panel: a titled card. */
export function panel(title, ...children) {
  return h('section', { className: 'panel' }, h('h2', {}, title), ...children);
}

const numberFormat = new Intl.NumberFormat();
/** 12,345 */
export const num = (n) => (n === null || n === undefined ? '–' : numberFormat.format(n));

/** 0.873 → "87.3%" */
export const pct = (x, digits = 1) =>
  (x === null || x === undefined || Number.isNaN(x) ? '–' : `${(x * 100).toFixed(digits)}%`);

/** The 95 % Wilson interval of `k` successes out of `n` (as the server computes it). */
function wilson(k, n) {
  if (!n) return [0, 1];
  const z = 1.959963984540054;
  const p = k / n;
  const z2 = z * z;
  const d = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** A model's accuracy with its 95 % interval and sample size: "75.0% (30.1–95.4%, n = 4)". */
export function accuracyText(metrics) {
  if (!metrics || metrics.accuracy === null || metrics.accuracy === undefined) return '–';
  const n = metrics.validation_samples;
  if (!n) return pct(metrics.accuracy);
  const [low, high] = metrics.accuracy_interval || wilson(Math.round(metrics.accuracy * n), n);
  return `${pct(metrics.accuracy)} (95% interval ${pct(low)}–${pct(high)}, n = ${n})`;
}

/**
 * Milliseconds since the epoch → `2026-12-01 14:05` (local) in a <time> with the ISO
 * timestamp on hover; `dateText` is the same words for inside a sentence.
 */
export const when = (ms) => timeElement(ms);
export const dateText = (ms) => formatDate(ms);

/** 1536 → "1.5 KiB" */
export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A labelled form field: <label>Text <input ...></label>. */
export function field(label, input) {
  return h('label', { className: 'field' }, h('span', {}, label), input);
}

/** Asks before something that is hard to undo. */
export const confirmed = (question) => window.confirm(question);
