// Browser tests of the UI as the place to run jobs: the lifecycle of a job
// from its page (stop, restart from a checkpoint or savepoint, edit and
// redeploy, delete), preview from the editor, the error history, metrics
// over time, the jobs list's columns, and the streams pages' actions.
// Each fails on any console error, uncaught exception or failed request.
//
// Each runs twice: against `runnel serve --demo` (RUNNEL_BIN, or built with
// go build) and against test/fake.mjs, whose errors, metrics and counts are
// deterministic and checked exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { launchBrowser, watchConsole, startRunnel, setEditorText, goodJob, deadLetterJob, uiDir, distDir } from './harness.mjs';
import { startFake } from './fake.mjs';

const shots = join(uiDir, 'test', 'screenshots');

let browser, fake, server;
before(async () => {
  browser = await launchBrowser();
  fake = await startFake({ distDir, keys: 20, everyMs: 500 });
  server = await startRunnel({ demo: true });
});
after(async () => {
  if (browser) await browser.close();
  if (fake) await fake.close();
  if (server) await server.close();
});

// Each test runs against both: `on` says which ({base, fake}); a few
// figures only the fake makes deterministic are checked on it alone.
const targets = [['the fake API', () => ({ base: fake.url, fake: true, demo: 'demo-0001' })],
  ['runnel serve', () => ({ base: server.url, fake: false, demo: 'demo' })]];
function both(title, fn) {
  for (const [name, on] of targets) test(`${title} (${name})`, () => fn(on()));
}

const yaml = (body) => ({ method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body });
const json = (v) => ({ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(v) });

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

