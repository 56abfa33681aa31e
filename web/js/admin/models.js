// admin/models.js: the model versions: accuracy, which is active, activate one, roll back
// to the previous one, delete an inactive one, and compare two side by side (accuracy and
// per-class precision/recall, with the differences).

import { get, post, del } from './api.js';
import { barChart } from './charts.js';
import { h, panel, failed, pct, accuracyText, when, toast, toastError, confirmed } from './ui.js';

function signed(x) {
  if (x === null || x === undefined) return '–';
  const text = `${(x * 100).toFixed(1)} pts`;
  return x > 0 ? `+${text}` : text;
}

export async function render(view) {
  view.append(h('h1', {}, 'Models'));
  let models;
  try {
    models = (await get('/models')).items;
  } catch (error) {
    view.append(failed(error));
    return null;
  }
  const reload = () => { view.replaceChildren(); render(view); };
  if (models.length === 0) {
    view.append(h('p', { className: 'note' }, 'No models yet. Start a training job under Training.'));
    return null;
  }

  const rows = models.map((m) => h('tr', { dataset: { version: m.version } },
    h('th', { scope: 'row' }, m.version, m.is_active ? h('span', { className: 'badge approved' }, 'active') : ''),
    h('td', {}, when(m.created_at_ms)),
    h('td', { className: 'n' }, accuracyText(m.manifest && m.manifest.metrics)),
    h('td', {}, m.job_id ? h('a', { href: `#/training?job=${m.job_id}` }, `job ${m.job_id}`) : '–'),
    h('td', {},
      m.is_active ? '' : h('button', {
        type: 'button',
        onclick: async () => {
          try {
            await post(`/models/${encodeURIComponent(m.version)}/activate`);
            toast(`${m.version} is now active.`);
            reload();
          } catch (error) {
            toastError(error);
          }
        },
      }, 'Activate'),
      m.is_active ? '' : h('button', {
        type: 'button',
        onclick: async () => {
          if (!confirmed(`Delete ${m.version} and its files for good?`)) return;
          try {
            await del(`/models/${encodeURIComponent(m.version)}`);
            reload();
          } catch (error) {
            toastError(error);
          }
        },
      }, 'Delete'))));
  view.append(panel('Versions',
    h('div', { className: 'table-wrap' }, h('table', { className: 'list', id: 'models' },
      h('thead', {}, h('tr', {}, ['Version', 'Trained', 'Accuracy', 'From', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))),
    h('button', {
      type: 'button',
      onclick: async () => {
        try {
          const answer = await post('/models/rollback');
          toast(`Rolled back to ${answer.active}.`);
          reload();
        } catch (error) {
          toastError(error);
        }
      },
    }, 'Roll back to the previous model')));

  const options = (selectedIndex) => models.map((m, i) => h('option', { value: m.version, selected: i === selectedIndex }, m.version));
  const a = h('select', { name: 'a' }, options(Math.min(1, models.length - 1)));
  const b = h('select', { name: 'b' }, options(0));
  const result = h('div', { id: 'compare-result' });
  const compare = async (event) => {
    if (event) event.preventDefault();
    try {
      const c = await get('/models/compare', { a: a.value, b: b.value });
      const bars = c.per_class.map((row) => ({ label: row.class, value: Math.abs(row.recall_delta || 0) }));
      result.replaceChildren(
        h('p', {}, `Accuracy: ${c.a} ${pct(c.accuracy.a)} → ${c.b} ${pct(c.accuracy.b)} (${signed(c.accuracy.delta)})`),
        h('div', { className: 'table-wrap' }, h('table', { className: 'list' },
          h('thead', {}, h('tr', {}, ['Shape', `Precision ${c.a}`, `Precision ${c.b}`, 'Δ', `Recall ${c.a}`, `Recall ${c.b}`, 'Δ']
            .map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, c.per_class.map((row) => h('tr', {},
            h('th', { scope: 'row' }, row.class),
            h('td', { className: 'n' }, pct(row.a && row.a.precision)),
            h('td', { className: 'n' }, pct(row.b && row.b.precision)),
            h('td', { className: `n ${row.precision_delta < 0 ? 'worse' : 'better'}` }, signed(row.precision_delta)),
            h('td', { className: 'n' }, pct(row.a && row.a.recall)),
            h('td', { className: 'n' }, pct(row.b && row.b.recall)),
            h('td', { className: `n ${row.recall_delta < 0 ? 'worse' : 'better'}` }, signed(row.recall_delta))))))),
        barChart('Size of the recall change per shape', bars, { format: (v) => pct(v, 0) }));
    } catch (error) {
      result.replaceChildren(failed(error));
    }
  };
  view.append(panel('Compare two models', h('form', { className: 'inline-form', onsubmit: compare },
    h('label', { className: 'field' }, h('span', {}, 'Model A'), a),
    h('label', { className: 'field' }, h('span', {}, 'Model B'), b),
    h('button', { type: 'submit' }, 'Compare')), result));
  if (models.length > 1) compare();
  return null;
}
