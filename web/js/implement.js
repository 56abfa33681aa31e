// implement.js: the implementor page (/implement): a board whose live guesses show as bars
// (board.js and guess.js, as in the game), the active model's card with per-class accuracy and
// the confusion picture labelled with the class names, and copy-paste API examples filled with
// this page's own origin. `window.doodlebox` is the hook browser tests read.

import { getModel, getOpenApi } from './api.js';
import { timeElement } from './dates.js';
import { createBoard } from './board.js';
import { createGuesser } from './guess.js';

/** Above this many classes the confusion picture's rows and columns are not labelled. */
const MAX_LABELLED_CLASSES = 40;
/** With more classes than this, the per-class bars start with the weakest and the rest wait behind a button. */
const CLASS_BARS_SHOWN = 20;
/** Largest side of the confusion picture on screen, CSS px. */
const CONFUSION_MAX_PX = 420;
/** How long "Copied" stays up. */
const COPIED_MS = 2500;

const $ = (id) => document.getElementById(id);
const label = (shape) => shape.replace(/_/g, ' ');
const percent = (share) => `${(share * 100).toFixed(1)}%`;
/** An accuracy with its sample size and 95 % Wilson interval, e.g. "75.0% (95% CI 30.1–95.4%, n = 4)". */
const withInterval = (share, [low, high], n) =>
  `${percent(share)} (95% interval ${(low * 100).toFixed(1)}–${(high * 100).toFixed(1)}%, n = ${n.toLocaleString()})`;

let state = 'loading';
let card = null;
let shown = [];

// --- the board and its live guesses ------------------------------------------

/** One row per guess: name, a bar as long as its confidence, the percentage. */
function renderGuesses(el, result) {
  const top = (result.top_k || []).slice().sort((a, b) => b.confidence - a.confidence);
  shown = top.map((g) => g.shape);
  const rows = top.map((g, i) => {
    const row = document.createElement('div');
    row.className = `guess-row${i === 0 ? ' best' : ''}`;
    const name = document.createElement('span');
    name.className = 'guess-name';
    name.textContent = label(g.shape);
    const bar = document.createElement('span');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.className = 'bar-fill';
    fill.style.width = percent(g.confidence);
    bar.append(fill);
    const value = document.createElement('span');
    value.className = 'guess-value';
    value.textContent = percent(g.confidence);
    row.append(name, bar, value);
    return row;
  });
  const note = document.createElement('p');
  note.className = 'muted guess-note';
  note.textContent = `${result.unsure ? 'unsure: the model declines to name a shape · ' : ''}model ${result.model_version} · ${result.latency_ms.toFixed(1)} ms`;
  el.replaceChildren(...rows, note);
  $('guess-idle').hidden = true;
}

const guesser = createGuesser($('guess'), { render: renderGuesses });
const board = createBoard($('board'), $('board-wrap'), {
  onMove: () => guesser.poke(board.livePayload),
  onStrokeEnd: () => guesser.poke(board.livePayload),
  onChange: () => {
    if (board.isEmpty()) {
      idle();
    } else {
      guesser.poke(board.livePayload);
    }
  },
});

/** Back to an empty board: no guesses, and one new check for a model activated meanwhile. */
function idle() {
  shown = [];
  guesser.newRound('');
  $('guess').hidden = true;
  $('guess-idle').hidden = false;
  $('guess-idle').textContent = guesser.available() === false
    ? 'No model is active yet, so there is nothing to guess with.'
    : 'Draw on the board; the guesses appear while you draw.';
}

$('undo').addEventListener('click', () => board.undo());
$('clear').addEventListener('click', () => board.clear());
board.setEnabled(true);
idle();

// --- the model card ----------------------------------------------------------

function bar(name, share, detail) {
  const li = document.createElement('li');
  const title = document.createElement('span');
  title.className = 'bar-name';
  title.textContent = label(name);
  const track = document.createElement('span');
  track.className = 'bar';
  const fill = document.createElement('span');
  fill.className = 'bar-fill';
  fill.style.width = percent(share);
  track.append(fill);
  const value = document.createElement('span');
  value.className = 'bar-value';
  value.textContent = percent(share);
  value.title = detail;
  li.append(title, track, value);
  return li;
}

