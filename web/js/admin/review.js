// admin/review.js: the review screen. Filters (kept in the hash), a grid of server-rendered
// thumbnails driven by the keyboard (arrows/j/k move, a approve, f flag, d delete with an
// undo toast, u unflag or restore, x select, Enter details, ? help, Esc close) or by touch
// (a tap opens, a long press or the Select toggle starts selecting), bulk actions on the
// selection, and a detail dialog that replays the drawing and can make it its shape's
// picture.

import { get, post, put, del } from './api.js';
import { onLive } from './live.js';
import { Replay } from './replay.js';
import { h, toast, toastError, failed, field, num, when, dateText, pct } from './ui.js';

/** Drawings fetched per page. */
const PAGE = 60;
/** Thumbnail size asked of the server (CSS shows it at about half on high-DPI screens). */
const THUMB = 160;
/** The detail canvas, in device pixels. */
const REPLAY_SIZE = 480;
/** Filter parameters kept in the hash and passed to the API as they are. */
const PASS_THROUGH = ['shape', 'flagged', 'reviewed', 'deleted', 'min_quality', 'max_quality', 'player'];
/** How long a finger rests on a drawing before it is selected (ms): the platforms' long press. */
const LONG_PRESS_MS = 500;
/** How far (CSS px) a finger may drift during a long press: any further is a scroll. */
const PRESS_SLOP = 10;

const SHORTCUTS = [
  ['← → ↑ ↓, j / k', 'move between drawings'],
  ['a', 'approve (reviewed, not flagged)'],
  ['f', 'flag'],
  ['d', 'delete (soft; undo from the message, or restore later)'],
  ['u', 'unflag, or restore a deleted drawing'],
  ['x', 'select for a bulk action (by touch: a long press, or the Select button)'],
  ['Enter', 'open the detail view with the replay'],
  ['Space', 'play or pause the replay (in the detail view)'],
  ['Esc', 'close the detail or this help; clear the selection'],
  ['?', 'show or hide this help'],
];

/** "2026-11-29" (local) → ms at its start; `end` → ms at its last millisecond. */
function dayToMs(day, end = false) {
  const [y, m, d] = day.split('-').map(Number);
  if (!y || !m || !d) return '';
  const start = new Date(y, m - 1, d).getTime();
  return end ? start + 24 * 3600 * 1000 - 1 : start;
}

/** The API query for the filters in the hash. */
function apiQuery(params) {
  const query = {};
  for (const name of PASS_THROUGH) if (params.get(name)) query[name] = params.get(name);
  if (params.get('from')) query.from = dayToMs(params.get('from'));
  if (params.get('to')) query.to = dayToMs(params.get('to'), true);
  return query;
}

async function shapeNames() {
  try {
    const admin = await get('/shapes');
    return admin.items.map((s) => s.name);
  } catch {
    try {
      const response = await fetch('/api/v1/shapes', { credentials: 'same-origin' });
      return (await response.json()).shapes.map((s) => s.name);
    } catch {
      return [];
    }
  }
}

function select(name, current, options) {
  return h('select', { name, id: `filter-${name}` },
    options.map(([value, label]) => h('option', { value, selected: value === current }, label)));
}

function filterForm(params, shapes) {
  const value = (name) => params.get(name) || '';
  const form = h('form', { className: 'filters', id: 'filters' },
    field('Shape', select('shape', value('shape'), [['', 'any shape'], ...shapes.map((s) => [s, s])])),
    field('Flagged', select('flagged', value('flagged'), [['', 'any'], ['true', 'flagged'], ['false', 'not flagged']])),
    field('Reviewed', select('reviewed', value('reviewed'), [['', 'any'], ['true', 'reviewed'], ['false', 'not reviewed']])),
    field('Deleted', select('deleted', value('deleted'), [['', 'hide deleted'], ['true', 'only deleted'], ['any', 'show all']])),
    field('Quality from', h('input', { type: 'number', name: 'min_quality', min: 0, max: 1, step: 0.05, value: value('min_quality') })),
    field('Quality to', h('input', { type: 'number', name: 'max_quality', min: 0, max: 1, step: 0.05, value: value('max_quality') })),
    field('Player id', h('input', { type: 'text', name: 'player', value: value('player'), pattern: '[0-9a-f]{32}', size: 12, placeholder: '32 hex digits' })),
    field('Drawn from', h('input', { type: 'date', name: 'from', value: value('from') })),
    field('Drawn to', h('input', { type: 'date', name: 'to', value: value('to') })),
    h('div', { className: 'filter-buttons' },
      h('button', { type: 'submit', className: 'primary' }, 'Apply'),
      h('button', { type: 'button', onclick: () => { location.hash = '#/review'; } }, 'Clear')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, v] of new FormData(form)) if (v) query.set(name, String(v).trim());
    const text = query.toString();
    location.hash = `#/review${text ? `?${text}` : ''}`;
  });
  return form;
}

