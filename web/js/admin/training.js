// admin/training.js: training jobs. Start one (data source, network, epochs, batch size,
// learning rate, filters, and a subset for a quick iteration: drawings per shape, created from/to), list them, and watch one live through its Server-Sent Events stream
// (GET /training-jobs/{id}/events): a progress bar, loss and accuracy, a loss chart, a
// remaining time that counts down (then says "finishing"), and, once completed, a link to
// the model it produced. The job list follows the portal's live feed.

import { get, post, BASE } from './api.js';
import { lineChart } from './charts.js';
import { jobLine, modelLink } from './dashboard.js';
import { onLive, debounced } from './live.js';
import { h, panel, failed, field, num, pct, toast, toastError } from './ui.js';

/** Loss samples the live chart keeps. */
const LOSS_POINTS = 120;
/** How often the remaining time counts down, in ms. */
const TICK_MS = 1000;

/** "about 1 min 5 s left", or "finishing…" once the estimate has run out. */
export function remaining(secs) {
  if (!(secs > 0.5)) return 'finishing…';
  const s = Math.round(secs);
  return s >= 60 ? `about ${Math.floor(s / 60)} min ${s % 60} s left` : `about ${s} s left`;
}

function startForm(onStarted) {
  const epochs = h('input', { type: 'number', name: 'epochs', min: 1, max: 200, placeholder: 'default' });
  const batch = h('input', { type: 'number', name: 'batch_size', min: 1, max: 4096, placeholder: 'default' });
  const rate = h('input', { type: 'number', name: 'learning_rate', min: 0, step: 'any', placeholder: 'default' });
  const minQuality = h('input', { type: 'number', name: 'min_quality', min: 0, max: 1, step: 0.05, placeholder: 'none' });
  const perClassCap = h('input', { type: 'number', name: 'per_class_cap', min: 1, step: 1, placeholder: 'all' });
  const createdFrom = h('input', { type: 'date', name: 'created_from' });
  const createdTo = h('input', { type: 'date', name: 'created_to' });
  const source = h('select', { name: 'source' },
    h('option', { value: 'drawings' }, 'the collected drawings'),
    h('option', { value: 'synthetic' }, 'generated doodles (a starter model)'));
  // Left at "default", the server picks: the wide net for collected drawings, the small one
  // for generated doodles (the starter model's).
  const network = h('select', { name: 'architecture' },
    h('option', { value: '' }, 'default (wide for drawings)'),
    h('option', { value: 'wide' }, 'wide: more accurate, about 1.3 ms a guess'),
    h('option', { value: 'small' }, 'small: quicker to train, about 0.3 ms a guess'));
  const excludeFlagged = h('input', { type: 'checkbox', name: 'exclude_flagged', checked: true });
  return h('form', {
    className: 'inline-form',
    id: 'start-training',
    onsubmit: async (event) => {
      event.preventDefault();
      const config = { source: source.value, exclude_flagged: excludeFlagged.checked };
      if (network.value) config.architecture = network.value;
      if (epochs.value) config.epochs = Number(epochs.value);
      if (batch.value) config.batch_size = Number(batch.value);
      if (rate.value) config.learning_rate = Number(rate.value);
      if (minQuality.value) config.min_quality = Number(minQuality.value);
      if (perClassCap.value) config.per_class_cap = Number(perClassCap.value);
      // Dates are midnight UTC; "to" is exclusive, so the day chosen is the first left out.
      if (createdFrom.value) config.created_from = createdFrom.value;
      if (createdTo.value) config.created_to = createdTo.value;
      try {
        const answer = await post('/training-jobs', config);
        toast(answer.status === 'already_exists' ? `The same job is already queued (job ${answer.job.id}).` : `Job ${answer.job.id} started.`);
        onStarted(answer.job.id);
      } catch (error) {
        toastError(error);
      }
    },
  }, field('Train on', source), field('Network', network), field('Epochs', epochs), field('Batch size', batch), field('Learning rate', rate),
  field('Minimum quality', minQuality), field('At most per shape', perClassCap),
  field('Created from', createdFrom), field('Created before', createdTo),
  h('label', { className: 'check' }, excludeFlagged, ' Leave out flagged drawings'),
  h('button', { type: 'submit', className: 'primary' }, 'Start training'));
}

/** What a run really trains (a job's `progress.training`), in one line. */
function trainingText(t) {
  const parts = [`${t.architecture || 'small'} net`, `${num(t.epochs)} epoch${t.epochs === 1 ? '' : 's'} of batch ${num(t.batch_size)}`,
    `learning rate ${t.learning_rate}`];
  if (t.lr_schedule === 'cosine') parts.push('cosine decay');
  if (t.label_smoothing) parts.push(`label smoothing ${t.label_smoothing}`);
  if (t.weight_decay) parts.push(`weight decay ${t.weight_decay}`);
  parts.push(t.augment ? `augmented (rotation ±${t.augment_params.max_rotation_deg}°)` : 'not augmented');
  return `Trains: ${parts.join(' · ')}`;
}

/** Shapes the model did not learn: every drawing of them is held out for evaluation. */
function unlearnedNote(shapes) {
  const one = shapes.length === 1;
  return h('p', { id: 'job-unlearned' },
    `Not learned: ${shapes.join(', ')}. Every drawing of ${one ? 'this shape is' : 'these shapes is'} held out to `
    + `measure models, so ${one ? 'it' : 'they'} will be learned once a few more are drawn.`);
}

