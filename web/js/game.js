// game.js: the game flow. Six rounds of: a prompt from the server (or, offline, from the shapes
// seen before), a 20-second countdown that starts with the first stroke, then submit, skip or
// time-out; then the summary. Submitted drawings go to the queue; this module never sends them.

import { getPrompt, getShapes } from './api.js';
import { uuid4 } from './uuid.js';
import { createCountdown } from './timer.js';
import { renderSummary } from './summary.js';

/** Rounds in one game. */
export const ROUNDS = 6;
/** Time to draw, from the first stroke. */
export const ROUND_MS = 20000;
/** The clock turns red from here on. */
const LOW_MS = 5000;
/** Asks for another prompt when the server repeats a shape already drawn this game. */
const PROMPT_TRIES = 3;
/** Where shapes seen from the server are remembered, to keep prompting while offline. */
const SHAPES_KEY = 'doodlebox.shapes';
/** Prompts to use when the server has never been reached. */
const DEFAULT_SHAPES = [
  { name: 'line', description: 'A straight stroke' },
  { name: 'circle', description: 'A round closed curve' },
  { name: 'square', description: 'Four equal sides and four right angles' },
  { name: 'triangle', description: 'Three straight sides' },
  { name: 'heart', description: 'Two rounded bumps meeting in a point' },
];

const label = (shape) => shape.replace(/_/g, ' ');

function knownShapes() {
  try {
    const saved = JSON.parse(localStorage.getItem(SHAPES_KEY) || '[]');
    return saved.length ? saved : DEFAULT_SHAPES;
  } catch {
    return DEFAULT_SHAPES;
  }
}

function rememberShapes(shapes) {
  const byName = new Map(knownShapes().map((s) => [s.name, s]));
  for (const s of shapes) byName.set(s.name, { name: s.name, description: s.description || '' });
  try {
    localStorage.setItem(SHAPES_KEY, JSON.stringify([...byName.values()]));
  } catch {
    // Only an offline convenience.
  }
}

/** Fetches the shape list once so that prompts keep coming if the network goes. */
export async function cacheShapes() {
  try {
    const { shapes } = await getShapes();
    rememberShapes(shapes);
  } catch {
    // Offline now: the cached or default list will do.
  }
}

