// admin/players.js: players with the counts of their drawings; block one (which
// soft-deletes all their drawings and refuses their new ones) or unblock; jump to their
// drawings in the review grid.

import { get, post } from './api.js';
import { h, failed, num, when, toast, toastError, confirmed } from './ui.js';

/** Players fetched per page. */
const PAGE = 100;

export async function render(view) {
  view.append(h('h1', {}, 'Players'),
    h('p', { className: 'note' }, 'Blocking a player soft-deletes all their drawings at once (restore them from Review) and refuses their new ones.'));
  const body = h('tbody');
  const table = h('table', { className: 'list', id: 'players' },
    h('thead', {}, h('tr', {}, ['Player', 'Since', 'Drawings', 'Flagged', 'Deleted', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)))),
    body);
  const more = h('button', { type: 'button', hidden: true, onclick: () => load() }, 'Load more');
  view.append(h('div', { className: 'table-wrap' }, table), more);
  let next = null;

  function row(player) {
    const blocked = Boolean(player.blocked_at);
    const action = h('button', {
      type: 'button',
      className: blocked ? '' : 'danger',
      onclick: async () => {
        if (!blocked && !confirmed(`Block ${player.nickname || 'this player'} and soft-delete their ${player.drawings} drawings?`)) return;
        try {
          const updated = await post(`/players/${player.id}/${blocked ? 'unblock' : 'block'}`);
          tr.replaceWith(row(updated));
          toast(blocked ? 'Unblocked.' : 'Blocked; their drawings are deleted (recoverable).');
        } catch (error) {
          toastError(error);
        }
      },
    }, blocked ? 'Unblock' : 'Block');
    const tr = h('tr', { dataset: { player: player.id } },
      h('th', { scope: 'row' }, h('a', { href: `#/review?player=${player.id}&deleted=any` }, player.nickname || h('code', {}, player.id.slice(0, 12)))),
      h('td', {}, when(player.created_at)),
      h('td', { className: 'n' }, num(player.drawings)),
      h('td', { className: 'n' }, num(player.flagged)),
      h('td', { className: 'n' }, num(player.deleted)),
      h('td', {}, blocked ? h('span', { className: 'badge deleted' }, 'blocked ', when(player.blocked_at)) : 'active'),
      h('td', {}, action));
    return tr;
  }

  async function load() {
    more.hidden = true;
    try {
      const page = await get('/players', { limit: PAGE, cursor: next || undefined });
      for (const player of page.items) body.append(row(player));
      if (body.children.length === 0) body.append(h('tr', {}, h('td', { colspan: 7 }, 'No players yet.')));
      next = page.next_cursor;
      more.hidden = !next;
    } catch (error) {
      view.append(failed(error));
    }
  }
  await load();
  return null;
}
