// The job page (loaded on demand with apache-arrow, uPlot and dagre): state,
// watermark and lag, the operator graph, late records, checkpoints, and one
// live results panel per dashboard sink.
import { api, enc, h, fmtTime, fmtAge, fmtNum, poller } from './api.js';
import { stateBadge } from './jobs.js';
import { JobGraph, operatorsOf } from './graph.js';
import { ResultsPanel } from './results.js';
import { OutputPanel } from './output.js';

export function jobPage(root, id) {
  const title = h('h1', null, id);
  const stateEl = h('span');
  const stopBtn = h('button', { class: 'danger', 'data-needs': 'admin', dataset: { testid: 'stop-job' } }, 'Stop');
  const facts = h('dl', { class: 'facts' });
  const reasonEl = h('p', { class: 'error', hidden: true });
  const graphBox = h('div', { class: 'graph', dataset: { testid: 'job-graph' } });
  const resultsBox = h('div');
  const output = new OutputPanel(id);
  const cpBox = h('div');
  const specBox = h('pre', { class: 'spec' });
  root.append(
    h('div', { class: 'page-head' }, title, stateEl, stopBtn),
    reasonEl, facts,
    h('section', null, h('h2', null, 'Graph'), graphBox),
    resultsBox,
    output.el,
    h('section', null, h('h2', null, 'Checkpoints'), cpBox),
    h('details', null, h('summary', null, 'Job file'), specBox));

  const graph = new JobGraph(graphBox);
  const panels = new Map();
  let stopped = false;
  stopBtn.addEventListener('click', async () => {
    stopBtn.disabled = true;
    try { await api('/jobs/' + enc(id), { method: 'DELETE' }); } catch (e) { alert('Stop failed: ' + e.message); }
  });

  const p = poller(async () => {
    let job;
    try {
      job = await api('/jobs/' + enc(id));
    } catch (e) {
      facts.replaceChildren(h('p', { class: 'error' }, e.status === 404 ? 'No such job.' : 'Cannot load job: ' + e.message));
      return;
    }
    if (stopped) return;
    title.textContent = job.name ? `${job.name}` : job.id;
    stateEl.replaceChildren(stateBadge(job.state, job.reason));
    stopBtn.hidden = job.state !== 'running';
    reasonEl.hidden = !job.reason;
    reasonEl.textContent = job.reason || '';
    const ops = operatorsOf(job);
    const late = ops.reduce((s, o) => s + (o.Late || 0), 0);
    const errors = ops.reduce((s, o) => s + (o.Errors || 0) + (o.Skipped || 0) + (o.DeadLettered || 0), 0);
    const lag = job.watermark != null && job.state === 'running' ? Date.now() - job.watermark : null;
    facts.replaceChildren(
      fact('Job id', job.id),
      fact('Created', fmtTime(Date.parse(job.created))),
      fact('Watermark', fmtTime(job.watermark)),
      fact('Watermark lag', fmtAge(lag), { testid: 'watermark-lag' }),
      fact('Late records', fmtNum(late), { testid: 'late-records' }),
      fact('Errors and skipped', fmtNum(errors)));
    graph.update(job);
    if (specBox.textContent !== (job.spec || '')) specBox.textContent = job.spec || '';
    const sinks = (job.sinks || []).filter((s) => s.kind === 'dashboard');
    for (const s of sinks) {
      if (panels.has(s.id)) continue;
      const panel = new ResultsPanel(id, s);
      panels.set(s.id, panel);
      resultsBox.append(panel.el);
    }
    for (const panel of panels.values()) panel.setJobState(job.state);
    if (!sinks.length && !resultsBox.firstChild) {
      resultsBox.append(h('p', { class: 'muted' }, 'This job has no dashboard sink: its rows are under Output.'));
    }
    output.setSinks(job.sinks || []);
    renderCheckpoints(cpBox, job.checkpoints);
  }, 1000);

  return () => {
    stopped = true;
    p.stop();
    for (const panel of panels.values()) panel.close();
    output.close();
  };
}

function fact(label, value, opts = {}) {
  return h('div', null, h('dt', null, label), h('dd', { dataset: opts.testid ? { testid: opts.testid } : null }, value));
}

// Checkpoints are shown as the server reports them (a list of objects),
// newest first; until the first one completes there is nothing to show.
function renderCheckpoints(box, cps) {
  if (!Array.isArray(cps) || !cps.length) {
    if (!box.dataset.empty) box.replaceChildren(h('p', { class: 'muted' }, 'No checkpoints yet.'));
    box.dataset.empty = '1';
    return;
  }
  delete box.dataset.empty;
  const rows = cps.slice(-20).reverse();
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  box.replaceChildren(h('table', { class: 'list', dataset: { testid: 'checkpoints' } },
    h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
    h('tbody', null, rows.map((r) => h('tr', null, cols.map((c) => h('td', null, cell(r[c]))))))));
}

function cell(v) {
  if (v == null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
