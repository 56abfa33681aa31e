// admin/data.js: moving data in and out. Export downloads per format (with an optional
// shape filter; the file name the server gives says what is inside, and a refusal is shown
// here rather than saved as a file), import of an ndjson file streamed to the server with upload
// progress, a backup of the data directory into the server's backup folder, a check of the live
// stores, and the purge of long-deleted drawings.

import { get, post, BASE, withQuery, toLogin, followJob } from './api.js';
import { h, panel, failed, field, num, bytes, toast, toastError, confirmed } from './ui.js';

/** The export formats (issue #6): what each link's query names, and what people call it. */
const FORMATS = [
  ['quickdraw-raw', 'Quick, Draw! raw (ndjson)'],
  ['quickdraw-simplified', 'Quick, Draw! simplified (ndjson)'],
  ['npy', 'NumPy bitmaps (.npy; every shape: one .npz)'],
  ['jsonl', 'Doodlebox JSON lines'],
];

/** The file name in a Content-Disposition header, or `fallback`. */
function fileName(response, fallback) {
  const header = response.headers.get('Content-Disposition') || '';
  const match = /filename="([^"]+)"/.exec(header);
  return match ? match[1] : fallback;
}

/** Fetches an export; saves it under the server's name, or shows why it failed. */
async function download(href, status) {
  status.className = 'note';
  status.textContent = 'Preparing the export…';
  let response;
  try {
    response = await fetch(href, { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    status.className = 'note error';
    status.textContent = 'Export failed: could not reach the Doodlebox server.';
    return;
  }
  if (response.status === 401) {
    toLogin();
    return;
  }
  if (!response.ok) {
    let message = `the server answered ${response.status}`;
    try { message = (await response.json()).error.message || message; } catch { /* not JSON */ }
    status.className = 'note error';
    status.setAttribute('role', 'alert');
    status.textContent = `Export failed: ${message}`;
    return;
  }
  const name = fileName(response, 'doodlebox-export');
  let blob;
  try {
    blob = await response.blob();
  } catch {
    status.className = 'note error';
    status.textContent = `Export failed midway: ${name} is incomplete; try again.`;
    return;
  }
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  status.textContent = `Saved ${name} (${bytes(blob.size)}).`;
  status.dataset.file = name;
}

function exportPanel(shapes) {
  const shape = h('select', { name: 'shape' }, h('option', { value: '' }, 'every shape'), shapes.map((s) => h('option', { value: s }, s)));
  const flagged = h('input', { type: 'checkbox', checked: true });
  const links = h('ul', { className: 'plain', id: 'export-links' });
  const status = h('p', { className: 'note', id: 'export-status', 'aria-live': 'polite' });
  const update = () => {
    links.replaceChildren(...FORMATS.map(([format, label]) => {
      const href = withQuery(`${BASE}/export`, { format, shape: shape.value, flagged: flagged.checked ? 'false' : '' });
      return h('li', {},
        h('a', {
          className: 'button',
          href,
          dataset: { format },
          onclick: (event) => {
            event.preventDefault();
            download(href, status);
          },
        }, `Download ${label}`));
    }));
  };
  shape.addEventListener('change', update);
  flagged.addEventListener('change', update);
  update();
  return panel('Export',
    h('p', { className: 'note' }, 'Deleted drawings are never exported.'),
    h('div', { className: 'inline-form' }, field('Shape', shape), h('label', { className: 'check' }, flagged, ' Leave out flagged drawings')),
    links, status);
}

function importPanel() {
  const file = h('input', { type: 'file', accept: '.ndjson,.jsonl,.json,application/x-ndjson', required: true, id: 'import-file' });
  const createShapes = h('input', { type: 'checkbox' });
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'upload progress' });
  const report = h('div', { id: 'import-report' });
  const form = h('form', { className: 'inline-form' },
    field('ndjson file', file),
    h('label', { className: 'check' }, createShapes, ' Create shapes the file names that do not exist yet'),
    h('button', { type: 'submit', className: 'primary' }, 'Import'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    // XMLHttpRequest rather than fetch: it reports upload progress. The file is streamed
    // from disk by the browser, never read into memory here.
    const xhr = new XMLHttpRequest();
    xhr.open('POST', withQuery(`${BASE}/import`, { create_shapes: createShapes.checked ? 'true' : 'false' }));
    xhr.setRequestHeader('Content-Type', 'application/x-ndjson');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress.value = e.loaded / e.total;
    };
    xhr.onload = () => {
      progress.hidden = true;
      if (xhr.status === 401) return toLogin();
      let answer = null;
      try { answer = JSON.parse(xhr.responseText); } catch { answer = null; }
      if (xhr.status === 404) {
        report.replaceChildren(h('p', { className: 'note unavailable' }, 'Import is not available on this server yet (404).'));
      } else if (xhr.status >= 400 || !answer) {
        report.replaceChildren(h('p', { className: 'note error', role: 'alert' },
          (answer && answer.error && answer.error.message) || `The server answered ${xhr.status}.`));
      } else {
        // 202: the server keeps the file and imports it as a job; follow it to its report.
        report.replaceChildren(h('p', { className: 'note' }, `Uploaded; importing (job ${answer.id})…`));
        followJob(answer, (job) => {
          const p = job.progress;
          if (p && job.status === 'running') {
            report.replaceChildren(h('p', { className: 'note' }, `Importing… ${num(p.imported)} drawings so far.`));
          }
        }).then((job) => showReport(job.result), (error) => report.replaceChildren(failed(error)));
      }
    };
    const showReport = (answer) => {
      const bad = answer.bad_lines || [];
      report.replaceChildren(h('p', {}, `Imported ${num(answer.imported)} drawings; ${num(answer.skipped_duplicates)} were already here; `
        + `${num(answer.bad_line_count ?? bad.length)} lines were not drawings.`
        + (answer.created_shapes && answer.created_shapes.length ? ` New shapes: ${answer.created_shapes.join(', ')}.` : '')),
      bad.length ? h('ul', { className: 'plain' }, bad.slice(0, 20).map((b) => h('li', {}, `line ${b.line}: ${b.error}`))) : '');
    };
    xhr.onerror = () => {
      progress.hidden = true;
      report.replaceChildren(h('p', { className: 'note error', role: 'alert' }, 'Could not reach the Doodlebox server.'));
    };
    progress.hidden = false;
    progress.value = 0;
    report.replaceChildren(h('p', { className: 'note' }, `Sending ${bytes(chosen.size)}…`));
    xhr.send(chosen);
  });
  return panel('Import', h('p', { className: 'note' }, 'Quick, Draw! raw or simplified ndjson, or Doodlebox JSON lines. Lines already imported are skipped.'),
    form, progress, report);
}

