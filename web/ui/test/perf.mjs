// Performance of the job page under load, against the fake API (the load
// is set there, not by the job runtime):
//
//   node test/perf.mjs                    # defaults below
//   PERF_KEYS=100 PERF_UPDATE_MS=10 PERF_RATE_SECONDS=10 \
//   PERF_MEM_UPDATE_MS=1000 PERF_MEM_MINUTES=3 node test/perf.mjs
//
// The job page shows its metrics history too: with PERF_HISTORY=1 (the
// default) the per-shard breakdown is opened, so nine history charts of
// 720 points each (the server's full hour) are redrawn at every 5 s poll
// beside the live results; PERF_HISTORY=0 leaves the seven the page
// always has. PERF_DIST=DIR serves another build (an older commit's
// dist/, from `git archive`), to compare two builds on one machine load.
// The window is 1400 × 1700 px, so the history charts and the live chart
// are all in sight (the page does not redraw charts out of sight).
// PERF_MEM_MINUTES=0 skips the memory part.
//
// The last line printed is the summary: CPU per update is the renderer
// main thread's CPU time per batch received (everything the page does,
// divided by the updates it was sent); the page is held to ≤ 20 ms.
//
// 1. Chart update rate: 100 keys, a batch every PERF_UPDATE_MS; counts the
//    chart redraws per second (uPlot draw hooks; redraws are batched per
//    animation frame, so the ceiling is the frame rate) and the renderer
//    main thread's CPU time (CDP Performance metrics in thread ticks) per
//    redraw — decoding, ingest, table and chart included — which gives the
//    redraws per second one core could sustain, whatever else loads the
//    machine. A starved page draws less often, with more batches in each
//    redraw, so the CPU per batch received is printed too.
// 2. Memory: 100 keys updating every PERF_MEM_UPDATE_MS for
//    PERF_MEM_MINUTES; every 15 s forces a GC and samples the JS heap
//    (CDP Runtime.getHeapUsage) and the DOM node count (Performance
//    metrics). Prints each sample and the growth from the first full
//    minute to the end.
import { launchBrowser, distDir as builtDist } from './harness.mjs';
import { startFake } from './fake.mjs';

const env = (k, d) => Number(process.env[k] || d);
const keys = env('PERF_KEYS', 100);
const history = env('PERF_HISTORY', 1) > 0;
// PERF_DIST measures another build of the UI (say, an older commit's dist).
const distDir = process.env.PERF_DIST || builtDist;
const historyPoints = 720;

async function openJob(browser, fake) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1700 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
  await page.goto(fake.url + '/#/jobs/demo-0001');
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=results-chart]')?.dataset.points) >= 2, null, { timeout: 30000 });
  if (history) {
    // The metrics history with its per-shard breakdown: nine charts of a
    // full hour (720 points), redrawn at each 5 s poll.
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart] canvas').length === 7, null, { timeout: 30000 });
    await page.click('[data-testid=shard-breakdown]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-chart] canvas').length === 9, null, { timeout: 30000 });
  }
  return { page, cdp };
}

