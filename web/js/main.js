// main.js: wires the game page together: the board, the submission queue, the live guess and the
// game flow; keyboard shortcuts; the queued-drawings indicator; the nickname form; and the
// `window.doodlebox` hook that browser tests read.

import { putPlayer } from './api.js';
import { createBoard } from './board.js';
import { createQueue } from './queue.js';
import { createGuesser } from './guess.js';
import { cacheShapes, createGame } from './game.js';

/** How long a toast stays up. */
const TOAST_MS = 3500;
/** Where the nickname is remembered between visits. */
const NICKNAME_KEY = 'doodlebox.nickname';

const $ = (id) => document.getElementById(id);

let toastTimer = null;
function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), TOAST_MS);
}

const queue = createQueue();
const guesser = createGuesser($('guess'));
let game = null;
const board = createBoard($('board'), $('board-wrap'), {
  onStrokeStart: () => game.strokeStarted(),
  onMove: () => guesser.poke(board.livePayload),
  onStrokeEnd: () => {
    game.drawingChanged();
    guesser.poke(board.livePayload);
  },
  onChange: () => {
    game.drawingChanged();
    if (!board.isEmpty()) guesser.poke(board.livePayload);
  },
  onLimit: () => toast('That is a lot of ink! Submit this drawing or clear it.'),
});
game = createGame({ board, queue, guesser, toast });

// --- buttons and keyboard ---------------------------------------------------

const actions = { submit: game.submit, undo: game.undo, clear: game.clear, skip: game.skip };
for (const [id, action] of Object.entries(actions)) {
  $(id).addEventListener('click', (event) => {
    if (event.currentTarget.getAttribute('aria-disabled') === 'true') return;
    action();
  });
}

document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.isComposing || event.repeat) return;
  if (event.target.closest('input, textarea, select, [contenteditable], .name')) return;
  const key = event.key.toLowerCase();
  if (key === 'z' && !event.altKey && !event.shiftKey) {
    event.preventDefault();
    game.undo();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  // Enter on a focused button presses that button; only elsewhere does it mean "submit".
  if (key === 'enter' && !event.target.closest('button, a, summary')) {
    event.preventDefault();
    game.submit();
  } else if (key === 'escape') {
    game.clear();
  } else if (key === 's') {
    event.preventDefault();
    game.skip();
  }
});

// --- the queued-drawings indicator -----------------------------------------

let anySaved = false;
const savedIds = []; // server ids of drawings accepted while this page is open, for tests
queue.events.addEventListener('item', ({ detail }) => {
  if (detail.state !== 'saved') return;
  anySaved = true;
  savedIds.push(detail.id);
});
queue.events.addEventListener('count', ({ detail: { count, online } }) => {
  const el = $('queue-status');
  el.classList.toggle('waiting', count > 0);
  // Short enough for a 360 px phone, with "offline" first so it is never the part cut off.
  if (count > 0) el.textContent = online ? `${count} waiting to send` : `Offline · ${count} waiting`;
  else el.textContent = anySaved ? 'All saved\u00a0✓' : '';
  el.title = el.textContent; // the full text where a phone's header cuts it short
});

// --- nickname -----------------------------------------------------------------

const nickname = $('nickname');
try {
  nickname.value = localStorage.getItem(NICKNAME_KEY) || '';
} catch {
  // No storage: the field starts empty.
}
$('name-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const status = $('name-status');
  const name = nickname.value.trim();
  const length = [...name].length;
  if (length < 1 || length > 40) {
    status.textContent = 'A nickname is 1 to 40 characters (and optional).';
    return;
  }
  status.textContent = 'Saving…';
  try {
    await putPlayer(name);
    try {
      localStorage.setItem(NICKNAME_KEY, name);
    } catch {
      // Saved on the server; remembering it here is a convenience.
    }
    status.textContent = '';
    nickname.closest('details').open = false;
    toast(`Hi, ${name}!`);
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
  }
});

// --- start --------------------------------------------------------------------

window.doodlebox = {
  /** Drawings stored in this browser and not yet accepted by the server. */
  queueLength: () => queue.length(),
  /** Server ids of the drawings accepted since this page loaded, oldest first. */
  savedIds: () => [...savedIds],
  /** Where the queue lives: 'indexeddb', 'localstorage' or 'memory'. */
  storage: () => queue.storage(),
  /** The game's state: loading, ready, drawing, ending or summary. */
  state: () => game.state(),
};

queue.start();
queue.storage().then((kind) => {
  if (kind === 'memory') toast('This browser cannot store drawings: keep this page open until they are saved.');
});
cacheShapes();
game.start();