function backupPanel() {
  // The server writes backups only into its backup folder (<data>/backups or --backup-dir):
  // the form names the new folder, never a path. Empty: a timestamped name.
  const name = h('input', { type: 'text', name: 'name', placeholder: 'before-the-workshop', size: 24 });
  const out = h('div', { id: 'backup-report' });
  const verifyOut = h('div', { id: 'verify-report' });
  return panel('Backup and checks',
    h('form', {
      className: 'inline-form',
      onsubmit: async (event) => {
        event.preventDefault();
        out.replaceChildren(h('p', { className: 'note' }, 'Backing up…'));
        try {
          // 202 with a backup job: follow it; its result is the backup's manifest.
          const body = name.value.trim() ? { name: name.value.trim() } : {};
          const job = await followJob(await post('/backup', body), (j) => {
            if (j.progress && j.progress.line) out.replaceChildren(h('p', { className: 'note' }, `Backing up… ${j.progress.line}`));
          });
          const manifest = job.result;
          out.replaceChildren(h('p', {}, `Backup written to the folder ${job.config.name} in the server's backup directory.`),
            h('pre', { className: 'small' }, JSON.stringify(manifest, null, 2).slice(0, 2000)));
        } catch (error) {
          out.replaceChildren(failed(error));
        }
      },
    }, field('Folder name in the backup directory (optional)', name), h('button', { type: 'submit' }, 'Back up now')),
    out,
    h('div', { className: 'inline-form' },
      h('button', {
        type: 'button',
        id: 'verify-stores',
        onclick: async () => {
          verifyOut.replaceChildren(h('p', { className: 'note' }, 'Checking the stores…'));
          try {
            // 202 with a verify job: follow it, showing how far the walk has come.
            const job = await followJob(await post('/verify'), (j) => {
              const p = j.progress;
              if (p && j.status === 'running' && p.phase === 'database') {
                verifyOut.replaceChildren(h('p', { className: 'note' }, 'Checking the database\'s integrity… (minutes with millions of drawings)'));
              } else if (p && j.status === 'running') {
                const bar = h('progress', { max: Math.max(p.rows_total, 1), value: Math.min(p.rows, p.rows_total) });
                verifyOut.replaceChildren(h('p', { className: 'note' }, `Checking the stores… ${num(p.rows)} of ${num(p.rows_total)} drawings, ${num(p.records)} stroke records read.`), bar);
              }
            });
            const report = job.result;
            const problems = report.problems || [];
            verifyOut.replaceChildren(h('p', {}, problems.length ? `${problems.length} problems found:`
              : `The stores are whole: ${num(report.rows)} drawings and ${num(report.records)} stroke records checked, no problems found.`),
              problems.length ? h('ul', {}, problems.map((p) => h('li', {}, typeof p === 'string' ? p : JSON.stringify(p)))) : '');
          } catch (error) {
            verifyOut.replaceChildren(failed(error));
          }
        },
      }, 'Check the stores'),
      h('button', {
        type: 'button',
        onclick: async () => {
          if (!confirmed('Delete for good the drawings deleted longer ago than the configured days?')) return;
          try {
            const answer = await post('/drawings/purge');
            toast(`Purged ${num(answer.purged)} drawings for good.`);
          } catch (error) {
            toastError(error);
          }
        },
      }, 'Purge old deleted drawings')),
    verifyOut);
}

export async function render(view) {
  view.append(h('h1', {}, 'Data'));
  let shapes = [];
  try {
    shapes = (await get('/stats')).per_shape.map((s) => s.shape);
  } catch {
    shapes = [];
  }
  view.append(h('div', { className: 'columns' }, exportPanel(shapes), importPanel(), backupPanel()));
  return null;
}
