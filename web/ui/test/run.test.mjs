// Browser tests of the UI as the place to run jobs: the lifecycle of a job
// from its page (stop, restart from a checkpoint or savepoint, edit and
// redeploy, delete), preview from the editor, the error history, metrics
// over time, the jobs list's columns, and the streams pages' actions.
// Each fails on any console error, uncaught exception or failed request.
//
// They run against `runnel serve` (RUNNEL_BIN, or built with go build)
// where the server has the routes, and against test/fake.mjs otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, watchConsole, setEditorText, goodJob, uiDir, distDir } from './harness.mjs';
import { startFake } from './fake.mjs';

const shots = join(uiDir, 'test', 'screenshots');

let browser, fake;
before(async () => {
  browser = await launchBrowser();
  fake = await startFake({ distDir, keys: 20, everyMs: 500 });
});
after(async () => {
  if (browser) await browser.close();
  if (fake) await fake.close();
});

// withPage opens a page on base, runs fn, and fails on any console error
// but the expected ones (each a regexp that must match exactly one error).
async function withPage(base, fn, expected = []) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = watchConsole(page);
  const api = async (p, opts) => {
    const r = await fetch(base + '/api/v1' + p, opts);
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  try {
    await fn(page, api);
    for (const re of expected) {
      const i = errors.findIndex((e) => re.test(e));
      assert.ok(i >= 0, `no console error matching ${re}: ${errors.join('\n')}`);
      errors.splice(i, 1);
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
}

const text = (page, sel) => page.locator(sel).innerText();

test('a job page: stop with confirmation, restart from a savepoint, redeploy, delete', async () => {
  await withPage(fake.url, async (page, api) => {
    const { body } = await api('/jobs', { method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body: goodJob('life') });
    const id = body.id;
    await page.goto(`${fake.url}/#/jobs/${encodeURIComponent(id)}`);
    await page.waitForSelector('[data-testid=job-state]:text("running")');
    assert.equal(await text(page, '[data-testid=parallelism]'), '2');
    // A savepoint while it runs.
    await page.click('[data-testid=take-savepoint]');
    await page.waitForFunction(() => /Savepoint \S+ taken/.test(document.querySelector('[data-testid=lifecycle-note]').textContent));
    const sp = (await text(page, '[data-testid=lifecycle-note]')).match(/Savepoint (\S+) taken/)[1];
    // Stop asks first; Cancel leaves it running.
    await page.click('[data-testid=stop-job]');
    await page.click('[data-testid=cancel-stop]');
    assert.ok(await page.locator('[data-testid=stop-confirm]').isHidden());
    assert.equal((await api('/jobs/' + id)).body.state, 'running');
    assert.ok(await page.locator('[data-testid=delete-job]').isHidden(), 'Delete offered for a running job');
    await page.click('[data-testid=stop-job]');
    await page.click('[data-testid=confirm-stop]');
    await page.waitForSelector('[data-testid=job-state]:text("stopped")');
    // Restart: the picker offers the savepoint and the checkpoints.
    await page.click('[data-testid=restart-job]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=restart-from] option[value^="checkpoint:"]').length > 0);
    const values = await page.locator('[data-testid=restart-from] option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(values.includes('savepoint:' + sp), `picker: ${values}`);
    await page.selectOption('[data-testid=restart-from]', 'savepoint:' + sp);
    await page.click('[data-testid=confirm-restart]');
    await page.waitForSelector('[data-testid=job-state]:text("running")');
    assert.match(await text(page, '[data-testid=lifecycle-note]'), new RegExp(`Restarted from savepoint ${sp}`));
    // Edit and redeploy with parallelism 4.
    await page.click('[data-testid=edit-job]');
    await page.waitForSelector('[data-testid=job-editor] .cm-content');
    await page.waitForFunction(() => /name: life/.test(document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString()));
    await page.fill('[data-testid=parallelism-input]', '4');
    await page.dispatchEvent('[data-testid=parallelism-input]', 'change');
    await page.waitForFunction(() => /^parallelism: 4$/m.test(document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString()));
    await page.click('[data-testid=redeploy-job]');
    await page.waitForURL(new RegExp(`#/jobs/${id}$`));
    await page.waitForFunction(() => document.querySelector('[data-testid=parallelism]')?.textContent === '4');
    // A change the savepoint's state does not fit: the 409 explains, and
    // deploying without state works.
    await page.click('[data-testid=edit-job]');
    await page.waitForFunction(() => /name: life/.test(document.querySelector('[data-testid=job-editor]')?.cmView.state.doc.toString()));
    const changed = (await page.evaluate(() => document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString())).replace('id: per-page', 'id: per-path');
    await setEditorText(page, changed);
    await page.click('[data-testid=redeploy-job]');
    await page.waitForSelector('[data-testid=redeploy-conflict]:not([hidden])');
    assert.match(await text(page, '[data-testid=redeploy-conflict-message]'), /per-page.*from=none/);
    await page.click('[data-testid=deploy-without-state]');
    await page.waitForURL(new RegExp(`#/jobs/${id}$`));
    assert.match((await api('/jobs/' + id)).body.spec, /id: per-path/);
    // Delete: only once stopped, and it asks first.
    await page.waitForSelector('[data-testid=stop-job]:visible');
    await page.click('[data-testid=stop-job]');
    await page.click('[data-testid=confirm-stop]');
    await page.waitForSelector('[data-testid=delete-job]:visible');
    await page.click('[data-testid=delete-job]');
    await page.waitForSelector('[data-testid=delete-confirm]:not([hidden])');
    await page.click('[data-testid=cancel-delete]');
    assert.equal((await api('/jobs/' + id)).status, 200);
    await page.click('[data-testid=delete-job]');
    await page.click('[data-testid=confirm-delete]');
    await page.waitForURL(/#\/jobs$/);
    assert.equal((await api('/jobs/' + id)).status, 404);
  }, [/status of 409 .*\/api\/v1\/jobs\/life-[0-9a-f]+\?from=savepoint/]);
});

test('preview from the editor: a tab per operator with its rows and errors; a bad file marks its line', async () => {
  await withPage(fake.url, async (page) => {
    await page.goto(fake.url + '/#/new');
    await page.waitForSelector('[data-testid=job-editor] .cm-content');
    const job = goodJob('preview').replace('  - id: humans\n', '  - id: shape\n    map: "r => r"\n  - id: humans\n');
    await setEditorText(page, job);
    await page.fill('[data-testid=preview-records]', '500');
    await page.click('[data-testid=preview-job]');
    await page.waitForSelector('[data-testid=preview-tab]');
    assert.match(await text(page, '[data-testid=preview-summary]'), /500 records read in \d+ ms/);
    const tabs = await page.locator('[data-testid=preview-tab]').evaluateAll((els) => els.map((e) => e.dataset.op));
    assert.deepEqual(tabs, ['source', 'shape', 'humans', 'per-page']);
    // It opens on the operator with errors.
    await page.waitForSelector('[data-testid=preview-errors][data-op=shape] [data-testid=preview-error]');
    assert.match(await text(page, '[data-testid=preview-errors]'), /startsWith/);
    assert.match(await text(page, '[data-testid=preview-body]'), /Errors \(3, the first 1 shown\)/);
    assert.match(await text(page, '[data-testid=preview-tab][data-op=shape]'), /3 errors/);
    assert.match(await text(page, '[data-testid=preview-warning]'), /fewer records/);
    await page.click('[data-testid=preview-tab][data-op=per-page]');
    await page.waitForSelector('[data-testid=preview-rows][data-op=per-page] tbody tr');
    assert.match(await text(page, '[data-testid=preview-body]'), /flushed/);
    assert.match(await text(page, '[data-testid=preview-rows] thead'), /window_start\s+window_end\s+key\s+views/);
    await page.screenshot({ path: join(shots, 'fake-preview.png'), fullPage: true });
    // A broken file: the 400 marks the line in the editor.
    const bad = job.replace('tumbling: 1s', 'tumbling: 1x');
    await setEditorText(page, bad);
    await page.click('[data-testid=preview-job]');
    const err = page.locator('[data-testid=validation-error]').first();
    await err.waitFor();
    assert.equal(await err.getAttribute('data-line'), String(bad.split('\n').findIndex((l) => l.includes('tumbling')) + 1));
    await page.waitForSelector('.cm-lintRange-error');
  }, [/status of 400 .*\/api\/v1\/jobs\/preview\?records=500/]);
});

test('the error history: time, operator, origin, message, the record, a link to its dead letter', async () => {
  await withPage(fake.url, async (page, api) => {
    await page.goto(fake.url + '/#/jobs/demo-0001');
    await page.waitForSelector('[data-testid=error-row]');
    const want = (await api('/jobs/demo-0001/errors')).body;
    assert.equal(await page.locator('[data-testid=error-row]').count(), want.errors.length);
    const first = page.locator('[data-testid=error-row]').first();
    const row = await first.innerText();
    assert.match(row, /parse/);
    assert.match(row, /clicks\/shardId-000000000001@49000000000000000017/);
    assert.match(row, /Cannot read property 'startsWith'/);
    assert.match(row, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/, 'time in UTC ISO form');
    await first.locator('details summary').click();
    assert.equal(await first.locator('[data-testid=error-record]').innerText(), JSON.stringify(want.errors[0].record, null, 2));
    assert.match(await text(page, '[data-testid=errors-note]'), /2 errors/);
    // The dead letter, readable, in the dead-letter stream's tail.
    await first.locator('[data-testid=dead-letter-link]').click();
    // The server does not know a dead letter's own sequence number before
    // it is committed: the link searches for the record's origin.
    await page.waitForURL(/#\/streams\/demo-bad\?find=49000000000000000017$/);
    assert.equal(await page.inputValue('[data-testid=tail-search]'), '49000000000000000017');
    await page.waitForSelector('[data-testid=tail-row][data-dead-letter="1"]');
    assert.equal(await page.locator('[data-testid=tail-row]').count(), 1, 'the search keeps only the dead letter looked for');
    const dl = await text(page, '[data-testid=dead-letter]');
    assert.match(dl, /Dead letter of job demo-0001, operator parse/);
    assert.match(dl, /"page": "\/page\/3"/);
    await page.screenshot({ path: join(shots, 'fake-dead-letters.png'), fullPage: true });
  });
});

test('metrics over time: seven history charts, two more per shard on demand', async () => {
  await withPage(fake.url, async (page) => {
    await page.goto(fake.url + '/#/jobs/demo-0001');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart] canvas').length === 7);
    const charts = await page.locator('[data-testid=history-chart]').evaluateAll((els) => els.map((e) => [e.dataset.chart, e.dataset.lines, e.dataset.points]));
    assert.deepEqual(charts.map((c) => c[0]), ['in', 'out', 'backpressure', 'watermark-lag', 'checkpoint-duration', 'checkpoint-size', 'state-size']);
    assert.deepEqual(charts.map((c) => Number(c[1])), [6, 6, 6, 1, 1, 1, 1], 'a line per operator; state size only for the window');
    assert.ok(charts.every((c) => c[2] === '120'));
    // Axis and legend values carry units.
    const legend = await text(page, '[data-testid=history-chart][data-chart=checkpoint-size]');
    assert.match(legend, /\d (KiB|MiB)/);
    assert.match(await text(page, '[data-testid=history-chart][data-chart=in]'), /\/s/);
    await page.click('[data-testid=shard-breakdown]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart] canvas').length === 9);
    assert.equal(await page.locator('[data-testid=history-chart][data-chart=shard-in]').getAttribute('data-lines'), '2');
    await page.click('[data-testid=shard-breakdown]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart]').length === 7);
  });
});

test('the jobs list: throughput, uptime and errors with units; no rates for a stopped job', async () => {
  await withPage(fake.url, async (page, api) => {
    const { body } = await api('/jobs', { method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body: goodJob('listed') });
    await api('/jobs/' + body.id, { method: 'DELETE' });
    await page.goto(fake.url + '/#/jobs');
    const demo = page.locator('[data-testid=job-row][data-job-id="demo-0001"]');
    await demo.waitFor();
    assert.equal(await demo.locator('[data-testid=job-in]').innerText(), '2000 rec/s');
    assert.equal(await demo.locator('[data-testid=job-out]').innerText(), '4 rec/s');
    assert.match(await demo.locator('[data-testid=job-uptime]').innerText(), /^\d+(\.\d)?s|^\dm\d\ds/);
    assert.equal(await demo.locator('[data-testid=job-errors]').innerText(), '2');
    const stopped = page.locator(`[data-testid=job-row][data-job-id="${body.id}"]`);
    await stopped.waitFor();
    assert.equal(await stopped.locator('[data-testid=job-in]').innerText(), '–');
    assert.equal(await stopped.locator('[data-testid=job-uptime]').innerText(), '–');
  });
});

test('streams: create, put a record, tail several shards with search, counts and readers, delete', async () => {
  await withPage(fake.url, async (page, api) => {
    await page.goto(fake.url + '/#/streams');
    const clicks = page.locator('[data-testid=stream-row][data-stream=clicks]');
    await clicks.waitFor();
    assert.match(await clicks.locator('[data-testid=stream-records]').innerText(), /^\d/);
    assert.match(await clicks.locator('[data-testid=stream-bytes]').innerText(), /^\d+(\.\d)? (B|KiB|MiB)$/);
    assert.equal(await clicks.locator('[data-testid=stream-readers]').innerText(), 'demo-0001');
    // Create.
    await page.fill('[data-testid=new-stream-name]', 'orders');
    await page.fill('[data-testid=new-stream-shards]', '3');
    await page.click('[data-testid=create-stream-submit]');
    await page.waitForSelector('[data-testid=stream-row][data-stream=orders]');
    assert.equal((await api('/streams/orders')).body.shards.length, 3);
    await page.click('[data-testid=stream-row][data-stream=orders] a');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=tail-shard]').length === 3);
    // Put: not JSON is refused before sending, JSON is put.
    await page.fill('[data-testid=put-json]', '{"item": 1,}');
    await page.click('[data-testid=put-record]');
    assert.match(await text(page, '[data-testid=put-note]'), /Not JSON/);
    for (const [k, v] of [['a', '{"item": "apple", "qty": 1}'], ['bb', '{"item": "pear", "qty": 2}'], ['ccc', '{"item": "plum", "qty": 3}']]) {
      await page.fill('[data-testid=put-key]', k);
      await page.fill('[data-testid=put-json]', v);
      await page.click('[data-testid=put-record]');
      await page.waitForFunction((key) => /Put in shardId-\d+ at position \d+/.test(document.querySelector('[data-testid=put-note]').textContent) && document.querySelector('[data-testid=put-key]').value === key, k);
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=tail-row]').length === n, ['a', 'bb', 'ccc'].indexOf(k) + 1);
    }
    // The tail follows every shard together, pretty-printed.
    const shardsSeen = new Set(await page.locator('[data-testid=tail-row]').evaluateAll((els) => els.map((e) => e.dataset.shard)));
    assert.ok(shardsSeen.size >= 2, `records from shards ${[...shardsSeen]}`);
    assert.match(await text(page, '[data-testid=tail]'), /\{\n {2}"item": "pear",\n {2}"qty": 2\n\}/);
    await page.fill('[data-testid=tail-search]', 'plum');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=tail-row]').length === 1);
    assert.match(await text(page, '[data-testid=tail]'), /plum/);
    await page.waitForFunction(() => /^3 records · \d+ B$/.test(document.querySelector('[data-testid=stream-counts]').textContent));
    // Delete asks first.
    await page.click('[data-testid=delete-stream]');
    await page.click('[data-testid=cancel-delete-stream]');
    assert.equal((await api('/streams/orders')).status, 200);
    await page.click('[data-testid=delete-stream]');
    await page.click('[data-testid=confirm-delete-stream]');
    await page.waitForURL(/#\/streams$/);
    assert.equal((await api('/streams/orders')).status, 404);
    // Two shards of clicks tailed together, newest first.
    await page.goto(fake.url + '/#/streams/clicks');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=tail-row]').length >= 20);
    const rows = await page.locator('[data-testid=tail-row]').evaluateAll((els) => els.map((e) => [e.dataset.shard, e.querySelector('.tail-head [title]').getAttribute('title')]));
    assert.equal(new Set(rows.map((r) => r[0])).size, 2, 'records of both shards');
    const times = rows.map((r) => Date.parse(r[1]));
    assert.deepEqual(times, times.slice().sort((a, b) => b - a), 'newest first across shards');
    await page.screenshot({ path: join(shots, 'fake-stream.png'), fullPage: true });
  });
});
