// admin/keys.js: API keys for implementors: create one (its secret is shown once, here,
// with a copy button), list them with their last use, revoke one.

import { get, post, del } from './api.js';
import { h, panel, failed, field, num, when, toast, toastError, confirmed } from './ui.js';

export async function render(view) {
  view.append(h('h1', {}, 'API keys'));
  const shown = h('div', { id: 'new-key' });
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 80, placeholder: 'who or what uses it' });
  const rate = h('input', { type: 'number', name: 'rate_per_min', min: 1, placeholder: 'default' });
  const body = h('tbody');
  const reloadList = async () => {
    try {
      const { keys } = await get('/keys');
      body.replaceChildren(...keys.map((k) => h('tr', { dataset: { key: k.id } },
        h('th', { scope: 'row' }, k.name),
        h('td', {}, h('code', {}, `${k.prefix}…`)),
        h('td', { className: 'n' }, num(k.rate_per_min)),
        h('td', {}, when(k.created_at)),
        h('td', {}, k.last_used_at ? when(k.last_used_at) : 'never'),
        h('td', {}, k.revoked_at ? ['revoked ', when(k.revoked_at)] : h('button', {
          type: 'button',
          className: 'danger',
          onclick: async () => {
            if (!confirmed(`Revoke the key "${k.name}"? Programs using it stop working at once.`)) return;
            try {
              await del(`/keys/${k.id}`);
              toast('Revoked.');
              reloadList();
            } catch (error) {
              toastError(error);
            }
          },
        }, 'Revoke')))));
      if (keys.length === 0) body.append(h('tr', {}, h('td', { colspan: 6 }, 'No keys yet.')));
    } catch (error) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: 6 }, failed(error))));
    }
  };
  view.append(panel('Create a key', h('form', {
    className: 'inline-form',
    onsubmit: async (event) => {
      event.preventDefault();
      const request = { name: name.value.trim() };
      if (rate.value) request.rate_per_min = Number(rate.value);
      try {
        const created = await post('/keys', request);
        const code = h('code', { className: 'secret' }, created.key);
        shown.replaceChildren(h('div', { className: 'secret-box', role: 'alert' },
          h('p', {}, h('strong', {}, 'Copy this key now: it is shown only once.')), code,
          h('button', {
            type: 'button',
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(created.key);
                toast('Copied.');
              } catch {
                getSelection().selectAllChildren(code);
                toast('Selected: press Ctrl+C to copy.');
              }
            },
          }, 'Copy')));
        name.value = '';
        reloadList();
      } catch (error) {
        toastError(error);
      }
    },
  }, field('Name', name), field('Requests per minute', rate), h('button', { type: 'submit', className: 'primary' }, 'Create key')), shown));
  view.append(panel('Keys', h('div', { className: 'table-wrap' }, h('table', { className: 'list', id: 'keys' },
    h('thead', {}, h('tr', {}, ['Name', 'Key', 'Per minute', 'Created', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))),
    body))));
  await reloadList();
  return null;
}
