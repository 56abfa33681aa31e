// outbox-store.js: keeps the drawings waiting to be sent on disk, so that a reload or a closed
// tab loses none. IndexedDB first (written with strict durability); if the browser refuses it
// (some private modes), localStorage; if that fails too, memory, and the caller is told.
//
// An item is {key, body, createdAt, attempts, nextAt, serverAsked}; `key` is the idempotency key.

const DB_NAME = 'doodlebox';
const STORE = 'outbox';
const LS_KEY = 'doodlebox.outbox';

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'key' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}

function idbBackend(db) {
  // Resolves when the transaction has committed, not merely when the request succeeded.
  const run = (mode, work) => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode, { durability: 'strict' });
    const result = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
  });
  return {
    kind: 'indexeddb',
    put: (item) => run('readwrite', (s) => s.put(item)),
    remove: (key) => run('readwrite', (s) => s.delete(key)),
    all: () => run('readonly', (s) => s.getAll()),
    count: () => run('readonly', (s) => s.count()),
  };
}

function mapBackend(kind, load, save) {
  return {
    kind,
    async put(item) { const m = load(); m[item.key] = item; save(m); },
    async remove(key) { const m = load(); delete m[key]; save(m); },
    async all() { return Object.values(load()); },
    async count() { return Object.keys(load()).length; },
  };
}

function localStorageBackend() {
  const load = () => JSON.parse(localStorage.getItem(LS_KEY) || '{}');
  const save = (m) => localStorage.setItem(LS_KEY, JSON.stringify(m));
  save(load()); // throws here, not later, if localStorage is unusable
  return mapBackend('localstorage', load, save);
}

function memoryBackend() {
  let m = {};
  return mapBackend('memory', () => m, (next) => { m = next; });
}

/** Items left in localStorage by an earlier visit that had no IndexedDB move over. */
async function adoptLeftovers(backend) {
  try {
    const leftover = JSON.parse(localStorage.getItem(LS_KEY) || '{}');
    for (const item of Object.values(leftover)) await backend.put(item);
    if (Object.keys(leftover).length) localStorage.removeItem(LS_KEY);
  } catch {
    // Nothing readable there: nothing to adopt.
  }
}

/** Opens the best store this browser allows. Items are returned oldest first. */
export async function openOutbox() {
  let backend;
  try {
    backend = idbBackend(await openDb());
    await backend.count();
    await adoptLeftovers(backend);
  } catch {
    try {
      backend = localStorageBackend();
    } catch {
      backend = memoryBackend();
    }
  }
  const all = backend.all;
  return { ...backend, all: async () => (await all()).sort((a, b) => a.createdAt - b.createdAt) };
}