/** The live view of one job; returns {element, stop}. */
function watch(id) {
  const status = h('p', { className: 'job-status', id: 'job-status' }, `Job ${id}: connecting…`);
  const bar = h('progress', { max: 1, value: 0, id: 'job-progress', 'aria-label': `job ${id} progress` });
  const figures = h('p', { className: 'muted' });
  const eta = h('span', { id: 'job-eta' });
  const produced = h('p', { id: 'job-model' });
  const training = h('p', { className: 'muted', id: 'job-training' });
  // The estimate counts down between progress events: from `etaSecs` at `etaAt`.
  let etaSecs = null;
  let etaAt = 0;
  const ticker = setInterval(() => {
    if (etaSecs !== null) eta.textContent = ` · ${remaining(etaSecs - (Date.now() - etaAt) / 1000)}`;
  }, TICK_MS);
  const chart = h('div', { className: 'chart-slot' });
  const cancel = h('button', {
    type: 'button',
    onclick: async () => {
      try {
        await post(`/training-jobs/${id}/cancel`);
        toast('Cancel requested.');
      } catch (error) {
        toastError(error);
      }
    },
  }, 'Cancel job');
  const element = panel(`Job ${id}`, status, bar, h('p', { className: 'muted' }, figures, eta), training, produced, chart, cancel);
  const losses = [];
  const source = new EventSource(`${BASE}/training-jobs/${id}/events`);
  source.addEventListener('job', (event) => {
    const job = JSON.parse(event.data);
    const p = job.progress || {};
    const finished = ['completed', 'failed', 'cancelled'].includes(job.status);
    status.textContent = `Job ${id}: ${job.status}${job.model_version ? ` → model ${job.model_version}` : ''}${job.error ? ` (${job.error})` : ''}`;
    element.dataset.status = job.status;
    if (p.training) training.textContent = trainingText(p.training);
    if (p.epochs) {
      const done = ((p.epoch - 1) + p.step / Math.max(1, p.steps_per_epoch)) / p.epochs;
      bar.value = finished && job.status === 'completed' ? 1 : done;
      figures.textContent = `epoch ${p.epoch} of ${p.epochs}, step ${num(p.step)} of ${num(p.steps_per_epoch)} · `
        + `loss ${p.loss.toFixed(3)} · accuracy ${pct(p.accuracy)} · ${num(Math.round(p.samples_per_sec))} drawings/s`
        + (p.device ? ` on ${p.device === 'cpu' ? 'the CPU' : `GPU ${p.device}`}` : '');
      etaSecs = finished ? null : Number(p.eta_secs);
      etaAt = Date.now();
      eta.textContent = finished ? '' : ` · ${remaining(etaSecs)}`;
      losses.push({ label: `${p.epoch}.${p.step}`, value: p.loss });
      if (losses.length > LOSS_POINTS) losses.shift();
      chart.replaceChildren(lineChart('Training loss', losses, { format: (v) => v.toFixed(2) }));
    } else if (job.status === 'completed') {
      bar.value = 1;
    }
    if (finished) {
      cancel.hidden = true;
      source.close();
      clearInterval(ticker);
      etaSecs = null;
      eta.textContent = '';
      // The event names no model: the job row does.
      get(`/training-jobs/${id}`).then((row) => {
        if (row.model_version) {
          status.textContent = `Job ${id}: ${row.status}`;
          produced.replaceChildren('Produced model ', modelLink(row.model_version), '.');
        }
        const unlearned = (row.dataset && row.dataset.classes_only_in_evaluation) || [];
        if (unlearned.length) produced.after(unlearnedNote(unlearned));
      }).catch(() => {});
    }
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) status.textContent += ' (stream closed)';
  };
  return { element, stop: () => { source.close(); clearInterval(ticker); } };
}

export async function render(view, params) {
  view.append(h('h1', {}, 'Training'));
  let watching = null;
  const live = h('div', { id: 'job-live' });
  const list = h('ul', { className: 'plain', id: 'jobs' });
  const show = (id) => { location.hash = `#/training?job=${id}`; };
  view.append(panel('Start a training job', startForm(show)), live, panel('Jobs', list));
  if (params.get('job')) {
    watching = watch(Number(params.get('job')));
    live.append(watching.element);
  }
  const fill = (jobs) => {
    list.replaceChildren();
    if (jobs.items.length === 0) list.append(h('li', {}, 'No jobs yet.'));
    for (const job of jobs.items) list.append(jobLine(job));
  };
  const refresh = debounced(() => get('/training-jobs').then(fill).catch(() => {}));
  const stopLive = onLive((type, data) => {
    if (type === 'resync' || (type === 'job' && data.kind === 'train' && data.status !== 'running')) refresh();
  });
  try {
    const jobs = await get('/training-jobs');
    fill(jobs);
    if (!watching) {
      const running = jobs.items.find((j) => ['running', 'queued', 'pending'].includes(j.status));
      if (running) {
        watching = watch(running.id);
        live.append(watching.element);
      }
    }
  } catch (error) {
    list.replaceWith(failed(error));
  }
  return () => { stopLive(); if (watching) watching.stop(); };
}
