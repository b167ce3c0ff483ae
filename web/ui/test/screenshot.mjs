// Refreshes docs/ui.png: starts `runnel serve --demo` (RUNNEL_BIN or built
// here), lets the demo job run SHOT_SECONDS (default 90) so the chart has
// history, and saves the demo job's page.
//
//   node test/screenshot.mjs
import { join } from 'node:path';
import { launchBrowser, startRunnel, repoDir } from './harness.mjs';

const seconds = Number(process.env.SHOT_SECONDS || 90);
const server = await startRunnel({ demo: true });
const browser = await launchBrowser();
try {
  const base = server.url;
  const { jobs } = await (await fetch(server.url + '/api/v1/jobs')).json();
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
  const out = join(repoDir, 'docs', 'ui.png');
  await page.screenshot({ path: out });
  console.log('wrote', out);
} finally {
  await browser.close();
  await server.close();
}
