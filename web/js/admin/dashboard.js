// admin/dashboard.js: the collection at a glance: headline figures, drawings per shape and
// per day as charts, the newest drawings as thumbnails, the active model, the latest
// training jobs and the quality histogram. Everything comes from GET /stats (one call) plus
// one page of GET /drawings for the thumbnails.

import { get } from './api.js';
import { barChart, lineChart } from './charts.js';
import { qualityPanel } from './quality.js';
import { h, panel, failed, num, pct, accuracyText, bytes, when } from './ui.js';

/** Thumbnails of the newest drawings on the dashboard. */
const RECENT = 12;
/** Days the per-day chart shows at most. */
const DAYS = 30;

function tile(label, value, href) {
  const inner = [h('span', { className: 'tile-value' }, value), h('span', { className: 'tile-label' }, label)];
  return href ? h('a', { className: 'tile', href }, ...inner) : h('div', { className: 'tile' }, ...inner);
}

/** The active model as a small card (or a note that none is active). */
export function modelSummary(model) {
  if (!model) return h('p', { className: 'note' }, 'No model is active: the game runs without guesses. Train one under Training.');
  const metrics = (model.manifest && model.manifest.metrics) || {};
  return h('dl', { className: 'facts' },
    h('dt', {}, 'Version'), h('dd', {}, model.version),
    h('dt', {}, 'Accuracy'), h('dd', {}, accuracyText(metrics)),
    h('dt', {}, 'Active since'), h('dd', {}, when(model.activated_at_ms)));
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
    job.model_version ? ` → ${job.model_version}` : '',
    h('span', { className: 'muted' }, ` · ${when(job.created_at_ms)}`));
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
  view.append(h('div', { className: 'tiles' },
    tile('drawings', num(stats.drawings), '#/review'),
    tile('players', num(stats.players), '#/players'),
    tile('flagged', num(stats.flagged), '#/review?flagged=true'),
    tile('reviewed', num(stats.reviewed), '#/review?reviewed=true'),
    tile('deleted (recoverable)', num(stats.deleted), '#/review?deleted=true'),
    tile('storage', bytes(stats.storage_bytes))));

  const shapes = stats.per_shape.map((s) => ({
    label: s.shape,
    value: s.count,
    parts: [
      { value: s.count - s.flagged, className: 'fill' },
      { value: s.flagged, className: 'fill flagged' },
    ],
  }));
  const perShape = panel('Drawings per shape',
    barChart('Drawings per shape (flagged part darker)', shapes, {
      onSelect: (bar) => { location.hash = `#/review?shape=${encodeURIComponent(bar.label)}`; },
    }),
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

  const jobs = stats.recent_jobs.length
    ? h('ul', { className: 'plain' }, stats.recent_jobs.map(jobLine))
    : h('p', { className: 'note' }, 'No training jobs yet.');
  const quality = qualityPanel();
  view.append(h('div', { className: 'columns' },
    perShape, perDay, recentPanel,
    panel('Active model', modelSummary(stats.active_model), h('p', {}, h('a', { href: '#/models' }, 'All models →'))),
    panel('Recent training jobs', jobs, h('p', {}, h('a', { href: '#/training' }, 'Training →'))),
    quality.element));
  return quality.stop;
}