async function sample(page, cdp) {
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = await cdp.send('Runtime.getHeapUsage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  const stats = await page.evaluate(() => ({ ...window.__runnelStats }));
  return { usedMB: heap.usedSize / 2 ** 20, nodes: m.Nodes, listeners: m.JSEventListeners, ...stats };
}

const browser = await launchBrowser();
const summary = {};
try {
  {
    const every = env('PERF_UPDATE_MS', 10), secs = env('PERF_RATE_SECONDS', 10);
    const fake = await startFake({ distDir, keys, everyMs: every, historyPoints });
    const { page, cdp } = await openJob(browser, fake);
    await page.waitForTimeout(3000); // let the chart fill its window
    const cpu = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
    const a = await page.evaluate(() => ({ ...window.__runnelStats, t: performance.now() }));
    const ca = await cpu();
    await page.waitForTimeout(secs * 1000);
    const b = await page.evaluate(() => ({ ...window.__runnelStats, t: performance.now() }));
    const cb = await cpu();
    const dt = (b.t - a.t) / 1000;
    const draws = b.draws - a.draws;
    const ms = ((cb.ThreadTime - ca.ThreadTime) * 1000) / draws;
    const hd = (b.historyDraws || 0) - (a.historyDraws || 0);
    console.log(`update rate: ${keys} keys, a batch every ${every} ms for ${secs} s, ${history ? 9 : 7} history charts of ${historyPoints} points (${hd} history polls): ` +
      `${((b.batches - a.batches) / dt).toFixed(1)} batches/s, ${((b.rows - a.rows) / dt).toFixed(0)} rows/s, ` +
      `${(draws / dt).toFixed(1)} chart redraws/s; main thread ${(((cb.ThreadTime - ca.ThreadTime) / dt) * 100).toFixed(0)}% busy, ` +
      `${ms.toFixed(1)} ms CPU per redraw (script ${(((cb.ScriptDuration - ca.ScriptDuration) * 1000) / draws).toFixed(1)}, ` +
      `layout+style ${(((cb.LayoutDuration - ca.LayoutDuration + cb.RecalcStyleDuration - ca.RecalcStyleDuration) * 1000) / draws).toFixed(1)}) ` +
      `→ ${(1000 / ms).toFixed(0)} redraws/s possible on one core; ` +
      `${(((cb.ThreadTime - ca.ThreadTime) * 1000) / (b.batches - a.batches)).toFixed(1)} ms CPU per batch received`);
    Object.assign(summary, {
      perUpdate: ((cb.ThreadTime - ca.ThreadTime) * 1000) / (b.batches - a.batches), perRedraw: ms,
      busy: ((cb.ThreadTime - ca.ThreadTime) / dt) * 100, batches: (b.batches - a.batches) / dt, draws: draws / dt,
      charts: history ? 9 : 7, keys, every,
    });
    await page.close();
    await fake.close();
  }
  if (env('PERF_MEM_MINUTES', 3) > 0) {
    const every = env('PERF_MEM_UPDATE_MS', 1000), minutes = env('PERF_MEM_MINUTES', 3);
    const fake = await startFake({ distDir, keys, everyMs: every, historyPoints });
    const { page, cdp } = await openJob(browser, fake);
    const samples = [];
    const start = Date.now();
    while (Date.now() - start < minutes * 60000) {
      const s = await sample(page, cdp);
      s.min = (Date.now() - start) / 60000;
      samples.push(s);
      console.log(`  t=${s.min.toFixed(2)} min  heap ${s.usedMB.toFixed(2)} MB  DOM nodes ${s.nodes}  listeners ${s.listeners}  batches ${s.batches}  draws ${s.draws}`);
      await page.waitForTimeout(15000);
    }
    const s = await sample(page, cdp);
    s.min = (Date.now() - start) / 60000;
    samples.push(s);
    const ref = samples.find((x) => x.min >= 1) || samples[0];
    console.log(`memory: ${keys} keys, a batch every ${every} ms for ${minutes} min (${s.batches} batches): heap ${ref.usedMB.toFixed(2)} MB at ${ref.min.toFixed(1)} min → ${s.usedMB.toFixed(2)} MB at ${s.min.toFixed(1)} min; DOM nodes ${ref.nodes} → ${s.nodes}`);
    summary.heap = `heap ${ref.usedMB.toFixed(2)} → ${s.usedMB.toFixed(2)} MB over ${minutes} min`;
    await page.close();
    await fake.close();
  }
} finally {
  await browser.close();
}
{
  const x = summary;
  console.log(`summary: ${x.perUpdate.toFixed(1)} ms CPU per update (target ≤ 20) with ${x.charts} history charts and ${x.keys} keys live, ` +
    `a batch every ${x.every} ms: ${x.batches.toFixed(1)} updates/s, ${x.draws.toFixed(1)} chart redraws/s at ${x.perRedraw.toFixed(1)} ms each, main thread ${x.busy.toFixed(0)}% busy` +
    (x.heap ? `; ${x.heap}` : '') + (process.env.PERF_DIST ? ` [build ${process.env.PERF_DIST}]` : ''));
}
