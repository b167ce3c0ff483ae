// Browser tests: chromium (Debian's, via playwright-core) drives the UI.
//
//   "against runnel serve --demo": the real server (RUNNEL_BIN, or built
//   with go build) serving the embedded UI, with its demo job.
//   "against the fake API": the same walk through against test/fake.mjs,
//   which makes anomalies and validation errors deterministic.
//
// Each walk opens the job list and the demo job, checks the graph's nodes
// against the API, waits for the chart to draw window results, pauses the
// table, waits for the checkpoint history, submits a broken job (the error must show at its line) and then a
// good one (the page must go to it and show it running), visits the streams
// pages, saves screenshots to test/screenshots/, and fails on any console
// error, uncaught exception or failed request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser, watchConsole, startRunnel, setEditorText, goodJob, badJob, deadLetterJob, uiDir, distDir } from './harness.mjs';
import { startFake } from './fake.mjs';

const shots = join(uiDir, 'test', 'screenshots');
mkdirSync(shots, { recursive: true });

function lineOf(text, needle) {
  return text.split('\n').findIndex((l) => l.includes(needle)) + 1;
}

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

async function walk(t, { base, prefix, expectAnomaly, windowWaitMs }) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = watchConsole(page);
  const api = async (p, opts) => { const r = await fetch(base + '/api/v1' + p, opts); return { status: r.status, body: await r.json() }; };
  try {
    await t.test('job list shows the demo job', async () => {
      await page.goto(base + '/');
      await page.waitForSelector('[data-testid=job-list] [data-testid=job-row]', { timeout: 30000 });
      const jobs = (await api('/jobs')).body.jobs;
      const demo = jobs.find((j) => j.name === 'demo') || jobs[0];
      assert.ok(demo, 'the server lists no job');
      const row = page.locator(`[data-testid=job-row][data-job-id="${demo.id}"]`);
      assert.equal(await row.count(), 1);
      assert.match(await row.innerText(), new RegExp(demo.state));
      await row.locator('a').click();
      await page.waitForURL(new RegExp('#/jobs/' + encodeURIComponent(demo.id) + '$'));
      t.demo = demo;
    });

    await t.test('job page draws one graph node per operator', async () => {
      const job = (await api('/jobs/' + encodeURIComponent(t.demo.id))).body;
      const want = (job.graph && job.graph.length ? job.graph.map((n) => n.id) : job.operators.map((o) => o.ID)).sort();
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=job-graph] [data-testid=graph-node]').length === n, want.length, { timeout: 15000 });
      const got = (await page.locator('[data-testid=graph-node]').evaluateAll((els) => els.map((e) => e.dataset.nodeId))).sort();
      assert.deepEqual(got, want);
      // After two polls the nodes carry rates.
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=graph-node]')].some((e) => e.dataset.out && Number(e.dataset.out) > 0), null, { timeout: 15000 });
    });

    await t.test('the chart draws window results', async () => {
      // A chart out of sight is not drawn: bring it into view.
      await page.locator('[data-testid=results-chart]').scrollIntoViewIfNeeded();
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=results-chart]')?.dataset.points) >= 2, null, { timeout: windowWaitMs });
      assert.ok(await page.locator('[data-testid=results-chart] canvas').count() >= 1, 'no chart canvas');
      const draws = await page.evaluate(() => window.__runnelStats.draws);
      assert.ok(draws >= 1, `chart drawn ${draws} times`);
      const aggs = await page.locator('[data-testid=aggregate-select] option').allInnerTexts();
      assert.ok(aggs.includes('views'), `aggregates offered: ${aggs}`);
      if (expectAnomaly) {
        await page.waitForSelector('[data-testid=anomaly-marker]:not([hidden])', { timeout: windowWaitMs });
        // The expected range of the anomalous key can be drawn as a band.
        const key = '/page/19'; // the fake's anomalous key
        await page.selectOption('[data-testid=band-select]', key);
        await page.waitForFunction((k) => document.querySelector('[data-testid=results-chart]').dataset.band === k, key);
      }
      await page.screenshot({ path: join(shots, `${prefix}-job.png`), fullPage: true });
    });

    await t.test('the results table can be paused', async () => {
      await page.waitForSelector('[data-testid=results-table] [data-testid=result-row]', { timeout: windowWaitMs });
      await page.click('[data-testid=pause-results]');
      const frozen = await page.locator('[data-testid=results-table] tbody').innerText();
      const rows = await page.evaluate(() => window.__runnelStats.rows);
      await page.waitForFunction((n) => window.__runnelStats.rows > n, rows, { timeout: windowWaitMs });
      await page.waitForTimeout(400); // longer than the table's redraw interval
      assert.equal(await page.locator('[data-testid=results-table] tbody').innerText(), frozen, 'paused table changed');
      await page.click('[data-testid=pause-results]');
      await page.waitForFunction((f) => document.querySelector('[data-testid=results-table] tbody').innerText !== f, frozen, { timeout: windowWaitMs });
    });

    await t.test('at 800 px the results table scrolls rather than crushing its columns', async () => {
      await page.setViewportSize({ width: 800, height: 1000 });
      try {
        await page.waitForTimeout(300);
        const widths = await page.locator('[data-testid=results-table] thead th').evaluateAll((ths) => ths.map((th) => th.getBoundingClientRect().width));
        assert.ok(Math.min(...widths) >= 60, `column widths ${widths.map(Math.round)}`);
        const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        assert.ok(scroll <= inner, `the page is ${scroll} px wide in an ${inner} px window`);
      } finally {
        await page.setViewportSize({ width: 1400, height: 1000 });
      }
    });

    await t.test('the output panel shows the sink\'s rows', async () => {
      await page.waitForSelector('[data-testid=output-rows] tbody tr', { timeout: windowWaitMs });
      const sinks = await page.locator('[data-testid=output-sink] option').allInnerTexts();
      assert.ok(sinks.some((s) => /^board /.test(s)), `sinks offered: ${sinks}`);
      assert.match(await page.locator('[data-testid=output-rows] thead').innerText(), /window_end/);
    });

    await t.test('the checkpoint history fills', async () => {
      await page.waitForSelector('[data-testid=checkpoints] tbody tr', { timeout: 30000 });
      const head = await page.locator('[data-testid=checkpoints] thead').innerText();
      for (const col of ['Epoch', 'Time \\(UTC\\)', 'Duration', 'Sources held', 'Size', 'Status']) assert.match(head, new RegExp(col), `no ${col} column`);
      const cols = (await page.locator('[data-testid=checkpoints] thead th').allInnerTexts()).map((c) => c.trim().toLowerCase());
      assert.deepEqual(cols.filter((c, i) => cols.indexOf(c) !== i), [], `a column twice: ${cols}`);
      const body = await page.locator('[data-testid=checkpoints] tbody').innerText();
      assert.match(body, /complete/);
      // Units, one time format: no nanosecond times, no raw byte counts.
      assert.doesNotMatch(body, /\.\d{4,}Z|T\d\d:/, 'a raw time in the checkpoint table');
      assert.match(body, /\d (B|KiB|MiB)\b/, 'sizes without units');
      assert.match(body, /\d (ms|s)\b/, 'durations without units');
    });

    await t.test('a broken job shows its error at its line', async () => {
      await page.click('[data-testid=new-job]');
      await page.waitForSelector('[data-testid=job-editor] .cm-content');
      const text = badJob();
      await setEditorText(page, text);
      await page.click('[data-testid=submit-job]');
      const err = page.locator('[data-testid=validation-error]').first();
      await err.waitFor({ timeout: 10000 });
      const line = lineOf(text, 'filter:');
      assert.equal(await err.getAttribute('data-line'), String(line), `error text: ${await err.innerText()}`);
      assert.match(await err.innerText(), new RegExp(`line ${line}`));
      // The editor marks the line too (a lint range and a gutter marker).
      await page.waitForSelector('.cm-lintRange-error');
      assert.ok(await page.locator('.cm-lint-marker-error').count() >= 1, 'no gutter marker');
      await page.screenshot({ path: join(shots, `${prefix}-editor-error.png`) });
      // Chromium logs every 4xx answer to fetch; this one is the point of the step.
      const expected = errors.findIndex((e) => /status of 400 .*\/api\/v1\/jobs\)$/.test(e));
      assert.ok(expected >= 0, 'the broken job was not answered with a 400');
      errors.splice(expected, 1);
    });

    await t.test('a good job is submitted and runs', async () => {
      const name = `ui-test-${Date.now() % 100000}`;
      await setEditorText(page, goodJob(name));
      await page.click('[data-testid=job-editor] .cm-content');
      await page.keyboard.press('Control+Enter'); // submits, like the button
      await page.waitForURL(/#\/jobs\/[^/]+$/, { timeout: 15000 });
      const id = decodeURIComponent(page.url().split('#/jobs/')[1]);
      const job = (await api('/jobs/' + encodeURIComponent(id))).body;
      assert.equal(job.name, name);
      await page.waitForSelector('[data-testid=job-state]:text("running")', { timeout: 15000 });
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=graph-node]').length >= 3, null, { timeout: 15000 });
      await page.locator('[data-testid=results-chart]').scrollIntoViewIfNeeded();
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=results-chart]')?.dataset.points) >= 1, null, { timeout: windowWaitMs });
      // The row counter is this page's: it does not carry the rows of the
      // job page visited before.
      const shown = Number((await page.locator('[data-testid=results-status]').innerText()).match(/live · (\d+) rows?/)[1]);
      const res = await fetch(base + '/api/v1/jobs/' + encodeURIComponent(id) + '/results?sink=board&format=json');
      const text = await res.text();
      const rowsNow = res.ok ? (text.match(/"key"/g) || []).length : 0;
      if (res.ok) assert.ok(shown <= rowsNow, `the page counts ${shown} rows, the job has ${rowsNow}`);
    });

    await t.test('a savepoint is taken from the job page', async () => {
      await page.click('[data-testid=take-savepoint]');
      await page.waitForFunction(() => /Savepoint \S+ taken/.test(document.querySelector('[data-testid=lifecycle-note]').textContent), null, { timeout: 30000 });
    });

    await t.test('the job is stopped from its page', async () => {
      const id = decodeURIComponent(page.url().split('#/jobs/')[1]);
      // Stop asks first; Cancel leaves the job running.
      await page.click('[data-testid=stop-job]');
      await page.waitForSelector('[data-testid=stop-confirm]:not([hidden])');
      await page.click('[data-testid=cancel-stop]');
      assert.ok(await page.locator('[data-testid=stop-confirm]').isHidden());
      assert.equal((await api('/jobs/' + encodeURIComponent(id))).body.state, 'running');
      await page.click('[data-testid=stop-job]');
      await page.click('[data-testid=confirm-stop]');
      await page.waitForSelector('[data-testid=job-state]:text("stopped")', { timeout: 30000 });
      assert.equal((await api('/jobs/' + encodeURIComponent(id))).body.state, 'stopped');
      assert.ok(await page.locator('[data-testid=stop-job]').isHidden(), 'Stop still offered');
      // A stopped job's nodes show no rates and no backpressure colour.
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=graph-node]')].every((e) => e.dataset.in === '' && e.dataset.out === '' && e.dataset.backpressure === ''), null, { timeout: 10000 });
      // They show its state instead of rates: no "in –/s", no "fused with
      // humans" on the fused stage's own node.
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=graph-node]')].every((e) => /stopped/.test(e.textContent)), null, { timeout: 10000 });
      for (const text of await page.locator('[data-testid=graph-node]').allTextContents()) assert.doesNotMatch(text, /\/s|fused with/, text);
      // Resume starts it again from its latest checkpoint.
      await page.click('[data-testid=resume-job]');
      await page.waitForSelector('[data-testid=job-state]:text("running")', { timeout: 30000 });
      await page.click('[data-testid=stop-job]');
      await page.click('[data-testid=confirm-stop]');
      await page.waitForSelector('[data-testid=job-state]:text("stopped")', { timeout: 30000 });
      await page.goto(base + '/#/jobs');
      await page.waitForSelector(`[data-testid=job-row][data-job-id="${id}"]`);
    });

    await t.test('streams pages list shards and tail records', async () => {
      const streams = (await api('/streams')).body.streams;
      assert.ok(streams.length >= 1, 'no stream to show');
      await page.goto(base + '/#/streams');
      await page.waitForSelector('[data-testid=stream-row]');
      await page.click(`[data-testid=stream-row] a:text("${streams[0].name}")`);
      const st = (await api('/streams/' + encodeURIComponent(streams[0].name))).body;
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=shard-row]').length === n, st.shards.length);
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=shard-rate]')].every((e) => e.textContent !== '…'), null, { timeout: 10000 });
      await page.waitForSelector('[data-testid=tail-row]', { timeout: 15000 });
      await page.screenshot({ path: join(shots, `${prefix}-stream.png`), fullPage: true });
    });

    await t.test('no console errors', () => {
      assert.deepEqual(errors, []);
    });
  } finally {
    await context.close();
  }
}

