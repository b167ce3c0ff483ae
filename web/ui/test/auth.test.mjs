// Browser tests of sign-in and of the cross-site defences, in a real
// Chromium against the real server.
//
//   "a page on another origin cannot submit a job": a page served from a
//   second loopback port does what an attacker's page would, a no-cors
//   text/plain POST of a job file; no job may appear.
//   "sign-in": with --auth the UI asks for a token once, keeps an HttpOnly
//   SameSite=Strict session cookie that is not the token, shows who is
//   signed in and hides what a reader cannot do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { launchBrowser, watchConsole, startRunnel } from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const pwnJob = `name: pwn
source: {generator: {rate: 10}}
sinks:
  - {id: board, dashboard: {title: pwned}}
`;

function servePage(html) {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(html);
    });
    srv.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${srv.address().port}/`, close: () => new Promise((r) => srv.close(r)) }));
  });
}

test('a page on another origin cannot submit a job', async () => {
  const runnel = await startRunnel({ demo: false });
  const attacker = await servePage(`<!doctype html><script>
    window.done = fetch(${JSON.stringify(runnel.url + '/api/v1/jobs')}, {method: 'POST', mode: 'no-cors',
      headers: {'Content-Type': 'text/plain'}, body: ${JSON.stringify(pwnJob)}}).then(() => 'sent', (e) => 'error: ' + e.message);
  </script>`);
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(attacker.url);
    const outcome = await page.evaluate(() => window.done);
    assert.equal(outcome, 'sent', 'the browser sent the request (an opaque answer)');
    const res = await fetch(runnel.url + '/api/v1/jobs/pwn');
    assert.equal(res.status, 404, 'the cross-site no-cors POST created a job');
    const jobs = await (await fetch(runnel.url + '/api/v1/jobs')).json();
    assert.deepEqual(jobs.jobs, []);
  } finally {
    await attacker.close();
    await runnel.close();
  }
});

test('sign-in', async () => {
  const runnel = await startRunnel({ demo: true, args: ['--auth'] });
  try {
    const token = (name, role) => execFileSync(runnel.bin, ['tokens', 'create', name, '--role', role, '--data', runnel.data]).toString().split('\n')[0];
    const reader = token('viewer', 'reader');
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchConsole(page);
    await page.goto(runnel.url + '/');
    await page.waitForSelector('[data-testid=sign-in]');
    // Signed out, the nav's pages would only fail: it is hidden.
    assert.equal(await page.isVisible('header nav'), false, 'the sign-in page shows the nav links');
    await page.fill('[data-testid=token]', 'rnl_wrong');
    await page.click('form.sign-in button');
    await page.waitForFunction(() => document.querySelector('[data-testid=sign-in-error]').textContent.includes('unknown'));
    await page.fill('[data-testid=token]', reader);
    await page.click('form.sign-in button');
    await page.waitForSelector('[data-testid=signed-in]');
    assert.equal(await page.textContent('[data-testid=signed-in]'), 'viewer · reader');
    assert.equal(await page.isVisible('header nav'), true, 'a reader does not see the nav links');
    assert.equal(await page.isVisible('[data-testid=new-job]'), false, 'a reader sees New job');
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, 'Strict');
    assert.notEqual(cookies[0].value, reader, 'the cookie is the token');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page can read the session cookie');
    // The session survives a reload without asking again.
    await page.reload();
    await page.waitForSelector('[data-testid=signed-in]');
    await page.goto(runnel.url + '/#/jobs/demo');
    await page.waitForSelector('text=demo');
    assert.equal(await page.isVisible('[data-testid=stop-job]'), false, 'a reader sees Stop');
    // The editor, reached by its address, is not shown to a reader: every
    // button of it would be refused.
    for (const hash of ['#/new', '#/jobs/demo/edit']) {
      await page.goto(runnel.url + '/' + hash);
      await page.waitForSelector('[data-testid=editor-needs-admin]');
      assert.equal(await page.locator('[data-testid=job-editor]').count(), 0, hash);
      assert.equal(await page.locator('[data-testid=submit-job], [data-testid=redeploy-job], [data-testid=preview-job]').count(), 0, hash);
    }
    // Sign-out brings the form back.
    await page.click('[data-testid=sign-out]');
    await page.waitForSelector('[data-testid=sign-in]');
    // The expected 401s of the sign-in flow are the only failed requests.
    assert.deepEqual(errors.filter((e) => !/401/.test(e)), []);
  } finally {
    await runnel.close();
  }
});
