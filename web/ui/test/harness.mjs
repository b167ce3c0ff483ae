// Shared pieces of the browser tests and the perf script: chromium via
// playwright-core, a Runnel server (RUNNEL_BIN or built with `go build`),
// and a front that serves the committed dist/ when the server does not
// serve the UI itself yet.
import http from 'node:http';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const uiDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = join(uiDir, '..', '..');
export const distDir = join(uiDir, 'dist');

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-precise-memory-info'],
  });
}

// watchConsole records every console error, uncaught exception and failed
// request of a page; a test fails if any happened.
export function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    const f = r.failure();
    // A live results fetch aborted on navigation is expected.
    if (f && /ERR_ABORTED/.test(f.errorText) && /\/results\/live/.test(r.url())) return;
    errors.push(`requestfailed: ${r.url()} ${f ? f.errorText : ''}`);
  });
  return errors;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

async function waitHTTP(url, ms, proc) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (proc && proc.exitCode != null) throw new Error(`server exited with ${proc.exitCode}`);
    try { const r = await fetch(url); if (r.ok) return; } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${url} not up after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// startRunnel starts `runnel serve --demo` on a free port with a fresh data
// directory. The binary is RUNNEL_BIN, or built from this checkout.
export async function startRunnel({ demo = true } = {}) {
  const tmp = mkdtempSync(join(tmpdir(), 'runnel-ui-test-'));
  let bin = process.env.RUNNEL_BIN;
  if (!bin) {
    bin = join(tmp, 'runnel');
    execFileSync('go', ['build', '-o', bin, './cmd/runnel'], { cwd: repoDir, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const port = await freePort();
  const args = ['serve', '--data', join(tmp, 'data'), '--addr', `127.0.0.1:${port}`];
  if (demo) args.push('--demo');
  const log = [];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => log.push(String(d)));
  proc.stderr.on('data', (d) => log.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHTTP(url + '/healthz', 30000, proc);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\n${log.join('')}`);
  }
  return {
    url, log,
    async close() {
      if (proc.exitCode == null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await done;
        clearTimeout(t);
      }
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

// servesUI tells whether the server at url serves this UI on GET /.
export async function servesUI(url) {
  try {
    const r = await fetch(url + '/');
    return r.ok && (await r.text()).includes('/assets/main.js');
  } catch { return false; }
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

// frontFor serves dist/ and proxies everything else (streaming, unbuffered)
// to backend: a stand-in until the server mounts ui.Handler().
export async function frontFor(backend) {
  const target = new URL(backend);
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (req.method === 'GET' && (p === '/' || p.startsWith('/assets/') || p === '/favicon.ico')) {
      const file = p === '/' ? 'index.html' : p === '/favicon.ico' ? 'assets/favicon.svg' : p.slice(1);
      const full = join(distDir, file);
      if (!full.startsWith(distDir) || !existsSync(full)) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
      res.end(readFileSync(full));
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => { res.writeHead(502); res.end(e.message); });
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    async close() { server.closeAllConnections(); await new Promise((r) => server.close(r)); },
  };
}

export async function setEditorText(page, text) {
  await page.evaluate((t) => {
    const v = document.querySelector('[data-testid=job-editor]').cmView;
    v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: t } });
  }, text);
}
