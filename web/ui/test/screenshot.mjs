// Takes the screenshots of docs/ui.md into docs/ui/ (and the README's,
// docs/ui.png, the job page's): starts `runnel serve --demo` (RUNNEL_BIN or
// built here) with a stream of records and a job that dead-letters some
// (harness.mjs deadLetterJob), lets them run SHOT_SECONDS (default 90) so
// the charts have history, and saves each page.
//
//   node test/screenshot.mjs
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser, startRunnel, setEditorText, deadLetterJob, repoDir } from './harness.mjs';

const seconds = Number(process.env.SHOT_SECONDS || 90);
const out = join(repoDir, 'docs', 'ui');
mkdirSync(out, { recursive: true });

const server = await startRunnel({ demo: true });
const browser = await launchBrowser();
try {
  const base = server.url;
  const post = (p, body, type = 'application/json') => fetch(base + '/api/v1' + p, { method: 'POST', headers: { 'Content-Type': type }, body });
  await post('/streams', JSON.stringify({ name: 'orders', shards: 2 }));
  await post('/streams/orders/records', JSON.stringify({ records: Array.from({ length: 30 }, (_, i) => ({ key: `user-${i}`, json: { order: 1000 + i, user: `user-${i}`, total: Math.round(((i * 37) % 90) + 10), items: [{ sku: `sku-${i % 7}`, qty: 1 + (i % 3) }] } })) }));
  await post('/jobs', deadLetterJob('checkout'), 'application/yaml');
  const { jobs } = await (await fetch(base + '/api/v1/jobs')).json();
  const demo = jobs.find((j) => j.name === 'demo') || jobs[0];
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${base}/#/jobs/${encodeURIComponent(demo.id)}`);
  await page.waitForTimeout(seconds * 1000);
  // Show one key's expected range when the chart offers it.
  const band = page.locator('[data-testid=band-select]');
  if (await band.isVisible()) {
    const keys = (await band.locator('option').evaluateAll((os) => os.map((o) => o.value))).filter(Boolean);
    if (keys.length) {
      await band.selectOption(keys[0]);
      await page.waitForTimeout(1500);
    }
  }
  const shot = async (name, full = false) => {
    await page.screenshot({ path: join(out, name), fullPage: full });
    console.log('wrote', join(out, name));
  };
  await shot('job.png');
  await page.locator('[data-testid=history]').scrollIntoViewIfNeeded();
  await page.locator('[data-testid=history]').screenshot({ path: join(out, 'job-history.png') });
  console.log('wrote', join(out, 'job-history.png'));
  // The README's: the metrics folded away, so the live results show.
  await page.click('[data-testid=history] > summary');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(1000);
  await page.screenshot({ path: join(repoDir, 'docs', 'ui.png') });
  console.log('wrote', join(repoDir, 'docs', 'ui.png'));

  await page.goto(`${base}/#/jobs/checkout`);
  await page.waitForSelector('[data-testid=error-row]', { timeout: 30000 }).catch(() => {});
  await page.waitForTimeout(6000);
  await page.locator('[data-testid=errors]').scrollIntoViewIfNeeded();
  const firstError = page.locator('[data-testid=error-row] details summary').first();
  if (await firstError.count()) await firstError.click();
  await page.locator('[data-testid=errors]').screenshot({ path: join(out, 'job-errors.png') });
  console.log('wrote', join(out, 'job-errors.png'));

  await page.goto(`${base}/#/jobs`);
  await page.waitForSelector('[data-testid=job-row]');
  await page.waitForTimeout(2500);
  await shot('jobs.png');

  await page.goto(`${base}/#/jobs/checkout/edit`);
  await page.waitForSelector('[data-testid=job-editor] .cm-content');
  await page.waitForFunction(() => /name: checkout/.test(document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString()));
  await page.fill('[data-testid=preview-records]', '2000');
  await page.click('[data-testid=preview-job]');
  await page.waitForSelector('[data-testid=preview-tab]', { timeout: 30000 }).catch(() => {});
  await shot('editor-preview.png', true);

  await page.goto(`${base}/#/new`);
  await page.waitForSelector('[data-testid=job-editor] .cm-content');
  await setEditorText(page, (await page.evaluate(() => document.querySelector('[data-testid=job-editor]').cmView.state.doc.toString())).replace('tumbling: 5s', 'tumbling: 5 seconds'));
  await page.click('[data-testid=submit-job]');
  await page.waitForSelector('[data-testid=validation-error]');
  await shot('editor-error.png');

  await page.goto(`${base}/#/streams`);
  await page.waitForSelector('[data-testid=stream-row]');
  await page.waitForTimeout(3500);
  await shot('streams.png');

  await page.goto(`${base}/#/streams/orders`);
  await page.waitForSelector('[data-testid=tail-row]');
  await page.waitForTimeout(2500);
  await shot('stream.png');

  await page.goto(`${base}/#/streams/checkout-bad`);
  await page.waitForSelector('[data-testid=dead-letter]', { timeout: 30000 });
  await page.waitForTimeout(1500);
  await shot('dead-letters.png');
} finally {
  await browser.close();
  await server.close();
}
