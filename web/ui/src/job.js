// The job page (loaded on demand with apache-arrow, uPlot and dagre): state,
// watermark and lag, the operator graph, late records, checkpoints, and one
// live results panel per dashboard sink.
import { api, enc, h, fmtAge, fmtNum, fmtMs, fmtBytes, fmtDuration, restartingText, timeEl, poller } from './api.js';
import { Lifecycle } from './lifecycle.js';
import { ErrorsPanel } from './errors.js';
import { HistoryPanel } from './history.js';
import { stateBadge } from './jobs.js';
import { JobGraph, operatorsOf } from './graph.js';
import { ResultsPanel } from './results.js';
import { OutputPanel, timeCell } from './output.js';
import { ClusterPanel } from './cluster.js';

export function jobPage(root, id) {
  const title = h('h1', null, id);
  const stateEl = h('span');
  const life = new Lifecycle(id);
  const facts = h('dl', { class: 'facts' });
  const reasonEl = h('p', { class: 'error', hidden: true });
  // What the job runs on with (a checkpoint skipped as damaged, positions
  // of another stream, a shard count other than the file's): the API's
  // warnings, each an ERROR in the server's log too.
  const warningsEl = h('ul', { class: 'warnings', dataset: { testid: 'job-warnings' }, hidden: true });
  const graphBox = h('div', { class: 'graph', dataset: { testid: 'job-graph' } });
  const resultsBox = h('div');
  const output = new OutputPanel(id);
  const errorsPanel = new ErrorsPanel(id);
  const history = new HistoryPanel(id);
  const cpBox = h('div');
  const specBox = h('pre', { class: 'spec' });
  root.append(
    h('div', { class: 'page-head' }, title, stateEl, life.buttons),
    life.bars, reasonEl, warningsEl, facts,
    h('section', null, h('h2', null, 'Graph'), graphBox),
    history.el,
    resultsBox,
    output.el,
    errorsPanel.el,
    h('section', null, h('h2', null, 'Checkpoints'), cpBox),
    h('details', null, h('summary', null, 'Job file'), specBox));

  const graph = new JobGraph(graphBox);
  const panels = new Map();
  let stopped = false;
  let cluster = null; // the cluster panel, for a job on Kafka workers

  const p = poller(async () => {
    let job;
    try {
      job = await api('/jobs/' + enc(id));
    } catch (e) {
      if (e.status === 404) {
        // Nothing of the page applies: no panels polling a job that is not there.
        close();
        root.replaceChildren(title, h('p', { class: 'error', dataset: { testid: 'no-such-job' } },
          'No such job: it was deleted, or never submitted. ', h('a', { href: '#/jobs' }, 'All jobs')));
        return;
      }
      facts.replaceChildren(h('p', { class: 'error' }, 'Cannot load job: ' + e.message));
      return;
    }
    if (stopped) return;
    title.textContent = job.name ? `${job.name}` : job.id;
    stateEl.replaceChildren(stateBadge(job.state, job.reason));
    life.update(job);
    reasonEl.hidden = !job.reason;
    reasonEl.textContent = (job.reason || '') + restartingText(job.restarting);
    const warnings = job.warnings || [];
    warningsEl.hidden = warnings.length === 0;
    warningsEl.replaceChildren(...warnings.map((w) => h('li', { class: 'warning' }, w)));
    const ops = operatorsOf(job);
    const late = ops.reduce((s, o) => s + (o.Late || 0), 0);
    const errors = ops.reduce((s, o) => s + (o.Errors || 0) + (o.Skipped || 0) + (o.DeadLettered || 0), 0);
    const lag = job.watermark != null && job.state === 'running' ? Date.now() - job.watermark : null;
    setFacts(facts, [
      fact('Job id', job.id),
      fact('Created', timeEl(job.created)),
      fact('Parallelism', job.parallelism ?? '–', { testid: 'parallelism' }),
      fact('Uptime', job.state === 'running' ? fmtDuration(job.uptime_s) : '–', { testid: 'uptime' }),
      fact('Watermark', timeEl(job.watermark)),
      fact('Watermark lag', fmtAge(lag), { testid: 'watermark-lag' }),
      fact('Late records', fmtNum(late), { testid: 'late-records' }),
      fact('Errors and skipped', fmtNum(errors))]);
    graph.update(job);
    if (job.cluster && !cluster) {
      cluster = new ClusterPanel(id);
      facts.after(cluster.el);
    }
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

  // Deleting the job: the page's polls of it stop first, and the output's
  // long poll is cut (one under way as the job goes would answer 404);
  // they start again if the delete fails.
  const polls = () => [p, errorsPanel.poll, history.poll, ...(cluster ? [cluster.poll] : [])];
  life.pausePolls = () => { output.pause(); return Promise.all(polls().map((x) => x.stop())); };
  life.resumePolls = () => { polls().forEach((x) => x.resume()); output.resume(); };

  function close() {
    if (stopped) return;
    stopped = true;
    p.stop();
    for (const panel of panels.values()) panel.close();
    output.close();
    errorsPanel.close();
    history.close();
    if (cluster) cluster.close();
  }
  return close;
}

function fact(label, value, opts = {}) {
  return h('div', null, h('dt', null, label), h('dd', { dataset: opts.testid ? { testid: opts.testid } : null }, value));
}

// Checkpoints, newest first, with units: times in UTC (local on hover),
// durations in ms or s, sizes in KiB/MiB. Until the first one completes
// there is nothing to show.
const CP_COLUMNS = [
  ['epoch', 'Epoch', (v) => h('td', null, String(v))],
  ['time', 'Time (UTC)', (v) => timeCell(Date.parse(v))],
  ['duration_ms', 'Duration', (v) => h('td', null, fmtMs(v))],
  ['held_ms', 'Sources held', (v) => h('td', null, fmtMs(v))],
  ['size_bytes', 'Size', (v) => h('td', { title: v == null ? null : `${v} bytes` }, fmtBytes(v))],
  ['status', 'Status', (v) => h('td', null, v ?? '')],
];

// setFacts shows the facts, touching only those whose text or title
// changed (the page polls every second; most facts stay the same).
function setFacts(box, items) {
  const same = box.children.length === items.length && [...box.children].every((el, i) => el.tagName === 'DIV' && el.firstChild.textContent === items[i].firstChild.textContent);
  if (!same) { box.replaceChildren(...items); return; }
  items.forEach((item, i) => {
    const have = box.children[i].lastChild, want = item.lastChild;
    if (have.textContent !== want.textContent || have.title !== want.title) box.children[i].replaceChild(want, have);
  });
}

function renderCheckpoints(box, cps) {
  // Rebuilt only when the checkpoints changed.
  const key = JSON.stringify(cps ?? null);
  if (box.key === key) return;
  box.key = key;
  if (!Array.isArray(cps) || !cps.length) {
    if (!box.dataset.empty) box.replaceChildren(h('p', { class: 'muted' }, 'No checkpoints yet.'));
    box.dataset.empty = '1';
    return;
  }
  delete box.dataset.empty;
  const rows = cps.slice(-20).reverse();
  // `size` is size_bytes for people: the Size column shows it already.
  const known = new Set([...CP_COLUMNS.map((c) => c[0]), 'size']);
  const extra = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !known.has(k));
  box.replaceChildren(h('table', { class: 'list', dataset: { testid: 'checkpoints' } },
    h('thead', null, h('tr', null, CP_COLUMNS.map((c) => h('th', { dataset: { col: c[0] } }, c[1])), extra.map((c) => h('th', null, c)))),
    h('tbody', null, rows.map((r) => h('tr', null,
      CP_COLUMNS.map(([k, , f]) => (r[k] == null ? h('td') : f(r[k]))),
      extra.map((c) => h('td', null, cell(r[c]))))))));
}

function cell(v) {
  if (v == null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
