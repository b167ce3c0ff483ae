// The job page's cluster panel, for a job that runs on Kafka workers
// (GET /api/v1/jobs/{id}/cluster): which worker has which task (stage,
// partition), the lag of every input partition (end offset − committed),
// the group's rebalances with the workers before and after, and the
// failures the workers survived (a snapshot or local state that failed).
import { api, enc, h, fmtNum, timeEl, poller } from './api.js';

// clusterRows turns a cluster status into the panel's tables' rows:
// workers (id, host, tasks as "stage N: topic/partition", failure count),
// partitions, rebalances (newest first) and the workers' failures (newest
// first). It needs no DOM, so unit tests call it.
export function clusterRows(st) {
  const workers = (st.workers || []).map((w) => ({
    id: w.id, host: w.host || '',
    tasks: (w.tasks || []).map((t) => `stage ${t.stage}: ${t.topic}/${t.partition}`),
    failures: (w.failures || []).length,
  }));
  const failures = (st.workers || []).flatMap((w) => (w.failures || []).map((f) => ({
    worker: w.id, kind: f.kind || '', at: f.at, task: f.task || '–', text: f.text || '',
  }))).sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  const partitions = (st.partitions || []).map((p) => ({
    stage: p.stage, task: `${p.topic}/${p.partition}`, worker: p.worker || '(none)',
    committed: p.committed < 0 ? '–' : fmtNum(p.committed, 0),
    end: p.end < 0 ? '–' : fmtNum(p.end, 0),
    lag: p.lag < 0 ? '?' : fmtNum(p.lag, 0),
    error: p.error || '',
  }));
  const rebalances = (st.rebalances || []).slice().reverse().map((r) => ({
    generation: r.generation, at: r.at,
    before: (r.before || []).join(', ') || '–', after: (r.after || []).join(', ') || '–',
  }));
  return { workers, partitions, rebalances, failures, lag: st.lag || 0, state: st.state || '' };
}

export class ClusterPanel {
  constructor(jobId) {
    this.jobId = jobId;
    this.note = h('span', { class: 'muted', dataset: { testid: 'cluster-note' } }, 'loading…');
    this.body = h('div', { class: 'table-wrap' });
    this.el = h('section', { dataset: { testid: 'cluster' } },
      h('h2', null, 'Cluster'), h('div', { class: 'controls' }, this.note), this.body);
    this.poll = poller(() => this.load(), 3000);
  }

  async load() {
    let st;
    try {
      st = await api(`/jobs/${enc(this.jobId)}/cluster`);
    } catch (e) {
      this.note.textContent = 'Cannot read the cluster view: ' + e.message;
      return;
    }
    const r = clusterRows(st);
    this.note.textContent = `Group ${st.group || ''} ${r.state}: ${r.workers.length} workers, total lag ${fmtNum(r.lag, 0)}` +
      (r.failures.length ? `, ${r.failures.length} failures recorded.` : '.');
    const table = (testid, cols, rows, cell) => h('table', { class: 'list', dataset: { testid } },
      h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
      h('tbody', null, rows.map(cell)));
    this.body.replaceChildren(...[
      table('cluster-workers', ['Worker', 'Host', 'Tasks', 'Failures'], r.workers, (w) => h('tr', { dataset: { testid: 'cluster-worker', worker: w.id } },
        h('td', null, w.id), h('td', { class: 'mono' }, w.host), h('td', { class: 'wrap' }, w.tasks.join(', ')),
        h('td', { class: w.failures ? 'error' : null }, String(w.failures)))),
      r.failures.length
        ? table('cluster-failures', ['Time (UTC)', 'Worker', 'Kind', 'Task', 'What failed'], r.failures, (f) => h('tr', { dataset: { testid: 'cluster-failure', worker: f.worker, kind: f.kind } },
          timeEl(f.at, 'td'), h('td', null, f.worker), h('td', { class: 'mono' }, f.kind), h('td', { class: 'mono' }, f.task), h('td', { class: 'wrap error' }, f.text)))
        : null,
      table('cluster-partitions', ['Stage', 'Partition', 'Worker', 'Committed', 'End', 'Lag', ''], r.partitions, (p) => h('tr', { dataset: { testid: 'cluster-partition' } },
        h('td', null, String(p.stage)), h('td', { class: 'mono' }, p.task), h('td', null, p.worker),
        h('td', null, p.committed), h('td', null, p.end), h('td', { dataset: { testid: 'cluster-lag' } }, p.lag), h('td', { class: 'error' }, p.error))),
      r.rebalances.length
        ? table('cluster-rebalances', ['Generation', 'Time (UTC)', 'Workers before', 'Workers after'], r.rebalances, (b) => h('tr', null,
          h('td', null, String(b.generation)), timeEl(b.at, 'td'), h('td', null, b.before), h('td', null, b.after)))
        : h('p', { class: 'muted' }, 'No rebalances recorded.'),
    ].filter(Boolean));
  }

  close() { this.poll.stop(); }
}
