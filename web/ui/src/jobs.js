// The jobs list: every job with its state, throughput in and out, uptime,
// error count, watermark and lag.
import { api, enc, h, fmtAge, fmtRate, fmtDuration, fmtNum, timeEl, poller } from './api.js';

export function jobsPage(root) {
  const body = h('tbody');
  const table = h('table', { class: 'list', dataset: { testid: 'job-list' } },
    h('thead', null, h('tr', null, ['Job', 'Name', 'State', 'In', 'Out', 'Uptime', 'Errors', 'Watermark (UTC)', 'Lag', 'Created (UTC)'].map((c) => h('th', null, c)))),
    body);
  const note = h('p', { class: 'muted' });
  // (at a narrow width the table scrolls sideways, not the page)
  root.append(h('div', { class: 'page-head' }, h('h1', null, 'Jobs')), h('div', { class: 'scroll-x' }, table), note);
  const p = poller(async () => {
    let jobs;
    try {
      jobs = (await api('/jobs')).jobs || [];
      note.textContent = jobs.length ? '' : 'No jobs yet. Start one with “New job”.';
      note.classList.remove('error');
    } catch (e) {
      note.textContent = 'Cannot list jobs: ' + e.message;
      note.classList.add('error');
      return;
    }
    jobs.sort((a, b) => String(b.created).localeCompare(String(a.created)));
    body.replaceChildren(...jobs.map((j) => {
      const running = j.state === 'running';
      return h('tr', { dataset: { testid: 'job-row', jobId: j.id, state: j.state } },
        h('td', null, h('a', { href: '#/jobs/' + enc(j.id) }, j.id)),
        h('td', null, j.name),
        h('td', null, stateBadge(j.state, j.reason)),
        // A job that is not running has no rate: a stale one would mislead.
        h('td', { dataset: { testid: 'job-in' } }, running ? fmtRate(j.in_per_s) : '–'),
        h('td', { dataset: { testid: 'job-out' } }, running ? fmtRate(j.out_per_s) : '–'),
        h('td', { dataset: { testid: 'job-uptime' } }, running ? fmtDuration(j.uptime_s) : '–'),
        h('td', { class: j.errors ? 'error' : null, dataset: { testid: 'job-errors' } }, j.errors == null ? '–' : fmtNum(j.errors)),
        timeEl(j.watermark, 'td'),
        h('td', null, j.watermark != null && running ? fmtAge(Date.now() - j.watermark) : '–'),
        timeEl(j.created, 'td'));
    }));
  }, 2000);
  return () => p.stop();
}

export function stateBadge(state, reason) {
  return h('span', { class: 'badge state-' + state, title: reason || '', dataset: { testid: 'job-state' } }, state);
}
