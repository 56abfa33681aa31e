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
    // The server names the net in the training form's words (`small`, `wide`).
    h('td', {}, m.network || (m.manifest && m.manifest.architecture) || '–'),
    h('td', {}, m.job_id ? h('a', { href: `#/training?job=${m.job_id}` }, `job ${m.job_id}`) : '–'),
    h('td', {},
      m.is_active ? '' : h('button', {
        type: 'button',
        onclick: async () => {
          const path = `/models/${encodeURIComponent(m.version)}/activate`;
          try {
            await post(path);
            toast(`${m.version} is now active.`);
            reload();
          } catch (error) {
            // Significantly worse than the active model: say so, activate only if confirmed.
            if (error.code === 'significantly_worse' && confirmed(`${error.message}\n\nActivate ${m.version} anyway?`)) {
              try {
                await post(`${path}?force=true`);
                toast(`${m.version} is now active.`);
                reload();
              } catch (again) {
                toastError(again);
              }
              return;
            }
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
      h('thead', {}, h('tr', {}, ['Version', 'Trained', 'Accuracy', 'Network', 'From', ''].map((t) => h('th', { scope: 'col' }, t)))),
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
      const p = c.paired;
      const arrow = { up: '▲', down: '▼', same: '=' };
      const paired = p
        ? [
          h('p', { id: 'paired-summary' }, `On the evaluation split (${p.drawings} held-out drawings of the ${p.classes.length} shapes both know, split by ${p.rule === 'by_player' ? 'player' : 'drawing'}): `
            + `${c.a} ${pct(p.a_accuracy)} (${pct(p.a_interval[0])}–${pct(p.a_interval[1])}) → ${c.b} ${pct(p.b_accuracy)} (${pct(p.b_interval[0])}–${pct(p.b_interval[1])}). `
            + `Only ${c.a} right: ${p.a_only}, only ${c.b} right: ${p.b_only}; McNemar p = ${p.p_value.toPrecision(2)}: `
            + (p.significant ? `${c.b} is significantly ${p.verdict}.` : 'no significant difference.')),
          h('div', { className: 'table-wrap' }, h('table', { className: 'list', id: 'paired-classes' },
            h('thead', {}, h('tr', {}, ['Shape', 'Drawings', `Recall ${c.a}`, `Recall ${c.b}`, 'Change']
              .map((t) => h('th', { scope: 'col' }, t)))),
            h('tbody', {}, p.per_class.map((row) => h('tr', {},
              h('th', { scope: 'row' }, row.class),
              h('td', { className: 'n' }, String(row.drawings)),
              h('td', { className: 'n' }, pct(row.a_recall)),
              h('td', { className: 'n' }, pct(row.b_recall)),
              h('td', { className: `n ${row.direction === 'down' ? 'worse' : 'better'}` }, `${arrow[row.direction]} ${signed(row.delta)}`)))))),
        ]
        : [h('p', { className: 'note' }, 'The evaluation split holds no drawings of the shapes both models know yet.')];
      // Signed bars: a recall that went down shows as a negative value, not only as a size.
      const bars = c.per_class.map((row) => ({ label: `${row.class} ${row.recall_delta < 0 ? '▼' : '▲'}`, value: Math.abs(row.recall_delta || 0) }));
      result.replaceChildren(
        ...paired,
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
        barChart('Recall change per shape (▲ up, ▼ down; validation sets of each model)', bars, { format: (v) => pct(v, 0) }));
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