test('UI against the fake API', async (t) => {
  const fake = await startFake({ distDir, keys: 20, everyMs: 200 });
  try {
    await walk(t, { base: fake.url, prefix: 'fake', expectAnomaly: true, windowWaitMs: 15000 });
  } finally {
    await fake.close();
  }
});

test('UI against runnel serve --demo', async (t) => {
  const server = await startRunnel({ demo: true });
  try {
    // The server itself serves the committed, embedded build on /.
    const index = await fetch(server.url + '/');
    assert.equal(index.status, 200);
    assert.match(await index.text(), /\/assets\/main\.js/);
    // A stream with records for the streams pages.
    const asJSON = { 'Content-Type': 'application/json' };
    await fetch(server.url + '/api/v1/streams', { method: 'POST', headers: asJSON, body: JSON.stringify({ name: 'ui-clicks', shards: 2 }) });
    await fetch(server.url + '/api/v1/streams/ui-clicks/records', { method: 'POST', headers: asJSON, body: JSON.stringify({ records: Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, json: { i } })) }) });
    await walk(t, { base: server.url, prefix: 'demo', expectAnomaly: false, windowWaitMs: 60000 });
  } finally {
    await server.close();
  }
});

// A job whose map throws for some records and dead-letters them: its log
// sink's rows show in the output panel (they used to reach only the
// server's stdout), and the dead-letter sink is a node of the graph whose
// rows can be read too.
test('output of a log sink and a dead-letter sink', async (t) => {
  const server = await startRunnel({ demo: false });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    const job = deadLetterJob('logged', ['{id: shaped, dashboard: {title: Reshaped}}']);
    const r = await fetch(server.url + '/api/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body: job });
    assert.equal(r.status, 201, await r.text());
    await page.goto(server.url + '/#/jobs/logged');
    await page.waitForSelector('[data-testid=graph-node][data-node-id="shape-dead-letters"]', { timeout: 15000 });
    await page.waitForSelector('[data-testid=output-rows] tbody tr', { timeout: 15000 });
    assert.match(await page.locator('[data-testid=output-rows] thead').innerText(), /page/);
    assert.doesNotMatch(await page.locator('[data-testid=output-rows] tbody').innerText(), /\/page\/1\b/);
    await page.selectOption('[data-testid=output-sink]', 'shape-dead-letters');
    await page.waitForFunction(() => /no page 1/.test(document.querySelector('[data-testid=output-rows] tbody')?.innerText || ''), null, { timeout: 15000 });
    await page.screenshot({ path: join(shots, 'output-dead-letters.png'), fullPage: true });
    // A dashboard of rows a map reshaped (no window_end): no time chart,
    // a note saying why, the rows in the table.
    await page.waitForSelector('[data-testid=no-time-chart]', { timeout: 15000 });
    await page.waitForSelector('[data-testid=results-table] [data-testid=result-row]', { timeout: 15000 });
    assert.equal(await page.locator('[data-testid=results-chart] canvas').count(), 0);
    // The chart's controls would do nothing there: they are not shown.
    assert.equal(await page.locator('[data-testid=aggregate-select]').isVisible(), false);
    assert.equal(await page.locator('[data-testid=topn-select]').isVisible(), false);
    await page.waitForFunction(() => /^live · /.test(document.querySelector('[data-testid=results-status]').innerText), null, { timeout: 15000 });
    assert.doesNotMatch(await page.locator('[data-testid=results-status]').innerText(), /keys/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await server.close();
  }
});

// A job's warnings (here: a job file asking for more shards than its
// stream has) show on its page, under its state.
test('a job page shows the job\'s warnings; a missing job\'s page says only that', async (t) => {
  const server = await startRunnel({ demo: false });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    const post = (p, body, type) => fetch(server.url + '/api/v1' + p, { method: 'POST', headers: { 'Content-Type': type }, body });
    let r = await post('/streams', JSON.stringify({ name: 'two', shards: 2 }), 'application/json');
    assert.equal(r.status, 201, await r.text());
    r = await post('/jobs', 'name: warned\nsource: {stream: two, shards: 4}\nsinks:\n  - {id: out, input: source, log: {}}\n', 'application/yaml');
    assert.equal(r.status, 201, await r.text());
    const job = await (await fetch(server.url + '/api/v1/jobs/warned')).json();
    assert.ok(job.warnings && job.warnings.length === 1, JSON.stringify(job.warnings));
    await page.goto(server.url + '/#/jobs/warned');
    await page.waitForSelector('[data-testid=job-warnings] li', { timeout: 15000 });
    assert.equal(await page.locator('[data-testid=job-warnings] li').innerText(), job.warnings[0]);
    // Stopped, its graph's nodes show its state, and no rates ("in –/s").
    r = await fetch(server.url + '/api/v1/jobs/warned', { method: 'DELETE' });
    assert.equal(r.status < 300, true, await r.text());
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=graph-node]')].every((n) => /stopped/.test(n.textContent)), null, { timeout: 15000 });
    for (const text of await page.locator('[data-testid=graph-node]').allTextContents()) assert.doesNotMatch(text, /\/s/, text);
    assert.deepEqual(errors, []);
    // At a narrow width the lists scroll inside their box; the page does
    // not run off to the right.
    await page.setViewportSize({ width: 800, height: 1000 });
    for (const [hash, row] of [['#/jobs', 'job-row'], ['#/streams', 'stream-row']]) {
      await page.goto(server.url + '/' + hash);
      await page.waitForSelector(`[data-testid=${row}]`, { timeout: 15000 });
      const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= inner, `${hash} is ${scroll} px wide in an ${inner} px window`);
    }
    await page.setViewportSize({ width: 1400, height: 1000 });
    // A stream that is not there: the page says so and reads nothing more.
    await page.goto(server.url + '/#/streams/nope');
    await page.waitForSelector('[data-testid=no-such-stream]', { timeout: 15000 });
    const before = errors.length;
    await page.waitForTimeout(2500); // a poll's worth
    assert.equal(await page.locator('[data-testid=shard-list]').count(), 0);
    assert.deepEqual(errors.slice(before), [], 'requests after the stream was found missing');
    assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
    errors.length = 0;
    // A job that failed before its first checkpoint has nothing to restart
    // from: the picker says so and its Restart button is disabled (it did
    // nothing when clicked).
    r = await post('/jobs', 'name: failing\nsource: {stream: gone}\nsinks:\n  - {id: out, input: source, log: {}}\n', 'application/yaml');
    assert.equal(r.status, 201, await r.text());
    r = await fetch(server.url + '/api/v1/streams/gone', { method: 'DELETE' });
    assert.equal(r.status < 300, true, await r.text());
    await page.goto(server.url + '/#/jobs/failing');
    await page.waitForSelector('[data-testid=job-state]:text("failed")', { timeout: 30000 });
    await page.click('[data-testid=restart-job]');
    await page.waitForFunction(() => /no checkpoint or savepoint yet/.test(document.querySelector('[data-testid=restart-from]').textContent), null, { timeout: 15000 });
    assert.equal(await page.locator('[data-testid=confirm-restart]').isDisabled(), true);
    await page.click('[data-testid=cancel-restart]');
    assert.deepEqual(errors, []);
    // A job that is not there: the page says so, and nothing else of it
    // (no panels polling a missing job).
    await page.goto(server.url + '/#/jobs/nope');
    await page.waitForSelector('[data-testid=no-such-job]', { timeout: 15000 });
    const seen = errors.length;
    await page.waitForTimeout(2500); // two polls' worth
    assert.equal(await page.locator('[data-testid=job-graph]').count(), 0);
    assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
    assert.deepEqual(errors.slice(seen), [], 'requests after the job was found missing');
  } finally {
    await context.close();
    await server.close();
  }
});