both('a job page: stop with confirmation, restart from a savepoint, redeploy, delete', async (on) => {
  await withPage(on.base, async (page, api) => {
    const { body } = await api('/jobs', yaml(goodJob('life') + 'checkpoint: {every: 500ms}\n'));
    const id = body.id;
    await page.goto(`${on.base}/#/jobs/${encodeURIComponent(id)}`);
    await page.waitForSelector('[data-testid=job-state]:text("running")');
    const par = (await api('/jobs/' + id)).body.parallelism;
    assert.ok(par >= 1, `parallelism ${par}`);
    await page.waitForFunction((n) => document.querySelector('[data-testid=parallelism]')?.textContent === String(n), par);
    // A savepoint while it runs.
    await page.click('[data-testid=take-savepoint]');
    await page.waitForFunction(() => /Savepoint \S+ taken/.test(document.querySelector('[data-testid=lifecycle-note]').textContent));
    const sp = (await text(page, '[data-testid=lifecycle-note]')).match(/Savepoint (\S+) taken/)[1];
    // A checkpoint exists before the job stops, so the restart picker
    // below has one to offer (the fake's first comes 2 s after submit).
    for (const end = Date.now() + 30000; ; await new Promise((r) => setTimeout(r, 200))) {
      if (((await api(`/jobs/${id}/checkpoints`)).body.checkpoints || []).some((c) => !c.status || c.status === 'complete')) break;
      assert.ok(Date.now() < end, 'no checkpoint within 30 s');
    }
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
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=restart-from] option[value^="checkpoint:"]').length > 0, null, { timeout: 30000 });
    const values = await page.locator('[data-testid=restart-from] option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(values.includes('savepoint:' + sp), `picker: ${values}`);
    await page.selectOption('[data-testid=restart-from]', 'savepoint:' + sp);
    await page.click('[data-testid=confirm-restart]');
    await page.waitForSelector('[data-testid=job-state]:text("running")', { timeout: 30000 });
    assert.match(await text(page, '[data-testid=lifecycle-note]'), new RegExp(`Restarted from savepoint ${sp}`));
    // Edit and redeploy with parallelism 4.
    await page.click('[data-testid=edit-job]');
    await page.waitForSelector('[data-testid=job-editor] .cm-content');
    await page.waitForFunction(() => /name: life/.test(document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString()));
    const next = par === 4 ? 3 : 4;
    await page.fill('[data-testid=parallelism-input]', String(next));
    await page.dispatchEvent('[data-testid=parallelism-input]', 'change');
    await page.waitForFunction((n) => new RegExp(`^source:\n(  .*\n)*  shards: ${n}$`, 'm').test(document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString()), next);
    await page.click('[data-testid=redeploy-job]');
    await page.waitForURL(new RegExp(`#/jobs/${id}$`), { timeout: 30000 });
    await page.waitForFunction((n) => document.querySelector('[data-testid=parallelism]')?.textContent === String(n), next, { timeout: 30000 });
    assert.equal((await api('/jobs/' + id)).body.parallelism, next);
    // A change the savepoint's state does not fit: the 409 explains, and
    // deploying without state works.
    await page.click('[data-testid=edit-job]');
    await page.waitForFunction(() => /name: life/.test(document.querySelector('[data-testid=job-editor]')?.cmView.state.doc.toString()));
    const changed = (await page.evaluate(() => document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString())).replace('id: per-page', 'id: per-path');
    await setEditorText(page, changed);
    await page.click('[data-testid=redeploy-job]');
    await page.waitForSelector('[data-testid=redeploy-conflict]:not([hidden])', { timeout: 30000 });
    // The server's explanation names the operator and the way out.
    assert.match(await text(page, '[data-testid=redeploy-conflict-message]'), /per-page/);
    assert.match(await text(page, '[data-testid=redeploy-conflict-message]'), /from=none|without state/);
    await page.click('[data-testid=deploy-without-state]');
    await page.waitForURL(new RegExp(`#/jobs/${id}$`), { timeout: 30000 });
    assert.match((await api('/jobs/' + id)).body.spec, /id: per-path/);
    // Delete: only once stopped, and it asks first.
    await page.waitForSelector('[data-testid=stop-job]:visible', { timeout: 30000 });
    await page.click('[data-testid=stop-job]');
    await page.click('[data-testid=confirm-stop]');
    await page.waitForSelector('[data-testid=delete-job]:visible', { timeout: 30000 });
    await page.click('[data-testid=delete-job]');
    await page.waitForSelector('[data-testid=delete-confirm]:not([hidden])');
    await page.click('[data-testid=cancel-delete]');
    assert.equal((await api('/jobs/' + id)).status, 200);
    await page.click('[data-testid=delete-job]');
    await page.click('[data-testid=confirm-delete]');
    await page.waitForURL(/#\/jobs$/);
    assert.equal((await api('/jobs/' + id)).status, 404);
  }, [/status of 409 .*\/api\/v1\/jobs\/life(-[0-9a-f]+)?\?from=savepoint/]);
});

both('preview from the editor: a tab per operator with its rows and errors; a bad file marks its line', async (on) => {
  await withPage(on.base, async (page) => {
    await page.goto(on.base + '/#/new');
    await page.waitForSelector('[data-testid=job-editor] .cm-content');
    const job = goodJob('preview').replace('  - id: humans\n', `  - id: shape\n    map: "r => { if (r.page.endsWith('3')) throw new Error('no page 3'); return r }"\n  - id: humans\n`);
    await setEditorText(page, job);
    await page.fill('[data-testid=preview-records]', '500');
    await page.click('[data-testid=preview-job]');
    await page.waitForSelector('[data-testid=preview-tab]');
    assert.match(await text(page, '[data-testid=preview-summary]'), /500 records read in \d+ ms/);
    const tabs = await page.locator('[data-testid=preview-tab]').evaluateAll((els) => els.map((e) => e.dataset.op));
    assert.deepEqual(tabs, ['source', 'shape', 'humans', 'per-page', 'board']);
    // It opens on the operator with errors.
    await page.waitForSelector('[data-testid=preview-errors][data-op=shape] [data-testid=preview-error]');
    assert.match(await text(page, '[data-testid=preview-errors]'), on.fake ? /startsWith/ : /no page 3/);
    assert.match(await text(page, '[data-testid=preview-tab][data-op=shape]'), /\d+ errors/);
    if (on.fake) {
      assert.match(await text(page, '[data-testid=preview-body]'), /Errors \(3, the first 1 shown\)/);
      assert.match(await text(page, '[data-testid=preview-warning]'), /fewer records/);
    }
    await page.click('[data-testid=preview-tab][data-op=per-page]');
    await page.waitForSelector('[data-testid=preview-rows][data-op=per-page] tbody tr');
    assert.match(await text(page, '[data-testid=preview-body]'), /flushed/);
    assert.match(await text(page, '[data-testid=preview-rows] thead'), /^window_start\s+window_end\s+key\s+(\S+\s+)?views/);
    // Its cells read as in the output table: window times in UTC (not epoch
    // milliseconds), p95_ms with three decimals.
    const first = await page.locator('[data-testid=preview-rows] tbody tr').first().locator('td').allInnerTexts();
    assert.match(first[0], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/, first.join(' | '));
    const p95 = (await page.locator('[data-testid=preview-rows] thead th').allInnerTexts()).indexOf('p95_ms');
    if (p95 >= 0) assert.match(first[p95], /^\d+(\.\d{3})?$/, first.join(' | '));
    await page.screenshot({ path: join(shots, `${on.fake ? 'fake' : 'demo'}-preview.png`), fullPage: true });
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

both('the error history: time, operator, origin, message, the record, a link to its dead letter', async (on) => {
  await withPage(on.base, async (page, api) => {
    let id = on.demo, dlStream = 'demo-bad';
    if (!on.fake) {
      id = 'faulty';
      dlStream = 'faulty-bad';
      const r = await api('/jobs', yaml(deadLetterJob('faulty')));
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    await page.goto(`${on.base}/#/jobs/${id}`);
    await page.waitForSelector('[data-testid=error-row]', { timeout: 30000 });
    const want = (await api(`/jobs/${id}/errors`)).body;
    assert.ok(want.errors.length >= 1);
    if (on.fake) assert.equal(await page.locator('[data-testid=error-row]').count(), want.errors.length);
    const first = page.locator('[data-testid=error-row]').first();
    const row = await first.innerText();
    assert.match(row, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/, 'time in UTC ISO form');
    assert.match(await first.locator('td').first().getAttribute('title'), /GMT|UTC/, 'local time on hover');
    if (on.fake) {
      assert.match(row, /parse/);
      assert.match(row, /clicks\/shardId-000000000001@49000000000000000017/);
      assert.match(row, /Cannot read property 'startsWith'/);
      assert.match(await text(page, '[data-testid=errors-note]'), /^2 errors/);
    } else {
      assert.match(row, /shape/);
      assert.match(row, /no page 1/);
      assert.doesNotMatch(row, /at <eval>|\(\d+\)$/m, 'engine stack noise in the message');
      assert.match(await text(page, '[data-testid=errors-note]'), /^\d+ errors?\b/);
    }
    // The record, pretty-printed; it stays open as errors come in.
    const key = await first.getAttribute('data-key');
    const mine = page.locator(`[data-testid=error-row][data-key="${key}"]`);
    await mine.locator('details summary').click();
    const opened = mine.locator('[data-testid=error-record]');
    const entry = want.errors.find((e) => `${e.time}|${e.operator}` === key.split('|').slice(0, 2).join('|'));
    if (on.fake) assert.equal(await opened.innerText(), JSON.stringify(entry.record, null, 2));
    else assert.match(await opened.innerText(), /^\{\n {2}"/);
    // The dead letter, readable, in the dead-letter stream's tail: the
    // server may not know the dead letter's own sequence number before it is
    // committed, so the link searches for the record's origin.
    const link = mine.locator('[data-testid=dead-letter-link]');
    const href = await link.getAttribute('href');
    assert.match(href, new RegExp(`^#/streams/${dlStream}(\\?find=\\w+)?$`));
    const find = decodeURIComponent((href.split('?find=')[1] || ''));
    if (on.fake) assert.equal(find, '49000000000000000017');
    // (clicked in the page at once: the table is redrawn as errors arrive)
    await link.evaluate((a) => a.click());
    await page.waitForURL(new RegExp(`#/streams/${dlStream}`));
    assert.equal(await page.inputValue('[data-testid=tail-search]'), find);
    await page.waitForSelector('[data-testid=tail-row][data-dead-letter="1"]', { timeout: 30000 });
    if (on.fake) assert.equal(await page.locator('[data-testid=tail-row]').count(), 1, 'the search keeps only the dead letter looked for');
    // The letter looked for is the one from the record's origin; another
    // letter may match the search elsewhere (a short sequence number can
    // stand inside other numbers), so pick it by its origin.
    const letter = (find && !on.fake)
      ? page.locator('[data-testid=dead-letter]', { hasText: new RegExp(`@${find}(\\D|$)`) }).first()
      : page.locator('[data-testid=dead-letter]').first();
    await letter.waitFor({ timeout: 30000 });
    const dl = await letter.innerText();
    if (on.fake) {
      assert.match(dl, /Dead letter of job demo-0001, operator parse/);
      assert.match(dl, /"page": "\/page\/3"/);
    } else {
      assert.match(dl, /Dead letter of job faulty, operator shape/);
      assert.match(dl, /no page 1/);
      assert.match(dl, /"page": "[^"]*1"/);
      if (find) assert.match(dl, new RegExp(`@${find}(\\D|$)`));
    }
    await page.screenshot({ path: join(shots, `${on.fake ? 'fake' : 'demo'}-dead-letters.png`), fullPage: true });
  });
});

both('metrics over time: seven history charts, two more per shard on demand', async (on) => {
  await withPage(on.base, async (page, api) => {
    await page.goto(`${on.base}/#/jobs/${on.demo}`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart] canvas').length === 7, null, { timeout: 30000 });
    const charts = () => page.locator('[data-testid=history-chart]').evaluateAll((els) => els.map((e) => [e.dataset.chart, Number(e.dataset.lines), Number(e.dataset.points)]));
    assert.deepEqual((await charts()).map((c) => c[0]), ['in', 'out', 'backpressure', 'watermark-lag', 'checkpoint-duration', 'checkpoint-size', 'state-size']);
    // A line per operator the history names; state size only for those
    // that keep state.
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=history-chart][data-chart=in]').dataset.points) >= 2, null, { timeout: 30000 });
    const hist = (await api(`/jobs/${on.demo}/metrics/history`)).body;
    const ops = Object.keys(hist.points.at(-1).operators);
    const got = await charts();
    for (const [id, lines] of got) if (['in', 'out', 'backpressure'].includes(id)) assert.equal(lines, ops.length, `${id}: ${lines} lines for ${ops}`);
    if (on.fake) {
      assert.deepEqual(got.map((c) => c[1]), [6, 6, 6, 1, 1, 1, 1], 'state size only for the window');
      assert.ok(got.every((c) => c[2] === 120));
    }
    // Legend values carry units (the latest values).
    await page.waitForFunction(() => /\d (B|KiB|MiB)/.test(document.querySelector('[data-testid=history-chart][data-chart=checkpoint-size]').innerText), null, { timeout: 30000 });
    assert.match(await text(page, '[data-testid=history-chart][data-chart=in]'), /\d+(\.\d+)?k?\/s/);
    assert.match(await text(page, '[data-testid=history-chart][data-chart=watermark-lag]'), /\d (ms|s)/);
    await page.click('[data-testid=shard-breakdown]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart] canvas').length === 9, null, { timeout: 30000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=history-chart][data-chart=shard-in]').dataset.lines) >= 1, null, { timeout: 30000 });
    if (on.fake) assert.equal(await page.locator('[data-testid=history-chart][data-chart=shard-in]').getAttribute('data-lines'), '2');
    await page.click('[data-testid=shard-breakdown]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart]').length === 7);
  });
});

both('the jobs list: throughput, uptime and errors with units; no rates for a stopped job', async (on) => {
  await withPage(on.base, async (page, api) => {
    const { body } = await api('/jobs', yaml(goodJob('listed')));
    await api('/jobs/' + body.id, { method: 'DELETE' });
    await page.goto(on.base + '/#/jobs');
    const demo = page.locator(`[data-testid=job-row][data-job-id="${on.demo}"]`);
    await demo.waitFor();
    if (on.fake) {
      assert.equal(await demo.locator('[data-testid=job-in]').innerText(), '2000 rec/s');
      assert.equal(await demo.locator('[data-testid=job-out]').innerText(), '4 rec/s');
      assert.equal(await demo.locator('[data-testid=job-errors]').innerText(), '2');
    } else {
      await page.waitForFunction((id) => /^[1-9][\d.]*k? rec\/s$/.test(document.querySelector(`[data-testid=job-row][data-job-id="${id}"] [data-testid=job-in]`).textContent), on.demo, { timeout: 30000 });
      assert.match(await demo.locator('[data-testid=job-out]').innerText(), /^[\d.]+k? rec\/s$/);
      assert.match(await demo.locator('[data-testid=job-errors]').innerText(), /^\d+$/);
    }
    assert.match(await demo.locator('[data-testid=job-uptime]').innerText(), /^\d+(\.\d)?s$|^\d+m\d\ds$/);
    const stopped = page.locator(`[data-testid=job-row][data-job-id="${body.id}"]`);
    await stopped.waitFor();
    await page.waitForFunction((id) => document.querySelector(`[data-testid=job-row][data-job-id="${id}"]`).dataset.state === 'stopped', body.id, { timeout: 30000 });
    assert.equal(await stopped.locator('[data-testid=job-in]').innerText(), '–');
    assert.equal(await stopped.locator('[data-testid=job-uptime]').innerText(), '–');
  });
});

// spreadKeys picks partition keys that land on `n` different shards of an
// n-shard stream, both as Kinesis hashes them (MD5 over an even split of the
// 128-bit range) and as the fake does (a character sum).
function spreadKeys(n) {
  const md5 = new Set(), sum = new Set(), keys = [];
  for (let i = 0; keys.length < n && i < 10000; i++) {
    const k = `key-${i}`;
    const a = Number((BigInt('0x' + createHash('md5').update(k).digest('hex')) * BigInt(n)) >> 128n);
    const b = [...k].reduce((x, c) => x + c.charCodeAt(0), 0) % n;
    if (md5.has(a) || sum.has(b)) continue;
    md5.add(a); sum.add(b); keys.push(k);
  }
  return keys;
}

both('streams: create, put a record, tail several shards with search, counts and readers, delete', async (on) => {
  await withPage(on.base, async (page, api) => {
    let reader = on.demo;
    if (!on.fake) {
      // A stream of records and a job reading it.
      await api('/streams', json({ name: 'clicks', shards: 2 }));
      const keys = spreadKeys(2);
      await api('/streams/clicks/records', json({ records: Array.from({ length: 40 }, (_, i) => ({ key: keys[i % 2], json: { page: `/page/${i % 8}`, n: i } })) }));
      reader = 'clickreader';
      const r = await api('/jobs', yaml('name: clickreader\nsource: {stream: clicks}\noperators:\n  - id: all\n    filter: "r => true"\nsinks:\n  - {id: out, log: {}}\n'));
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    await page.goto(on.base + '/#/streams');
    const clicks = page.locator('[data-testid=stream-row][data-stream=clicks]');
    await clicks.waitFor();
    assert.match(await clicks.locator('[data-testid=stream-records]').innerText(), /^\d/);
    assert.match(await clicks.locator('[data-testid=stream-bytes]').innerText(), /^\d+(\.\d)? (B|KiB|MiB)$/);
    await page.waitForFunction((id) => document.querySelector('[data-testid=stream-row][data-stream=clicks] [data-testid=stream-readers]').textContent === id, reader, { timeout: 15000 });
    // Create.
    await page.fill('[data-testid=new-stream-name]', 'orders');
    await page.fill('[data-testid=new-stream-shards]', '3');
    await page.click('[data-testid=create-stream-submit]');
    await page.waitForSelector('[data-testid=stream-row][data-stream=orders]');
    assert.equal((await api('/streams/orders')).body.shards.length, 3);
    await page.click('[data-testid=stream-row][data-stream=orders] a');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=tail-shard]').length === 3, null, { timeout: 15000 });
    // Put: not JSON is refused before sending, JSON is put.
    await page.fill('[data-testid=put-json]', '{"item": 1,}');
    await page.click('[data-testid=put-record]');
    assert.match(await text(page, '[data-testid=put-note]'), /Not JSON/);
    const keys = spreadKeys(3);
    const items = [['apple', 1], ['pear', 2], ['plum', 3]];
    for (let i = 0; i < 3; i++) {
      await page.fill('[data-testid=put-key]', keys[i]);
      await page.fill('[data-testid=put-json]', JSON.stringify({ item: items[i][0], qty: items[i][1] }));
      await page.click('[data-testid=put-record]');
      await page.waitForFunction((item) => /Put in shardId-\d+ at position \d+/.test(document.querySelector('[data-testid=put-note]').textContent) && document.querySelector('[data-testid=put-json]').value.includes(item), items[i][0]);
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=tail-row]').length === n, i + 1, { timeout: 15000 });
    }
    // The tail follows every shard together, pretty-printed.
    const shardsSeen = new Set(await page.locator('[data-testid=tail-row]').evaluateAll((els) => els.map((e) => e.dataset.shard)));
    assert.equal(shardsSeen.size, 3, `records from shards ${[...shardsSeen]}`);
    assert.match(await text(page, '[data-testid=tail]'), /\{\n {2}"item": "pear",\n {2}"qty": 2\n\}/);
    await page.fill('[data-testid=tail-search]', 'plum');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=tail-row]').length === 1);
    assert.match(await text(page, '[data-testid=tail]'), /plum/);
    await page.waitForFunction(() => /^3 records kept · \d+(\.\d)? (B|KiB) on disk$/.test(document.querySelector('[data-testid=stream-counts]').textContent), null, { timeout: 15000 });
    // Delete asks first.
    await page.click('[data-testid=delete-stream]');
    await page.click('[data-testid=cancel-delete-stream]');
    assert.equal((await api('/streams/orders')).status, 200);
    await page.click('[data-testid=delete-stream]');
    await page.click('[data-testid=confirm-delete-stream]');
    await page.waitForURL(/#\/streams$/);
    assert.equal((await api('/streams/orders')).status, 404);
    // Two shards of clicks tailed together, newest first.
    await page.goto(on.base + '/#/streams/clicks');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=tail-row]').length >= 20, null, { timeout: 15000 });
    // The jobs reading it, as links (not their URLs as text).
    await page.waitForFunction((id) => document.querySelector('[data-testid=stream-page-readers]')?.textContent === id, reader, { timeout: 15000 });
    assert.equal(await page.locator('[data-testid=stream-page-readers] a').getAttribute('href'), '#/jobs/' + reader);
    const rows = await page.locator('[data-testid=tail-row]').evaluateAll((els) => els.map((e) => [e.dataset.shard, e.querySelector('.tail-head [title]').getAttribute('title')]));
    assert.equal(new Set(rows.map((r) => r[0])).size, 2, 'records of both shards');
    const times = rows.map((r) => Date.parse(r[1]));
    assert.deepEqual(times, times.slice().sort((a, b) => b - a), 'newest first across shards');
    await page.screenshot({ path: join(shots, `${on.fake ? 'fake' : 'demo'}-stream.png`), fullPage: true });
  });
});