export function createGame({ board, queue, guesser, toast }) {
  const $ = (id) => document.getElementById(id);
  const ui = {
    round: $('round'), article: $('prompt-article'), shape: $('prompt-shape'), description: $('prompt-description'),
    icon: $('prompt-icon'), timer: $('timer'), bar: $('timer-bar'), clock: $('clock'), hint: $('timer-hint'),
    game: $('game'), summary: $('summary'), list: $('summary-list'), note: $('summary-note'), again: $('again'),
    submit: $('submit'), undo: $('undo'), clear: $('clear'), skip: $('skip'),
  };
  let state = 'idle'; // idle | loading | ready | drawing | ending | summary
  let roundIndex = 0;
  let results = [];   // one per finished round, for the summary
  let prompt = null;
  let key = null;     // the idempotency key, made when the drawing starts
  let startedAt = 0;
  const statuses = new Map(); // idempotency key -> latest queue event

  const countdown = createCountdown({ onTick: showTime, onDone: () => finish('timeout') });

  function showTime(left, total) {
    ui.timer.textContent = String(Math.ceil(left / 1000));
    ui.bar.style.transform = `scaleX(${total ? left / total : 1})`;
    ui.clock.classList.toggle('low', countdown.running() && left <= LOW_MS);
  }

  function setDisabled(button, off) {
    button.setAttribute('aria-disabled', String(off));
  }

  function updateButtons() {
    const playing = state === 'ready' || state === 'drawing';
    setDisabled(ui.submit, !playing || board.isEmpty());
    setDisabled(ui.clear, !playing || board.isEmpty());
    setDisabled(ui.undo, !playing || !board.canUndo());
    setDisabled(ui.skip, !playing);
  }

  function refreshSummary() {
    if (state === 'summary') renderSummary(ui.list, ui.note, results, (k) => statuses.get(k), guesser.available());
  }

  queue.events.addEventListener('item', ({ detail }) => {
    const before = statuses.get(detail.key);
    statuses.set(detail.key, detail);
    const n = results.findIndex((r) => r.key === detail.key) + 1;
    const which = n ? `Drawing ${n}` : 'An earlier drawing';
    if (detail.state === 'saved' && n) toast(`${which} saved\u00a0✓`); // no-break: the ✓ never wraps alone
    if (detail.state === 'failed') toast(`${which} was refused: ${detail.message}`);
    if (detail.state === 'waiting' && detail.message && !(before && before.message)) {
      toast(`${which} is kept here; it sends when the server is back.`);
    }
    refreshSummary();
  });

  function localPrompt(used) {
    const shapes = knownShapes();
    const fresh = shapes.filter((s) => !used.includes(s.name));
    const pick = (fresh.length ? fresh : shapes)[Math.floor(Math.random() * (fresh.length || shapes.length))];
    return { shape: pick.name, description: pick.description, difficulty: null };
  }

  async function nextPrompt() {
    const used = results.map((r) => r.shape);
    if (!navigator.onLine) return localPrompt(used);
    for (let i = 0; i < PROMPT_TRIES; i += 1) {
      try {
        const p = await getPrompt();
        rememberShapes([{ name: p.shape, description: p.description }]);
        if (!used.includes(p.shape) || i === PROMPT_TRIES - 1) return p;
      } catch {
        break;
      }
    }
    return localPrompt(used);
  }

  function showPrompt(p) {
    const name = label(p.shape);
    ui.article.textContent = /^[aeiou]/i.test(name) ? 'an' : 'a';
    ui.shape.textContent = name;
    ui.description.textContent = p.description || '';
    ui.icon.onerror = () => {
      ui.icon.onerror = null;
      ui.icon.src = '/icons/fallback.svg';
    };
    ui.icon.src = `/icons/${encodeURIComponent(p.shape)}.svg`;
  }

  async function startRound() {
    state = 'loading';
    countdown.stop();
    board.setEnabled(false);
    board.reset();
    showTime(ROUND_MS, ROUND_MS);
    ui.hint.hidden = false;
    ui.round.textContent = `Round ${roundIndex + 1} of ${ROUNDS}`;
    updateButtons();
    prompt = await nextPrompt();
    showPrompt(prompt);
    guesser.newRound(prompt.shape);
    key = null;
    state = 'ready';
    board.setEnabled(true);
    updateButtons();
  }

  /** Ends the round: 'submit' (button or Enter), 'timeout' or 'skip'. */
  async function finish(how) {
    if (state !== 'ready' && state !== 'drawing') return;
    if (how === 'submit' && board.isEmpty() && !board.isDrawing()) return;
    state = 'ending';
    countdown.stop();
    board.endStroke();
    board.setEnabled(false);
    updateButtons();
    const result = { shape: prompt.shape, outcome: 'skipped', key: null, body: null, guess: undefined };
    if (how !== 'skip') result.outcome = board.isEmpty() ? 'empty' : 'submitted';
    results.push(result);
    if (result.outcome === 'submitted') {
      const drawing = board.payload();
      result.key = key;
      result.body = {
        shape: prompt.shape,
        canvas: drawing.canvas,
        strokes: drawing.strokes,
        duration_ms: Math.max(0, Date.now() - startedAt),
        device: drawing.device,
      };
      try {
        await queue.add(result.key, result.body);
      } catch (error) {
        statuses.set(result.key, { key: result.key, state: 'failed', message: 'this browser could not store it' });
        toast(`Drawing ${results.length} could not be stored: ${error.message}`);
      }
      guesser.final(result.body).then((guess) => {
        result.guess = guess;
        refreshSummary();
      });
    }
    roundIndex += 1;
    if (roundIndex < ROUNDS) startRound();
    else showSummary();
  }

  function showSummary() {
    state = 'summary';
    ui.round.textContent = 'Game over';
    ui.game.hidden = true;
    ui.summary.hidden = false;
    refreshSummary();
    // Focus on "Play again" (Enter starts a new game), but show the summary from its top.
    ui.again.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  function newGame() {
    results = [];
    roundIndex = 0;
    ui.summary.hidden = true;
    ui.game.hidden = false;
    startRound();
  }

  ui.again.addEventListener('click', newGame);

  const playing = () => state === 'ready' || state === 'drawing';

  return {
    start: newGame,
    state: () => state,
    submit: () => finish('submit'),
    skip: () => finish('skip'),
    undo() { if (playing()) board.undo(); },
    clear() { if (playing()) board.clear(); },
    /** Board hooks: the first stroke starts the drawing, its key and the clock. */
    strokeStarted() {
      if (state !== 'ready') return;
      state = 'drawing';
      key = uuid4();
      startedAt = Date.now();
      ui.hint.hidden = true;
      countdown.start(ROUND_MS);
    },
    drawingChanged: updateButtons,
  };
}
