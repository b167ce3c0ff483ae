// Runnel UI entry: a hash router over four pages. Each page is
// `render(root, params) → cleanup` and owns its timers and streams; the
// cleanup stops them when the user navigates away, so memory stays bounded.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { h } from './api.js';
import { jobsPage } from './jobs.js';
import { streamsPage, streamPage } from './streams.js';
import { loadSession, signIn, showUser } from './session.js';

const routes = [
  [/^#\/jobs\/([^/]+)\/edit$/, async (root, m) => (await import('./editor.js')).editorPage(root, decodeURIComponent(m[1])), 'jobs'],
  [/^#\/jobs\/([^/]+)$/, async (root, m) => (await import('./job.js')).jobPage(root, decodeURIComponent(m[1])), 'jobs'],
  [/^#\/(jobs)?$/, (root) => jobsPage(root), 'jobs'],
  [/^#\/streams\/([^/?]+)(?:\?(.*))?$/, (root, m) => streamPage(root, decodeURIComponent(m[1]), new URLSearchParams(m[2] || '')), 'streams'],
  [/^#\/streams$/, (root) => streamsPage(root), 'streams'],
  [/^#\/new$/, async (root) => (await import('./editor.js')).editorPage(root), 'new'],
];

let cleanup = null;
let seq = 0;

async function route() {
  const root = document.getElementById('app');
  const hash = location.hash || '#/jobs';
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  const my = ++seq;
  root.replaceChildren();
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.remove('active');
  for (const [re, render, nav] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    const link = document.querySelector(`[data-nav="${nav}"]`);
    if (link) link.classList.add('active');
    const c = await render(root, m);
    if (my === seq) cleanup = c || null;
    else if (c) c();
    return;
  }
  root.append(h('p', null, 'No such page. ', h('a', { href: '#/jobs' }, 'Jobs')));
}

async function start() {
  let s = await loadSession();
  if (!s) s = await signIn(document.getElementById('app'));
  showUser(s);
  window.addEventListener('hashchange', route);
  route();
}

start();
