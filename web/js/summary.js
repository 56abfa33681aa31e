// summary.js: the end-of-game summary: each drawing redrawn from its strokes, what the machine
// guessed, and whether it is saved on the server or still waiting to be sent.

import { drawThumbnail } from './render.js';

const label = (shape) => shape.replace(/_/g, ' ');

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function machineLine(result, modelAvailable) {
  if (result.outcome !== 'submitted') return null;
  if (result.guess === undefined) return el('p', 'machine', 'The machine is thinking…');
  if (result.guess === null) {
    // Without a model, one note above the cards says so instead of every card.
    return modelAvailable === false ? null : el('p', 'machine', 'The machine could not guess.');
  }
  const { shape, confidence } = result.guess;
  const right = shape === result.shape;
  const text = `${right ? 'Machine got it: ' : 'Machine guessed: '}${label(shape)} (${Math.round(confidence * 100)}%)`;
  return el('p', right ? 'machine right' : 'machine', text);
}

function pill(result, status) {
  if (result.outcome === 'skipped') return el('span', 'pill none', 'skipped');
  if (result.outcome === 'empty') return el('span', 'pill none', 'nothing drawn');
  if (!status || status.state === 'waiting') return el('span', 'pill waiting', 'waiting to send');
  if (status.state === 'saved') return el('span', 'pill saved', 'saved');
  return el('span', 'pill failed', `not saved: ${status.message || 'refused by the server'}`);
}

/**
 * results: [{shape, outcome:'submitted'|'skipped'|'empty', body, key, guess}];
 * statusOf(key) -> {state, message} from the queue; modelAvailable: true, false or null.
 */
export function renderSummary(list, note, results, statusOf, modelAvailable) {
  note.hidden = modelAvailable !== false;
  const cards = results.map((result, i) => {
    const card = el('li', 'card');
    const picture = result.body
      ? el('canvas')
      // The pill below already says "skipped" or "nothing drawn": the box only shows the gap.
      : el('div', 'empty', result.outcome === 'skipped' ? '⤼' : '∅');
    if (result.body) {
      picture.setAttribute('role', 'img');
      picture.setAttribute('aria-label', `Your drawing of a ${label(result.shape)}`);
    }
    card.append(picture, el('h3', '', `${i + 1}. ${label(result.shape)}`));
    const machine = machineLine(result, modelAvailable);
    if (machine) card.append(machine);
    card.append(pill(result, statusOf(result.key)));
    return { card, picture, result };
  });
  list.replaceChildren(...cards.map((c) => c.card));
  // Thumbnails are drawn once they are laid out and have a size.
  for (const { picture, result } of cards) if (result.body) drawThumbnail(picture, result.body);
}