/** The picture inside a grid whose first row and column name the classes. */
function renderConfusion(model) {
  const n = model.classes.length;
  const box = $('confusion');
  box.style.setProperty('--n', n);
  box.style.setProperty('--side', `min(${CONFUSION_MAX_PX}px, calc(100vw - 11rem))`);
  const img = document.createElement('img');
  img.src = model.confusion_png_url;
  img.alt = `Confusion matrix of model ${model.version}: rows are the drawn classes, columns the guessed ones, in the order ${model.classes.join(', ')}`;
  img.className = 'confusion-img';
  const cells = [];
  const labelled = n <= MAX_LABELLED_CLASSES;
  box.classList.toggle('unlabelled', !labelled);
  if (labelled) {
    const corner = document.createElement('span');
    corner.className = 'corner';
    corner.textContent = 'drawn ↓ guessed →';
    cells.push(corner);
    model.classes.forEach((c, i) => {
      const col = document.createElement('span');
      col.className = 'col-label';
      col.style.gridColumn = `${i + 2}`;
      col.textContent = label(c);
      col.title = `guessed: ${label(c)}`;
      cells.push(col);
    });
    model.classes.forEach((c, i) => {
      const row = document.createElement('span');
      row.className = 'row-label';
      row.style.gridRow = `${i + 2}`;
      row.textContent = label(c);
      row.title = `drawn: ${label(c)}`;
      cells.push(row);
    });
  }
  cells.push(img);
  box.replaceChildren(...cells);
}

/** Recall bars in class order; with many classes, the weakest first and only CLASS_BARS_SHOWN until asked. */
function renderClassBars(perClass) {
  const many = perClass.length > MAX_LABELLED_CLASSES;
  const rows = many ? [...perClass].sort((a, b) => a.recall - b.recall) : perClass;
  const button = $('all-classes');
  const show = (all) => {
    const shownRows = all ? rows : rows.slice(0, CLASS_BARS_SHOWN);
    $('class-bars').replaceChildren(...shownRows.map((c) => bar(
      c.class,
      c.recall,
      `precision ${percent(c.precision)}, ${c.support} validation drawings`,
    )));
    button.hidden = !many;
    button.textContent = all
      ? `Show the ${CLASS_BARS_SHOWN} weakest only`
      : `Show all ${rows.length} classes (the ${CLASS_BARS_SHOWN} weakest are shown)`;
    button.onclick = () => show(!all);
  };
  show(!many);
}

/** "octagon → circle: 6 of 10 drawings (60.0%)", most frequent first. */
function renderTopConfusions(mistakes) {
  const list = $('top-confusions');
  if (mistakes.length === 0) {
    const none = document.createElement('li');
    none.className = 'muted';
    none.textContent = 'No mistakes on the held-out drawings.';
    list.replaceChildren(none);
    return;
  }
  list.replaceChildren(...mistakes.map((m) => {
    const li = document.createElement('li');
    const total = Math.round(m.count / m.share);
    li.textContent = `${label(m.drawn)} drawn, ${label(m.guessed)} guessed: ${m.count} of ${total} drawings (${percent(m.share)})`;
    return li;
  }));
}

function renderCard(model) {
  $('model-version').textContent = model.version;
  $('model-accuracy').textContent = withInterval(
    model.metrics.accuracy,
    model.metrics.accuracy_interval,
    model.metrics.validation_samples,
  );
  const cal = model.metrics.calibration;
  $('model-unsure').textContent = cal
    ? `below ${percent(cal.unsure_below)} calibrated confidence (temperature ${cal.temperature.toFixed(2)}; calibration error ${percent(cal.ece_before)} raw, ${percent(cal.ece_after)} calibrated)`
    : `below ${percent(0.8)} confidence (this model predates calibration)`;
  $('model-top3').textContent = percent(model.metrics.top3_accuracy);
  $('model-dataset').textContent = `${model.dataset_size.toLocaleString()} drawings (${model.metrics.validation_samples.toLocaleString()} held out to measure it), ${model.metrics.epochs} epochs`
    + (model.metrics.player_independent === false
      ? '; validation is not player-independent (one player, or one holding most drawings), so the accuracy may be optimistic for new people'
      : '');
  $('model-input').textContent = `${model.input_size}×${model.input_size} pixels; ${model.top_k} guesses per answer`;
  const when = model.activated_at || model.created_at;
  $('model-activated').replaceChildren(timeElement(when));
  $('model-classes').textContent = model.classes.map(label).join(', ');
  renderClassBars(model.per_class);
  renderTopConfusions(model.top_confusions || []);
  renderConfusion(model);
  $('calibration').hidden = !model.metrics.calibration;
  if (model.metrics.calibration) $('reliability').src = model.reliability_png_url;
}

