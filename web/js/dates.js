// dates.js: the one way Doodlebox pages show a moment: `2026-12-01 14:05` in the viewer's
// local time, with the full ISO 8601 timestamp on hover. Used by the admin portal and
// /implement so dates read the same everywhere.

const pad = (n) => String(n).padStart(2, '0');

/** A Date from milliseconds since the epoch or an ISO string; null when there is none. */
function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "2026-12-01 14:05" in local time, or "–". */
export function formatDate(value) {
  const d = toDate(value);
  if (!d) return '–';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The full ISO 8601 timestamp (UTC), or "". */
export function isoDate(value) {
  const d = toDate(value);
  return d ? d.toISOString() : '';
}

/** A <time> element showing formatDate, with the ISO timestamp as its datetime and title. */
export function timeElement(value) {
  const el = document.createElement('time');
  el.textContent = formatDate(value);
  const iso = isoDate(value);
  if (iso) {
    el.dateTime = iso;
    el.title = iso;
  }
  return el;
}
