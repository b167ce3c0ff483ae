// Shared pieces of the browser tests and the perf script: chromium via
// playwright-core and a Runnel server (RUNNEL_BIN or built with `go build`).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
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
    // A live results fetch or an output long poll aborted on navigation is expected.
    if (f && /ERR_ABORTED/.test(f.errorText) && /\/results\/live|\/output\?/.test(r.url())) return;
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
export async function startRunnel({ demo = true, args: extra = [] } = {}) {
  const tmp = mkdtempSync(join(tmpdir(), 'runnel-ui-test-'));
  let bin = process.env.RUNNEL_BIN;
  if (!bin) {
    bin = join(tmp, 'runnel');
    execFileSync('go', ['build', '-o', bin, './cmd/runnel'], { cwd: repoDir, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const port = await freePort();
  const args = ['serve', '--data', join(tmp, 'data'), '--addr', `127.0.0.1:${port}`];
  if (demo) args.push('--demo');
  args.push(...extra);
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
    url, log, bin, data: join(tmp, 'data'),
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

export async function setEditorText(page, text) {
  await page.evaluate((t) => {
    const v = document.querySelector('[data-testid=job-editor]').cmView;
    v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: t } });
  }, text);
}

// goodJob is a valid job file of a generator, a filter, a 1 s window and a
// dashboard sink.
export function goodJob(name) {
  return `name: ${name}
source:
  generator: {rate: 500, keys: 8}
  event_time: "r => r.ts"
  watermark: 1s
operators:
  - id: humans
    filter: "r => !r.user.startsWith('bot-')"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1s
      aggregate:
        views: count
        p95_ms: p95(latency_ms)
sinks:
  - {id: board, dashboard: {title: "UI test"}}
`;
}

// badJob has a JavaScript syntax error in the filter (a missing paren).
export function badJob() {
  return goodJob('broken').replace(`filter: "r => !r.user.startsWith('bot-')"`, `filter: "r => !r.user.startsWith('bot-'"`);
}

// deadLetterJob is a job whose map throws for the pages ending in 1 and
// dead-letters those records to NAME-bad; the others are reshaped to
// {page, user} and go to a log sink, and to any more sinks given.
export function deadLetterJob(name, moreSinks = []) {
  return `name: ${name}
source:
  generator: {rate: 50, keys: 4}
operators:
  - id: shape
    map: "r => { if (r.page.endsWith('1')) throw new Error('no page 1'); return {page: r.page, user: r.user} }"
    on_error: {dead_letter: ${name}-bad}
sinks:
  - {id: printed, log: {}}
${moreSinks.map((s) => `  - ${s}\n`).join('')}checkpoint: {every: 500ms}
`;
}