/** Badges on a thumbnail: what state the drawing is in. */
function badges(item) {
  const out = [];
  if (item.deleted_at) out.push(h('span', { className: 'badge deleted' }, 'deleted'));
  if (item.is_flagged) out.push(h('span', { className: 'badge flagged' }, 'flagged'));
  else if (item.reviewed_at) out.push(h('span', { className: 'badge approved' }, 'approved'));
  return out;
}

function describe(item) {
  const state = [item.deleted_at && 'deleted', item.is_flagged && 'flagged', !item.is_flagged && item.reviewed_at && 'approved']
    .filter(Boolean).join(', ');
  return `${item.shape} by ${item.nickname || 'an unnamed player'}, ${dateText(item.created_at)}` +
    `${item.quality_score !== null && item.quality_score !== undefined ? `, quality ${pct(item.quality_score, 0)}` : ''}` +
    `${state ? `, ${state}` : ''}`;
}

export async function render(view, params) {
  const items = [];
  const selected = new Set();
  let focus = 0;
  let next = null;
  let detail = null; // {index, replay}
  let selecting = false; // touch: a tap selects instead of opening
  let arrived = 0; // new drawings announced since the grid was loaded

  const shapes = await shapeNames();
  const filterError = h('p', { className: 'note error', role: 'alert', hidden: true });
  const total = h('p', { className: 'total', id: 'review-total' }, 'Loading…');
  const selection = h('span', { id: 'selection' });
  const grid = h('ul', { className: 'grid', id: 'review-grid', 'aria-label': 'Drawings' });
  const more = h('button', { type: 'button', hidden: true, onclick: () => load() }, 'Load more');
  const fresh = h('button', { type: 'button', id: 'review-fresh', hidden: true, onclick: () => load(true).then(() => setFocus(0)) }, '');
  const selectToggle = h('button', {
    type: 'button', id: 'select-mode', 'aria-pressed': 'false',
    onclick: () => setSelecting(!selecting),
  }, 'Select');
  const help = h('div', { className: 'help', id: 'shortcut-help', hidden: true, role: 'region', 'aria-label': 'Keyboard shortcuts' },
    h('h2', {}, 'Keyboard shortcuts'),
    h('dl', {}, SHORTCUTS.flatMap(([keys, what]) => [h('dt', {}, h('kbd', {}, keys)), h('dd', {}, what)])));
  const bulkBar = h('div', { className: 'bulk', id: 'bulk' },
    selection,
    ...['approve', 'flag', 'unflag', 'delete', 'restore'].map((action) =>
      h('button', { type: 'button', dataset: { bulk: action }, onclick: () => bulk(action) }, `${action[0].toUpperCase()}${action.slice(1)} selected`)),
    h('button', { type: 'button', onclick: () => { selected.clear(); refreshSelection(); } }, 'Clear selection'));
  const dialog = h('dialog', { className: 'detail', id: 'detail', 'aria-labelledby': 'detail-title' });

  view.append(
    h('div', { className: 'screen-head' }, h('h1', {}, 'Review'),
      h('div', { className: 'head-actions' }, selectToggle,
        h('button', { type: 'button', id: 'help-button', 'aria-expanded': 'false', 'aria-controls': 'shortcut-help', onclick: () => toggleHelp() }, 'Shortcuts ', h('kbd', {}, '?')))),
    filterForm(params, shapes), filterError, help, total, fresh, bulkBar, grid, more, dialog);

  // --- the grid ----------------------------------------------------------------------

  function cell(item, index) {
    const button = h('button', {
      type: 'button',
      className: 'thumb',
      tabindex: index === focus ? 0 : -1,
      dataset: { id: item.id, index },
      'aria-label': describe(item),
      'aria-pressed': selected.has(item.id) ? 'true' : 'false',
      onclick: () => { setFocus(index); if (selecting) toggleSelected(index); else open(index); },
      onfocus: () => setFocus(index, false),
    },
    h('img', { src: `${item.thumbnail_url}?size=${THUMB}`, alt: '', width: THUMB / 2, height: THUMB / 2, loading: 'lazy' }),
    h('span', { className: 'thumb-caption' },
      h('span', {}, item.shape),
      h('span', { className: 'muted' }, item.quality_score !== null && item.quality_score !== undefined ? pct(item.quality_score, 0) : '')),
    h('span', { className: 'badges' }, badges(item)));
    const li = h('li', { className: 'cell' }, button);
    li.classList.toggle('is-deleted', Boolean(item.deleted_at));
    li.classList.toggle('is-flagged', Boolean(item.is_flagged));
    li.classList.toggle('is-selected', selected.has(item.id));
    return li;
  }

  function redraw(index) {
    const old = grid.children[index];
    if (old) old.replaceWith(cell(items[index], index));
  }

  function setFocus(index, move = true) {
    if (items.length === 0) return;
    const clamped = Math.max(0, Math.min(items.length - 1, index));
    const old = grid.children[focus];
    if (old) old.firstChild.tabIndex = -1;
    focus = clamped;
    const button = grid.children[focus].firstChild;
    button.tabIndex = 0;
    if (move && document.activeElement !== button) button.focus();
  }

  /** Thumbnails per row, from where they were laid out. */
  function columns() {
    const cells = [...grid.children];
    if (cells.length === 0) return 1;
    const top = cells[0].offsetTop;
    const n = cells.findIndex((c) => c.offsetTop !== top);
    return n === -1 ? cells.length : n;
  }

  function setSelecting(on) {
    selecting = on;
    selectToggle.setAttribute('aria-pressed', String(selecting));
    selectToggle.textContent = selecting ? 'Done selecting' : 'Select';
    refreshSelection();
  }

  function toggleSelected(index) {
    const item = items[index];
    if (!item) return;
    if (selected.has(item.id)) selected.delete(item.id);
    else selected.add(item.id);
    refreshSelection();
  }

  function refreshSelection() {
    selection.textContent = selected.size
      ? `${num(selected.size)} selected:`
      : (selecting ? 'Tap drawings to select them.' : 'Select drawings (the Select button, a long press, or x) for a bulk action.');
    for (const button of bulkBar.querySelectorAll('button')) button.hidden = selected.size === 0;
    items.forEach((item, i) => {
      const li = grid.children[i];
      if (!li) return;
      li.classList.toggle('is-selected', selected.has(item.id));
      li.firstChild.setAttribute('aria-pressed', selected.has(item.id) ? 'true' : 'false');
    });
  }

  async function load(reset = false) {
    if (reset) {
      items.length = 0;
      next = null;
      focus = 0;
      arrived = 0;
      fresh.hidden = true;
      grid.replaceChildren();
    }
    more.hidden = true;
    try {
      const page = await get('/drawings', { ...apiQuery(params), limit: PAGE, cursor: next || undefined });
      filterError.hidden = true;
      const start = items.length;
      for (const item of page.items) {
        items.push(item);
        grid.append(cell(item, items.length - 1));
      }
      next = page.next_cursor;
      more.hidden = !next;
      total.textContent = page.total === 0
        ? 'No drawings match these filters.'
        : `${num(page.total)} drawings match; showing ${num(items.length)}.`;
      if (start === 0 && items.length > 0) grid.children[0].firstChild.tabIndex = 0;
    } catch (error) {
      if (error.code === 'invalid_filter') {
        filterError.textContent = error.message;
        filterError.hidden = false;
        total.textContent = '';
      } else {
        total.replaceChildren(failed(error));
      }
    }
  }

  // --- touch: a long press on a drawing starts selecting --------------------------------

  // A finger that rests LONG_PRESS_MS on a thumbnail selects it and turns selection mode on,
  // so that later taps select too. A finger that drifts, or a scroll (the browser cancels the
  // pointer when it takes over to pan), is no long press. The click that ends a long press is
  // swallowed, so that it neither opens the drawing nor unselects it again.
  let press = null; // {pointer, x, y, timer}
  let swallowClick = false;

  function cancelPress() {
    if (press) clearTimeout(press.timer);
    press = null;
  }

  grid.addEventListener('pointerdown', (event) => {
    cancelPress();
    swallowClick = false;
    if (event.pointerType === 'mouse' || !event.isPrimary) return;
    const button = event.target.closest('.thumb');
    if (!button) return;
    const index = Number(button.dataset.index);
    press = {
      pointer: event.pointerId,
      x: event.clientX,
      y: event.clientY,
      timer: setTimeout(() => {
        press = null;
        swallowClick = true;
        setFocus(index);
        if (!selecting) setSelecting(true);
        if (items[index] && !selected.has(items[index].id)) toggleSelected(index);
      }, LONG_PRESS_MS),
    };
  });
  grid.addEventListener('pointermove', (event) => {
    if (press && event.pointerId === press.pointer
      && Math.hypot(event.clientX - press.x, event.clientY - press.y) > PRESS_SLOP) cancelPress();
  });
  for (const type of ['pointerup', 'pointercancel']) grid.addEventListener(type, cancelPress);
  // Scrolling anywhere (a fling that outlives the finger, a wheel) is no press either.
  document.addEventListener('scroll', cancelPress, { capture: true, passive: true });
  grid.addEventListener('click', (event) => {
    if (!swallowClick) return;
    swallowClick = false;
    event.preventDefault();
    event.stopPropagation();
  }, true);
  // Where the platform answers a long press with a context menu, the selection is the answer.
  grid.addEventListener('contextmenu', (event) => {
    if (swallowClick || press) event.preventDefault();
  });

  // --- actions -----------------------------------------------------------------------

  /** Calls the API for one action on items[index] and shows the answer. */
  async function act(index, action, { quiet = false } = {}) {
    const item = items[index];
    if (!item) return;
    const id = item.id;
    try {
      const updated = action === 'delete'
        ? await del(`/drawings/${id}`)
        : await post(`/drawings/${id}/${action}`);
      items[index] = updated;
      redraw(index);
      // The cell was rebuilt: give the focus back to it.
      if (index === focus && !dialog.open) setFocus(index);
      if (detail && detail.index === index) showMeta(updated);
      if (quiet) return;
      if (action === 'delete') {
        toast(`Deleted the ${updated.shape}.`, { undo: () => act(index, 'restore', { quiet: true }) });
      } else {
        toast({ approve: 'Approved.', flag: 'Flagged.', unflag: 'Unflagged.', restore: 'Restored.' }[action]);
      }
    } catch (error) {
      toastError(error);
    }
  }

  function undoOrRestore(index) {
    const item = items[index];
    if (!item) return;
    if (item.deleted_at) act(index, 'restore');
    else if (item.is_flagged) act(index, 'unflag');
    else toast('Nothing to undo on this drawing.');
  }

  async function bulk(action) {
    if (selected.size === 0) {
      toast('Select drawings first (x on a thumbnail).');
      return;
    }
    const ids = [...selected];
    try {
      const answer = await post('/drawings/bulk', { ids, action });
      const undo = action === 'delete'
        ? async () => { await post('/drawings/bulk', { ids, action: 'restore' }); selected.clear(); await load(true); refreshSelection(); }
        : undefined;
      toast(`${action}: ${num(answer.changed)} drawings changed.`, { undo });
      selected.clear();
      await load(true);
      refreshSelection();
    } catch (error) {
      toastError(error);
    }
  }

  // --- the detail dialog ---------------------------------------------------------------

  const meta = h('dl', { className: 'facts', id: 'detail-meta' });
  const quality = h('div', { id: 'detail-quality' });
  const canvas = h('canvas', { id: 'replay', width: REPLAY_SIZE, height: REPLAY_SIZE, 'aria-label': 'the drawing, replayed' });
  const play = h('button', { type: 'button', id: 'replay-play', onclick: () => detail && detail.replay.toggle() }, 'Play');
  const speedButtons = [1, 4].map((speed) => h('button', {
    type: 'button', dataset: { speed }, 'aria-pressed': speed === 1 ? 'true' : 'false',
    onclick: () => detail && detail.replay.setSpeed(speed),
  }, `${speed}×`));
  const title = h('h2', { id: 'detail-title' });
  dialog.append(
    h('div', { className: 'detail-head' }, title, h('button', { type: 'button', onclick: () => dialog.close() }, 'Close ', h('kbd', {}, 'Esc'))),
    h('div', { className: 'detail-body' },
      h('div', { className: 'replay' }, canvas,
        h('div', { className: 'replay-controls' }, play, ...speedButtons,
          h('button', { type: 'button', onclick: () => detail && detail.replay.finish() }, 'Show all'))),
      h('div', {}, meta, quality,
        h('div', { className: 'detail-actions' },
          h('button', { type: 'button', onclick: () => detail && act(detail.index, 'approve') }, 'Approve ', h('kbd', {}, 'a')),
          h('button', { type: 'button', onclick: () => detail && act(detail.index, 'flag') }, 'Flag ', h('kbd', {}, 'f')),
          h('button', { type: 'button', onclick: () => detail && act(detail.index, 'delete') }, 'Delete ', h('kbd', {}, 'd')),
          h('button', { type: 'button', onclick: () => detail && undoOrRestore(detail.index) }, 'Unflag / restore ', h('kbd', {}, 'u')),
          h('button', { type: 'button', id: 'use-as-picture', onclick: () => detail && useAsPicture(items[detail.index]) }, 'Use as the shape\'s picture')),
        h('div', { className: 'detail-actions' },
          h('button', { type: 'button', onclick: () => detail && open(detail.index - 1) }, '← Previous'),
          h('button', { type: 'button', onclick: () => detail && open(detail.index + 1) }, 'Next →')))));
  dialog.addEventListener('close', () => {
    // The browser has already put the focus back on the opener (whose focus handler made it
    // current again): the drawing the dialog ended on is the one to focus.
    const current = detail ? detail.index : focus;
    if (detail) detail.replay.pause();
    detail = null;
    setFocus(current);
  });

  function onReplayState(replay) {
    play.textContent = replay.playing ? 'Pause' : 'Play';
    for (const b of speedButtons) b.setAttribute('aria-pressed', Number(b.dataset.speed) === replay.speed ? 'true' : 'false');
    dialog.dataset.replay = replay.playing ? 'playing' : (replay.elapsed >= replay.total ? 'done' : 'paused');
  }

  function showMeta(item) {
    title.textContent = `${item.shape} · ${item.id.slice(0, 8)}`;
    const row = (label, value) => [h('dt', {}, label), h('dd', {}, value)];
    meta.replaceChildren(
      ...row('Shape', item.shape),
      ...row('Player', h('a', { href: `#/review?player=${item.player_id}` }, item.nickname || item.player_id.slice(0, 8))),
      ...row('Drawn', when(item.created_at)),
      ...row('Source', item.source),
      ...row('Strokes / points', `${num(item.strokes)} / ${num(item.points)}`),
      ...row('Duration', item.duration_ms === null || item.duration_ms === undefined ? '–' : `${(item.duration_ms / 1000).toFixed(1)} s`),
      ...row('Quality', item.quality_score === null || item.quality_score === undefined ? 'not scored yet' : pct(item.quality_score)),
      ...row('State', [item.deleted_at && `deleted ${dateText(item.deleted_at)}`, item.is_flagged && 'flagged',
        item.reviewed_at && `reviewed ${dateText(item.reviewed_at)}`].filter(Boolean).join(', ') || 'not reviewed'));
  }

  function showQuality(detailed) {
    const parts = detailed.quality && typeof detailed.quality === 'object' ? (detailed.quality.components || detailed.quality) : null;
    if (!parts) {
      quality.replaceChildren(h('p', { className: 'note' }, 'No quality components are recorded for this drawing.'));
      return;
    }
    quality.replaceChildren(h('h3', {}, 'Quality components'), h('ul', { className: 'meters' },
      Object.entries(parts).filter(([, v]) => typeof v === 'number').map(([name, v]) =>
        h('li', {}, h('span', {}, name.replaceAll('_', ' ')),
          h('meter', { min: 0, max: 1, value: v, 'aria-label': name }), h('span', {}, v.toFixed(2))))));
  }

  /** Makes `item` its shape's picture: the icon players see on the shape's card. */
  async function useAsPicture(item) {
    try {
      await put(`/shapes/${encodeURIComponent(item.shape)}/picture`, { drawing_id: item.id });
      toast(`This drawing is now the ${item.shape} picture.`);
    } catch (error) {
      toastError(error);
    }
  }

  async function open(index) {
    if (index < 0 || index >= items.length) return;
    setFocus(index, false);
    const item = items[index];
    if (detail) detail.replay.pause();
    let full;
    try {
      full = await get(`/drawings/${item.id}`);
    } catch (error) {
      toastError(error);
      return;
    }
    const replay = new Replay(canvas, full.drawing, { onState: onReplayState });
    detail = { index, replay };
    showMeta(full);
    showQuality(full);
    if (!dialog.open) dialog.showModal();
    replay.play();
  }

  // --- the keyboard ------------------------------------------------------------------

  function toggleHelp(show = help.hidden) {
    help.hidden = !show;
    view.querySelector('#help-button').setAttribute('aria-expanded', show ? 'true' : 'false');
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
    const key = event.key;
    if (key === '?') {
      toggleHelp();
      event.preventDefault();
      return;
    }
    if (dialog.open) {
      const index = detail ? detail.index : focus;
      const handled = {
        ' ': () => detail && detail.replay.toggle(),
        a: () => act(index, 'approve'),
        f: () => act(index, 'flag'),
        d: () => act(index, 'delete'),
        u: () => undoOrRestore(index),
        j: () => open(index + 1),
        ArrowRight: () => open(index + 1),
        k: () => open(index - 1),
        ArrowLeft: () => open(index - 1),
      }[key];
      if (handled && !(key === ' ' && target instanceof HTMLButtonElement)) {
        event.preventDefault();
        handled();
      }
      return; // Esc closes the dialog natively
    }
    if (key === 'Escape') {
      if (!help.hidden) toggleHelp(false);
      else if (selected.size) { selected.clear(); refreshSelection(); }
      return;
    }
    if (!grid.contains(target) && target !== document.body && target !== view) return;
    const cols = columns();
    const moves = { ArrowRight: 1, j: 1, ArrowLeft: -1, k: -1, ArrowDown: cols, ArrowUp: -cols };
    if (key in moves) {
      event.preventDefault();
      setFocus(focus + moves[key]);
      return;
    }
    const handled = {
      a: () => act(focus, 'approve'),
      f: () => act(focus, 'flag'),
      d: () => act(focus, 'delete'),
      u: () => undoOrRestore(focus),
      x: () => toggleSelected(focus),
      Enter: () => open(focus),
    }[key];
    if (handled) {
      event.preventDefault();
      handled();
    }
  }

  // --- live: reviews elsewhere patch the grid; new drawings offer a reload ---------------

  /** What a review action does to an item's fields, as the server does it. */
  function patched(item, action, at) {
    const next = { ...item };
    if (action === 'delete') next.deleted_at = at;
    else if (action === 'restore') next.deleted_at = null;
    else {
      next.is_flagged = action === 'flag';
      next.reviewed_at = next.reviewed_at || at;
    }
    return next;
  }

  const stopLive = onLive((type, data) => {
    if (type === 'reviewed') {
      const ids = new Set(data.ids || []);
      items.forEach((item, i) => {
        if (!ids.has(item.id)) return;
        items[i] = patched(item, data.action, Date.now());
        const had = document.activeElement === (grid.children[i] && grid.children[i].firstChild);
        redraw(i);
        if (had) setFocus(i);
      });
    } else if (type === 'drawings' && data.added) {
      arrived += data.added;
      fresh.textContent = `${num(arrived)} new drawing${arrived === 1 ? '' : 's'}: show them`;
      fresh.hidden = false;
    }
  });

  document.addEventListener('keydown', onKey);
  refreshSelection();
  await load(true);
  if (params.get('open')) {
    const index = items.findIndex((i) => i.id === params.get('open'));
    if (index >= 0) open(index);
  } else if (items.length > 0) {
    // However the screen was reached (nav link, URL, back button), the shortcuts work at once.
    setFocus(0);
  }

  // For browser tests: the ids in the grid, in order, and the focused one.
  window.doodleboxAdmin.review = {
    ids: () => items.map((i) => i.id),
    focused: () => (items[focus] ? items[focus].id : null),
    detail: () => (detail ? items[detail.index].id : null),
  };
  return () => {
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('scroll', cancelPress, { capture: true });
    cancelPress();
    stopLive();
    if (detail) detail.replay.pause();
    if (dialog.open) dialog.close();
    delete window.doodleboxAdmin.review;
  };
}

