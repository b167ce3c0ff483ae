// The job page does not redraw what cannot be seen: with the live chart
// scrolled out of sight, batches go on arriving (the table and the row
// counter follow them) and the chart is not drawn; scrolled back into
// view, it is drawn with the latest windows. Counts events, not time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, watchConsole, distDir } from './harness.mjs';
import { startFake } from './fake.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const stats = (page) => page.evaluate(() => ({ ...window.__runnelStats }));

test('a live chart out of sight is not redrawn, and is drawn when it comes back', async () => {
  const fake = await startFake({ distDir, keys: 20, everyMs: 100 });
  // A short window: the chart sits below the metrics history, out of sight.
  const context = await browser.newContext({ viewport: { width: 1400, height: 600 } });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    await page.goto(fake.url + '/#/jobs/demo-0001');
    await page.waitForSelector('[data-testid=results-table] [data-testid=result-row]', { timeout: 30000 });
    const box = await page.locator('[data-testid=results-chart]').boundingBox();
    assert.ok(box.y > 600, `the chart is out of sight (at y=${box.y})`);
    // The page has seen it go out of sight (its observer reports after
    // the layout that moved it there).
    await page.waitForSelector('[data-testid=results-chart][data-visible=false]', { state: 'attached', timeout: 30000 });
    const a = await stats(page);
    // Ten more batches arrive and reach the table.
    await page.waitForFunction((n) => window.__runnelStats.batches >= n, a.batches + 10, { timeout: 30000 });
    const status = await page.locator('[data-testid=results-status]').innerText();
    await page.waitForFunction((s) => document.querySelector('[data-testid=results-status]').innerText !== s, status, { timeout: 30000 });
    const b = await stats(page);
    assert.equal(b.draws, a.draws, `the chart was drawn ${b.draws - a.draws} times while out of sight`);
    await page.locator('[data-testid=results-chart]').scrollIntoViewIfNeeded();
    await page.waitForFunction((n) => window.__runnelStats.draws > n, b.draws, { timeout: 30000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=results-chart]').dataset.points) >= 2, null, { timeout: 30000 });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await fake.close();
  }
});
