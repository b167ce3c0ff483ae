// Struct and list columns read as text in every table that shows rows:
// the fake API's dashboard sink sends a struct column with a struct and a
// list inside, a list column and the detect operator's explanation struct
// ({field, direction, z}); its output rows carry an explanation object and
// a list. The cells must read "views high z 18.9", "k: v" pairs and
// [a, b], never JSON or [object Object].
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, watchConsole, distDir } from './harness.mjs';
import { startFake } from './fake.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

// columnTexts reads the results table as {column: [cell text, ...]}.
async function columnTexts(page, sel) {
  return page.evaluate((sel) => {
    const table = document.querySelector(sel);
    const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
    const out = Object.fromEntries(heads.map((hd) => [hd, []]));
    for (const tr of table.querySelectorAll('tbody tr')) [...tr.cells].forEach((td, i) => out[heads[i]] && out[heads[i]].push(td.textContent));
    return out;
  }, sel);
}

test('struct and list columns read as text in the results and output tables', async () => {
  // Four keys, the last anomalous every other window.
  const fake = await startFake({ distDir, keys: 4, everyMs: 150, anomalyEvery: 2, structs: true });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    await page.goto(fake.url + '/#/jobs/demo-0001');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=results-table] tr.anomaly').length > 0, null, { timeout: 30000 });
    const cols = await columnTexts(page, '[data-testid=results-table]');
    assert.deepEqual([...new Set(cols.explanation)].sort(), ['views high z 18.9', 'views low z -0.4']);
    // An anomalous row's explanation says high, the others low.
    const rows = await page.$$eval('[data-testid=results-table] tbody tr', (trs) => trs.map((tr) => [tr.classList.contains('anomaly'), tr.cells[tr.cells.length - 1].textContent]));
    for (const [anom, text] of rows) assert.equal(text, anom ? 'views high z 18.9' : 'views low z -0.4');
    for (const [i, text] of cols.source.entries()) {
      const key = Number(cols.key[i].split('/').pop());
      assert.equal(text, `shard: shardId-00000000000${key % 2}, lag_ms: ${key}, pos: {x: 1.5, y: ${key}}, hops: [edge, core]`);
      assert.equal(cols.tags[i], key % 2 ? `[odd, k${key}]` : '[]');
    }
    // The struct and list columns are not offered as aggregates.
    assert.deepEqual(await page.$$eval('[data-testid=aggregate-select] option', (os) => os.map((o) => o.value)), ['views', 'p95_ms']);
    // The output panel reads JSON rows the same way.
    await page.waitForSelector('[data-testid=output-rows] tbody tr', { timeout: 30000 });
    const out = await columnTexts(page, '[data-testid=output-rows] table');
    assert.ok(out.explanation.length > 0);
    for (const text of out.explanation) assert.match(text, /^views (high z 18\.9|low z -0\.4)$/);
    for (const text of out.tags) assert.equal(text, '[a, b]');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await fake.close();
  }
});
