// admin/app.js: the portal shell. Checks the session (GET /me; a 401 goes to the sign-in
// page), routes by hash (#/review?shape=circle&flagged=true) to one module per screen, marks
// the current nav link, and exposes a small hook for browser tests.

import { get, post, toLogin } from './api.js';
import { h } from './ui.js';
import { onLive, closeLive } from './live.js';

/** Screen name → its module; each exports render(view, params) → optional cleanup function. */
const SCREENS = {
  dashboard: () => import('./dashboard.js'),
  review: () => import('./review.js'),
  players: () => import('./players.js'),
  shapes: () => import('./shapes.js'),
  training: () => import('./training.js'),
  models: () => import('./models.js'),
  data: () => import('./data.js'),
  keys: () => import('./keys.js'),
};
const DEFAULT_SCREEN = 'dashboard';

const view = document.getElementById('view');
let cleanup = null;
let current = null;
let generation = 0;

/** "#/review?shape=circle" → {screen: "review", params: URLSearchParams}. */
export function parseHash(hash = location.hash) {
  const text = hash.replace(/^#\/?/, '');
  const [name, query = ''] = text.split('?');
  const screen = Object.hasOwn(SCREENS, name) ? name : DEFAULT_SCREEN;
  return { screen, params: new URLSearchParams(query) };
}

/** Sets the hash for `screen` with `params` (empty values left out). */
export function go(screen, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) query.set(k, v);
  const text = query.toString();
  location.hash = `#/${screen}${text ? `?${text}` : ''}`;
}

async function route() {
  const { screen, params } = parseHash();
  const mine = ++generation;
  if (cleanup) {
    try { cleanup(); } catch { /* a screen that fails to clean up must not block the next */ }
    cleanup = null;
  }
  current = screen;
  delete view.dataset.ready;
  view.setAttribute('aria-busy', 'true');
  for (const link of document.querySelectorAll('.admin-nav a')) {
    if (link.dataset.screen === screen) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `Doodlebox admin: ${screen}`;
  try {
    const module = await SCREENS[screen]();
    if (mine !== generation) return;
    view.replaceChildren();
    const done = await module.render(view, params);
    if (mine !== generation) {
      if (typeof done === 'function') done();
      return;
    }
    cleanup = typeof done === 'function' ? done : null;
  } catch (error) {
    if (mine !== generation) return;
    view.replaceChildren(h('p', { className: 'note error', role: 'alert' }, `This screen failed: ${error.message}`));
  }
  view.setAttribute('aria-busy', 'false');
  view.dataset.ready = screen;
}

async function start() {
  let me;
  try {
    me = await get('/me');
  } catch (error) {
    // 401: nobody signed in (api.js has already gone to the login page). 403: a player's
    // session, which admin routes refuse: the login page is where an admin signs in.
    if (error.status === 403) toLogin();
    else if (error.status !== 401) {
      view.replaceChildren(h('p', { className: 'note error', role: 'alert' }, error.message));
    }
    return;
  }
  document.getElementById('who').textContent = me.username ? `Signed in as ${me.username}` : 'Signed in on this machine';
  // One live feed for the whole page; screens listen to it (live.js).
  onLive(() => {});
  document.getElementById('logout').addEventListener('click', async () => {
    closeLive();
    try { await post('/logout'); } catch { /* signed out either way */ }
    toLogin();
  });
  window.addEventListener('hashchange', route);
  await route();
}

// For browser tests: which screen is showing and whether it finished loading.
window.doodleboxAdmin = {
  screen: () => current,
  ready: () => view.dataset.ready || null,
};

start();
