// admin/dashboard.js: the collection at a glance: headline figures, drawings per shape and
// per day as charts, the newest drawings as thumbnails, the active model, the latest
// training jobs and the quality histogram. Everything comes from GET /stats (one call) plus
// one page of GET /drawings for the thumbnails. The live feed keeps it current: a
// `drawings` notice adds to the count in place (no request); other changes refetch /stats.

import { get } from './api.js';
import { onLive, debounced } from './live.js';
import { barChart, lineChart } from './charts.js';
import { qualityPanel } from './quality.js';
import { h, panel, failed, num, pct, accuracyText, bytes, when } from './ui.js';

/** Thumbnails of the newest drawings on the dashboard. */
const RECENT = 12;
/** Days the per-day chart shows at most. */
const DAYS = 30;

function tile(label, value, href) {
  const inner = [h('span', { className: 'tile-value' }, value), h('span', { className: 'tile-label' }, label)];
  const attrs = { className: 'tile', dataset: { tile: label.split(' ')[0] } };
  return href ? h('a', { ...attrs, href }, ...inner) : h('div', attrs, ...inner);
}

/** Job statuses after which the job no longer changes. */
const FINISHED = ['completed', 'failed', 'cancelled'];

/** The active model as a small card (or a note that none is active). */
export function modelSummary(model) {
  if (!model) return h('p', { className: 'note' }, 'No model is active: the game runs without guesses. Train one under Training.');
  const metrics = (model.manifest && model.manifest.metrics) || {};
  // `when` is the shared date format; the ISO timestamp is in its title.
  return h('dl', { className: 'facts' },
    h('dt', {}, 'Version'), h('dd', {}, model.version),
    h('dt', {}, 'Accuracy'), h('dd', {}, accuracyText(metrics)),
    h('dt', {}, 'Active since'), h('dd', {}, when(model.activated_at_ms)));
}

/** A link to a model's card in the Models screen. */
export function modelLink(version) {
  return h('a', { href: `#/models?version=${encodeURIComponent(version)}`, className: 'model-link' }, version);
}

/** One training job as a list row: status, progress, model. */
export function jobLine(job) {
  const p = job.progress || {};
  const progress = job.status === 'running' && p.epochs
    ? ` — epoch ${p.epoch}/${p.epochs}, step ${num(p.step)}/${num(p.steps_per_epoch)}`
    : '';
  return h('li', {},
    h('a', { href: `#/training?job=${job.id}` }, `Job ${job.id}`), ' ',
    h('span', { className: `status status-${job.status}` }, job.status), progress,
    job.model_version ? [' → model ', modelLink(job.model_version)] : '',
    h('span', { className: 'muted' }, ' · ', when(job.created_at_ms)));
}

function tiles(stats) {
  return h('div', { className: 'tiles', id: 'tiles' },
    tile('drawings', num(stats.drawings), '#/review'),
    tile('players', num(stats.players), '#/players'),
    tile('flagged', num(stats.flagged), '#/review?flagged=true'),
    tile('reviewed', num(stats.reviewed), '#/review?reviewed=true'),
    tile('deleted (recoverable)', num(stats.deleted), '#/review?deleted=true'),
    tile('storage', bytes(stats.storage_bytes)),
    ...(stats.backup_bytes ? [tile('backups', bytes(stats.backup_bytes), '#/data')] : []));
}

function shapeChart(stats) {
  const shapes = stats.per_shape.map((s) => ({
    label: s.shape,
    value: s.count,
    parts: [
      { value: s.count - s.flagged, className: 'fill' },
      { value: s.flagged, className: 'fill flagged' },
    ],
  }));
  return barChart('Drawings per shape (flagged part darker)', shapes, {
    onSelect: (bar) => { location.hash = `#/review?shape=${encodeURIComponent(bar.label)}`; },
  });
}

function jobList(stats) {
  return stats.recent_jobs.length
    ? h('ul', { className: 'plain', id: 'recent-jobs' }, stats.recent_jobs.map(jobLine))
    : h('p', { className: 'note', id: 'recent-jobs' }, 'No training jobs yet.');
}

export async function render(view) {
  view.append(h('h1', {}, 'Dashboard'));
  let stats;
  try {
    stats = await get('/stats');
  } catch (error) {
    view.append(failed(error));
    return null;
  }
  let tileBox = tiles(stats);
  view.append(tileBox);

  let chart = shapeChart(stats);
  const perShape = panel('Drawings per shape', chart,
    h('p', { className: 'legend' }, h('span', { className: 'swatch fill' }), ' kept ', h('span', { className: 'swatch flagged' }), ' flagged'));
  perShape.id = 'chart-per-shape';
  const days = stats.per_day.slice(-DAYS).map((d) => ({ label: d.day.slice(5), value: d.count }));
  const perDay = panel('Drawings per day', days.length
    ? lineChart('Drawings per day', days)
    : h('p', { className: 'note' }, 'No drawings yet.'));
  perDay.id = 'chart-per-day';

  const recent = h('ul', { className: 'strip' });
  const recentPanel = panel('Newest drawings', recent,
    h('p', {}, h('a', { href: '#/review' }, 'Review all drawings →')));
  get('/drawings', { limit: RECENT }).then((page) => {
    if (page.items.length === 0) recent.replaceWith(h('p', { className: 'note' }, 'No drawings yet.'));
    for (const item of page.items) {
      recent.append(h('li', {}, h('a', { href: `#/review?open=${item.id}`, title: `${item.shape} by ${item.nickname || 'a player'}` },
        h('img', { src: `${item.thumbnail_url}?size=96`, alt: `a ${item.shape}`, width: 96, height: 96, loading: 'lazy' }))));
    }
  }).catch((error) => recent.replaceWith(failed(error)));

  let jobs = jobList(stats);
  let model = modelSummary(stats.active_model);
  const quality = qualityPanel();
  view.append(h('div', { className: 'columns' },
    perShape, perDay, recentPanel,
    panel('Active model', model, h('p', {}, h('a', { href: '#/models' }, 'All models →'))),
    panel('Recent training jobs', jobs, h('p', {}, h('a', { href: '#/training' }, 'Training →'))),
    quality.element));

  // Live: refetch the figures (debounced) on changes; patch the drawing count in place.
  const refresh = debounced(async () => {
    try {
      const fresh = await get('/stats');
      stats = fresh;
      const next = [tiles(fresh), shapeChart(fresh), jobList(fresh), modelSummary(fresh.active_model)];
      tileBox.replaceWith(next[0]); chart.replaceWith(next[1]); jobs.replaceWith(next[2]); model.replaceWith(next[3]);
      [tileBox, chart, jobs, model] = next;
    } catch { /* the next notice or resync tries again */ }
  });
  const stop = onLive((type, data) => {
    if (type === 'drawings') {
      stats.drawings += data.added || 0;
      const value = tileBox.querySelector('[data-tile="drawings"] .tile-value');
      if (value) value.textContent = num(stats.drawings);
    } else if (type === 'job') {
      if (FINISHED.includes(data.status) || data.status === 'queued') refresh();
    } else if (type !== 'shapes') {
      refresh();
    }
  });
  return () => { stop(); if (quality.stop) quality.stop(); };
}