async function loadCard() {
  try {
    card = await getModel();
    renderCard(card);
    $('model-card').hidden = false;
    $('model-missing').hidden = true;
  } catch (error) {
    card = null;
    $('model-card').hidden = true;
    const missing = $('model-missing');
    missing.hidden = false;
    if (error.code === 'no_active_model') {
      $('guess-idle').textContent = 'No model is active yet, so there is nothing to guess with.';
    } else {
      missing.textContent = `Could not load the model card: ${error.message}`;
    }
  }
}

// --- API examples ------------------------------------------------------------

const origin = window.location.origin;
const triangle = {
  canvas: { width: 200, height: 200 },
  strokes: [{ points: [{ x: 100, y: 20 }, { x: 180, y: 170 }, { x: 20, y: 170 }, { x: 100, y: 20 }] }],
};
const quickdrawLine = { drawing: [[[10, 60, 120, 200], [20, 60, 110, 180]]] };
const json = (value) => JSON.stringify(value);

const examples = {
  curl: () => `# Your key, from: doodlebox keys create my-app
export DOODLEBOX_KEY=dbx_...

curl -sS ${origin}/api/v1/classify \\
  -H "Authorization: Bearer $DOODLEBOX_KEY" \\
  -H "Content-Type: application/json" \\
  -d '${json(triangle)}'`,
  python: () => `import os

import requests

DOODLEBOX = "${origin}"
KEY = os.environ["DOODLEBOX_KEY"]  # from: doodlebox keys create my-app

drawing = ${json(triangle)}

response = requests.post(
    f"{DOODLEBOX}/api/v1/classify",
    json=drawing,
    headers={"Authorization": f"Bearer {KEY}"},
    timeout=10,
)
response.raise_for_status()
answer = response.json()
print(answer["shape"], answer["confidence"], "by model", answer["model_version"])
for guess in answer["top_k"]:
    print(f"  {guess['shape']}: {guess['confidence']:.1%}")`,
  'curl-batch': () => `curl -sS ${origin}/api/v1/classify/batch \\
  -H "Authorization: Bearer $DOODLEBOX_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"drawings": [${json(triangle)}, ${json(quickdrawLine)}]}'`,
  'python-batch': () => `import os

import requests

DOODLEBOX = "${origin}"
KEY = os.environ["DOODLEBOX_KEY"]

drawings = [
    ${json(triangle)},
    ${json(quickdrawLine)},  # Quick, Draw! strokes work too
]

response = requests.post(
    f"{DOODLEBOX}/api/v1/classify/batch",
    json={"drawings": drawings},  # at most ${batchMax()} per request
    headers={"Authorization": f"Bearer {KEY}"},
    timeout=10,
)
response.raise_for_status()
for drawing, answer in zip(drawings, response.json()["items"]):
    print(answer["shape"], f"{answer['confidence']:.1%}")`,
};

function batchMax() {
  return $('batch-max').textContent;
}

let current = 'curl';
function showExample(name) {
  current = name;
  for (const tab of document.querySelectorAll('.tab')) {
    tab.setAttribute('aria-selected', String(tab.dataset.example === name));
  }
  $('example-code').textContent = examples[name]();
  $('copy-status').textContent = '';
}

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => showExample(tab.dataset.example));
}

/** The Clipboard API needs a secure context; over plain http on the LAN, select and copy. */
async function copy(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  const done = document.execCommand('copy');
  area.remove();
  if (!done) throw new Error('copy refused');
}

$('copy').addEventListener('click', async () => {
  const status = $('copy-status');
  try {
    await copy(examples[current]());
    status.textContent = 'Copied.';
  } catch {
    status.textContent = 'Could not copy here: select the example and copy it by hand.';
  }
  setTimeout(() => { status.textContent = ''; }, COPIED_MS);
});

$('classify-url').textContent = `${origin}/api/v1/classify`;
$('openapi-link').textContent = `OpenAPI 3.1 document (${origin}/api/v1/openapi.json)`;
showExample('curl');

/** The batch limit as the OpenAPI document states it, so the page cannot disagree with it. */
async function loadLimits() {
  try {
    const doc = await getOpenApi();
    const max = doc.components.schemas.BatchClassifyRequest.properties.drawings.maxItems;
    if (Number.isInteger(max)) {
      $('batch-max').textContent = String(max);
      showExample(current);
    }
  } catch {
    // The number already on the page stays.
  }
}

// --- test hook ---------------------------------------------------------------

window.doodlebox = {
  /** `loading`, then `ready` once the model card has been asked for. */
  state: () => state,
  /** The classes the guess bars show, best first. */
  guesses: () => shown.slice(),
  /** The model card shown, or null. */
  model: () => card,
  /** The example currently shown. */
  example: () => $('example-code').textContent,
};

Promise.all([loadCard(), loadLimits()]).then(() => { state = 'ready'; });
