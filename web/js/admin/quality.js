// admin/quality.js: the quality panel (on the dashboard): the histogram of quality scores
// with the auto-flag threshold marked, the threshold setting, and the rescore walk with its
// progress. Degrades to a note where the quality routes are missing.

import { get, put, post } from './api.js';
import { histogram } from './charts.js';
import { h, panel, notAvailable, failed, toast, toastError, field, num } from './ui.js';

/** How often the rescore progress is asked for while a walk runs, in ms. */
const RESCORE_POLL_MS = 1000;

/** Builds the panel; returns {element, stop} (stop ends the progress polling). */
export function qualityPanel() {
  const body = h('div', { className: 'quality' }, h('p', { className: 'note' }, 'Loading…'));
  const element = panel('Quality of drawings', body);
  let timer = null;
  let stopped = false;

  async function load() {
    let data;
    let settings;
    try {
      [data, settings] = await Promise.all([get('/quality/histogram', { bins: 20 }), get('/settings/quality')]);
    } catch (error) {
      body.replaceChildren(error.missing ? notAvailable('Quality scoring') : failed(error));
      return;
    }
    const threshold = settings.auto_flag_below;
    const input = h('input', { type: 'number', min: 0, max: 1, step: 0.01, value: threshold, id: 'auto-flag-below' });
    const form = h('form', {
      className: 'inline-form',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const saved = await put('/settings/quality', { auto_flag_below: Number(input.value) });
          toast(`Auto-flag threshold saved; ${num(saved.reflagged ?? 0)} flags changed.`);
          load();
        } catch (error) {
          toastError(error);
        }
      },
    }, field('Auto-flag drawings scoring below', input), h('button', { type: 'submit' }, 'Save'));
    const progress = h('p', { className: 'note', id: 'rescore-progress' });
    const rescore = h('button', {
      type: 'button',
      onclick: async () => {
        try {
          showProgress(await post('/quality/rescore'));
          poll();
        } catch (error) {
          toastError(error);
        }
      },
    }, 'Rescore every drawing');
    body.replaceChildren(
      histogram('Drawings per quality score', data.bins, data.threshold),
      h('p', { className: 'note' }, `${num(data.unscored)} drawings not scored yet.`),
      form,
      h('div', { className: 'inline-form' }, rescore, progress),
    );

    function showProgress(p) {
      if (!p || !p.status || p.status === 'idle') {
        progress.textContent = '';
        return;
      }
      progress.textContent = p.status === 'running'
        ? `Rescoring: ${num(p.done)} of ${num(p.total)}…`
        : `Last rescore: ${p.status}, ${num(p.done)} of ${num(p.total)}.`;
    }
    async function poll() {
      if (stopped) return;
      try {
        const p = await get('/quality/rescore');
        showProgress(p);
        if (p.status === 'running') timer = setTimeout(poll, RESCORE_POLL_MS);
      } catch {
        progress.textContent = '';
      }
    }
    poll();
  }

  load();
  return {
    element,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
