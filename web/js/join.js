// join.js: the classroom join page: the server's first LAN address in huge text, its QR code
// (an SVG the server renders), and any other addresses small, from GET /api/v1/join.

import { getJoin } from './api.js';

const $ = (id) => document.getElementById(id);

/** Shown whole, "http://" included: some browsers try https first for a bare address. */
const shown = (url) => url.replace(/\/$/, '');

/** The address in huge text; its "http://" smaller, so the part to type stands out. */
function showUrl(url) {
  const target = $('join-url');
  if (!url) {
    target.textContent = 'No network address found';
    return;
  }
  const [, scheme, rest] = shown(url).match(/^(https?:\/\/)?(.*)$/);
  const small = document.createElement('span');
  small.className = 'scheme';
  small.textContent = scheme || '';
  target.replaceChildren(small, rest);
}

async function load() {
  $('join-error').hidden = true;
  $('join-retry').hidden = true;
  try {
    const { urls, qr_svg: qrSvg } = await getJoin();
    const [first, ...others] = urls || [];
    showUrl(first);
    // As an <img>, the server's SVG is only a picture: nothing in it can run.
    if (qrSvg) {
      const img = document.createElement('img');
      img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(qrSvg)}`;
      img.alt = first ? `QR code for ${first}` : 'QR code';
      $('join-qr').replaceChildren(img);
    }
    $('join-other-list').replaceChildren(...others.map((url) => {
      const li = document.createElement('li');
      li.textContent = shown(url);
      return li;
    }));
    $('join-others').hidden = others.length === 0;
  } catch (error) {
    $('join-url').textContent = '';
    $('join-error').textContent = `Could not ask the server for its address: ${error.message}`;
    $('join-error').hidden = false;
    $('join-retry').hidden = false;
  }
}

$('join-retry').addEventListener('click', load);
load();
