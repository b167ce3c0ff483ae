// Browser test of the job page's Cluster panel: chromium opens the page of
// a cluster job served by a small stub of the two API answers the panel
// depends on (GET /api/v1/jobs/{id} with "cluster": true, and
// GET /api/v1/jobs/{id}/cluster, shaped as runnel serve --cluster answers;
// the real answers are checked by cmd/runnel's TestServeClusterWholeJobView),
// and the restart of a stopped cluster job (POST …/restart, which
// TestServeClusterJobLifecycle drives on a real server).
// Other API calls get not_found: the page's other panels say so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, extname } from 'node:path';
import { launchBrowser, distDir } from './harness.mjs';

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

const job = {
  id: 'pv', name: 'pv', state: 'running', created: '2026-12-06T10:00:00Z', cluster: true,
  spec: 'name: pv\n', graph: [{ id: 'source', kind: 'source' }, { id: 'per-page', kind: 'window', inputs: ['source'] }],
};
let lag = 7;
let failures = [];
const restarts = []; // the bodies of POST /api/v1/jobs/pv/restart
const status = () => ({
  job: 'pv', group: 'runnel-job.pv', state: 'Stable', lag,
  workers: [
    { id: 's1', host: '127.0.0.1', tasks: [{ stage: 0, topic: 'clicks', partition: 0 }, { stage: 1, topic: 'pv.per-page.repartition', partition: 0 }] },
    { id: 'w2', host: '127.0.0.1', tasks: [{ stage: 0, topic: 'clicks', partition: 1 }, { stage: 1, topic: 'pv.per-page.repartition', partition: 1 }], failures },
  ],
  partitions: [
    { stage: 0, topic: 'clicks', partition: 0, worker: 's1', committed: 10, end: 10 + lag, lag },
    { stage: 0, topic: 'clicks', partition: 1, worker: 'w2', committed: 5, end: 5, lag: 0 },
  ],
  rebalances: [{ generation: 1, at: '2026-12-06T10:00:00Z', before: [], after: ['s1'] }, { generation: 2, at: '2026-12-06T10:00:04Z', before: ['s1'], after: ['s1', 'w2'] }],
});

let server, base, browser;
before(async () => {
  server = http.createServer(async (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    const json = (code, v) => { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(v)); };
    if (p === '/' || p.startsWith('/assets/')) {
      const file = p === '/' ? 'index.html' : p.slice(1);
      try {
        const data = await readFile(join(distDir, file));
        res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
        return res.end(data);
      } catch { return json(404, { error: { code: 'not_found', message: p } }); }
    }
    if (p === '/api/v1/session') return json(200, { auth: false, role: 'admin' });
    if (p === '/api/v1/jobs/pv') return json(200, job);
    if (p === '/api/v1/jobs/pv/cluster') return json(200, status());
    if (p === '/api/v1/jobs/pv/restart' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      restarts.push(JSON.parse(body));
      job.state = 'running';
      return json(200, job);
    }
    return json(404, { error: { code: 'not_found', message: p + ' is not stubbed' } });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
});

test('a cluster job\'s page shows its workers, tasks, lag and rebalances', async () => {
  const page = await browser.newPage();
  await page.goto(base + '/#/jobs/pv');
  await page.waitForSelector('[data-testid=cluster-worker]', { timeout: 30000 });
  const workers = await page.locator('[data-testid=cluster-worker]').evaluateAll((els) => els.map((e) => [e.dataset.worker, e.innerText]));
  assert.deepEqual(workers.map((w) => w[0]), ['s1', 'w2']);
  assert.match(workers[0][1], /stage 0: clicks\/0/);
  assert.match(workers[1][1], /stage 1: pv\.per-page\.repartition\/1/);
  const lags = await page.locator('[data-testid=cluster-lag]').allInnerTexts();
  assert.deepEqual(lags, ['7', '0']);
  const reb = await page.locator('[data-testid=cluster-rebalances] tbody tr').allInnerTexts();
  assert.equal(reb.length, 2);
  assert.match(reb[0], /^2\s.*s1\s+s1, w2/s);
  // The panel follows the API: the lag drains.
  lag = 0;
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=cluster-lag]')].every((e) => e.textContent === '0'), null, { timeout: 15000 });
  assert.equal(await page.locator('[data-testid=cluster-failures]').count(), 0, 'no failures table while no worker failed');
  // A worker's failure shows up: counted in its row, listed with its text.
  failures = [{ kind: 'snapshot_upload', at: '2026-12-06T10:00:06.000Z', task: 'pv.per-page.repartition/1',
    text: 'snapshot upload to bucket snaps key runnel/pv/per-page/1 failed: connection refused' }];
  await page.waitForSelector('[data-testid=cluster-failure]', { timeout: 15000 });
  const row = await page.locator('[data-testid=cluster-failure]').evaluate((e) => [e.dataset.worker, e.dataset.kind, e.innerText]);
  assert.equal(row[0], 'w2');
  assert.equal(row[1], 'snapshot_upload');
  assert.match(row[2], /bucket snaps .*connection refused/);
  const w2 = await page.locator('[data-testid=cluster-worker][data-worker=w2] td').last().innerText();
  assert.equal(w2, '1');
  assert.match(await page.locator('[data-testid=cluster-note]').innerText(), /1 failures recorded/);
  await page.close();
});

test('a stopped cluster job restarts from the beginning, and offers no savepoint', async () => {
  job.state = 'stopped';
  const page = await browser.newPage();
  await page.goto(base + '/#/jobs/pv');
  await page.waitForSelector('[data-testid=restart-job]:not([hidden])', { timeout: 30000 });
  assert.equal(await page.locator('[data-testid=take-savepoint]').isHidden(), true, 'a cluster job has no savepoints');
  await page.click('[data-testid=restart-job]');
  const options = await page.locator('[data-testid=restart-from] option').evaluateAll((els) => els.map((e) => [e.value, e.textContent]));
  assert.deepEqual(options, [['from:beginning', 'the beginning (its offsets and state are dropped)']]);
  await page.click('[data-testid=confirm-restart]');
  await page.waitForFunction(() => /Restarted from the beginning\./.test(document.querySelector('[data-testid=lifecycle-note]').textContent), null, { timeout: 15000 });
  assert.deepEqual(restarts, [{ from: 'beginning' }]);
  await page.close();
});
