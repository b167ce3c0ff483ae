// The jobs list: every job with its state, watermark and lag.
import { api, enc, h, fmtTime, fmtAge, poller } from './api.js';

export function jobsPage(root) {
  const body = h('tbody');
  const table = h('table', { class: 'list', dataset: { testid: 'job-list' } },
    h('thead', null, h('tr', null, h('th', null, 'Job'), h('th', null, 'Name'), h('th', null, 'State'),
      h('th', null, 'Watermark'), h('th', null, 'Lag'), h('th', null, 'Created'))),
    body);
  const note = h('p', { class: 'muted' });
  root.append(h('div', { class: 'page-head' }, h('h1', null, 'Jobs')), table, note);
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
    body.replaceChildren(...jobs.map((j) => h('tr', { dataset: { testid: 'job-row', jobId: j.id, state: j.state } },
      h('td', null, h('a', { href: '#/jobs/' + enc(j.id) }, j.id)),
      h('td', null, j.name),
      h('td', null, stateBadge(j.state, j.reason)),
      h('td', null, fmtTime(j.watermark)),
      h('td', null, j.watermark != null && j.state === 'running' ? fmtAge(Date.now() - j.watermark) : '–'),
      h('td', null, fmtTime(Date.parse(j.created))))));
  }, 2000);
  return () => p.stop();
}

export function stateBadge(state, reason) {
  return h('span', { class: 'badge state-' + state, title: reason || '' , dataset: { testid: 'job-state' } }, state);
}
