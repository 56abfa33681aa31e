// admin/shapes.js: the shapes being collected: counts, the active model's accuracy on each,
// add a shape, edit its description and difficulty, retire it (no longer prompted or
// accepted; its drawings stay) or bring it back, and see or reset its picture (a drawing
// chosen in the review screen's detail view).

import { get, post, patch, del } from './api.js';
import { barChart } from './charts.js';
import { h, panel, notAvailable, failed, field, num, pct, toast, toastError, confirmed } from './ui.js';

export async function render(view) {
  view.append(h('h1', {}, 'Shapes'));
  let data;
  try {
    data = await get('/shapes');
  } catch (error) {
    view.append(error.missing ? notAvailable('Managing shapes') : failed(error));
    return null;
  }
  const reload = () => { view.replaceChildren(); render(view); };

  const accuracy = data.items.filter((s) => s.accuracy !== null && s.accuracy !== undefined)
    .map((s) => ({ label: s.name, value: s.accuracy }));
  view.append(panel(`Accuracy of the active model${data.model_version ? ` (${data.model_version})` : ''}`,
    accuracy.length ? barChart('Recall per shape', accuracy, { format: (v) => pct(v, 0) })
      : h('p', { className: 'note' }, 'No active model, or it knows none of these shapes.')));

  const list = h('ul', { className: 'shape-list', id: 'shape-list' });
  for (const shape of data.items) {
    const description = h('input', { type: 'text', value: shape.description, maxlength: 200 });
    const difficulty = h('input', { type: 'number', min: 1, max: 5, step: 1, value: shape.difficulty });
    const save = async (event) => {
      event.preventDefault();
      try {
        await patch(`/shapes/${encodeURIComponent(shape.name)}`, { description: description.value, difficulty: Number(difficulty.value) });
        toast(`Saved ${shape.name}.`);
      } catch (error) {
        toastError(error);
      }
    };
    const retire = async () => {
      try {
        if (shape.active) {
          if (!confirmed(`Retire ${shape.name}? Players are no longer asked for it; its ${shape.drawings} drawings stay.`)) return;
          await del(`/shapes/${encodeURIComponent(shape.name)}`);
        } else {
          await patch(`/shapes/${encodeURIComponent(shape.name)}`, { active: true });
        }
        reload();
      } catch (error) {
        toastError(error);
      }
    };
    const resetPicture = async () => {
      try {
        await del(`/shapes/${encodeURIComponent(shape.name)}/picture`);
        toast(`${shape.name} has its automatic picture again.`);
        reload();
      } catch (error) {
        toastError(error);
      }
    };
    const picture = shape.picture
      ? h('p', { className: 'muted picture-note' }, 'Picture: a chosen drawing. ',
        h('button', { type: 'button', className: 'reset-picture', onclick: resetPicture }, 'Use the automatic picture'))
      : h('p', { className: 'muted picture-note' }, 'Picture: automatic. To choose one, open a drawing in ',
        h('a', { href: `#/review?shape=${encodeURIComponent(shape.name)}` }, 'Review'), ' and press “Use as the shape\'s picture”.');
    list.append(h('li', { className: shape.active ? 'shape' : 'shape retired' },
      h('div', { className: 'shape-head' },
        h('img', { src: `/icons/${shape.name}.svg`, alt: '', width: 40, height: 40, onerror: (e) => { e.target.src = '/icons/fallback.svg'; } }),
        h('h2', {}, shape.name, shape.active ? '' : ' (retired)'),
        h('a', { href: `#/review?shape=${encodeURIComponent(shape.name)}` },
          `${num(shape.drawings)} ${shape.drawings === 1 ? 'drawing' : 'drawings'}`), h('span', { className: 'muted' },
          ` · ${num(shape.flagged)} flagged · ${num(shape.deleted)} deleted · model ${pct(shape.accuracy, 0)}`)),
      picture,
      h('form', { className: 'inline-form', onsubmit: save },
        field('Description', description), field('Difficulty (1–5)', difficulty),
        h('button', { type: 'submit' }, 'Save'),
        h('button', { type: 'button', onclick: retire }, shape.active ? 'Retire' : 'Collect again'))));
  }
  view.append(panel('Shapes', list));

  const name = h('input', { type: 'text', name: 'name', required: true, pattern: '[a-z0-9_\\-]+', placeholder: 'e.g. star' });
  const description = h('input', { type: 'text', name: 'description', required: true, placeholder: 'what players are asked to draw' });
  const difficulty = h('input', { type: 'number', name: 'difficulty', min: 1, max: 5, value: 2 });
  view.append(panel('Add a shape', h('form', {
    className: 'inline-form',
    id: 'add-shape',
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await post('/shapes', { name: name.value.trim(), description: description.value, difficulty: Number(difficulty.value) });
        toast(`Added ${name.value}.`);
        reload();
      } catch (error) {
        toastError(error);
      }
    },
  }, field('Name', name), field('Description', description), field('Difficulty (1–5)', difficulty),
  h('button', { type: 'submit', className: 'primary' }, 'Add shape'))));
  return null;
}
