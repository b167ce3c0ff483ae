// Metrics over time on the job page (GET /api/v1/jobs/{id}/metrics/history,
// the last hour kept in memory by the server, a point every 5 s): small
// uPlot charts of records in and out per second per operator, backpressure,
// watermark lag, checkpoint duration and size, and state size per stateful
// operator; on demand (`?shards=true`) records in per second and watermark
// lag per shard. Polled every 5 s; each chart is built once and then only
// given new data, unless its set of lines changes; a chart whose data did
// not change, or that is out of sight, is not redrawn.
import uPlot from 'uplot';
import { api, enc, h, fmtNum, fmtMs, fmtBytes, poller, axisClock, spanAtLeast } from './api.js';
import { stats } from './store.js';

const EVERY_MS = 5000;
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

const rate = (v) => (v == null ? '–' : fmtNum(v) + '/s');
const pct = (v) => (v == null ? '–' : Math.round(v * 100) + ' %');

// CHARTS says what each chart draws: one line per operator (ops), per
// shard (shards) or one line (one), read from a point by `get`.
const CHARTS = [
  { id: 'in', title: 'Records in per second', fmt: rate, each: 'ops', get: (o) => o.in_per_s },
  { id: 'out', title: 'Records out per second', fmt: rate, each: 'ops', get: (o) => o.out_per_s },
  { id: 'backpressure', title: 'Backpressure', fmt: pct, each: 'ops', get: (o) => o.backpressure, max: 1 },
  { id: 'watermark-lag', title: 'Watermark lag', fmt: fmtMs, each: 'one', get: (p) => p.watermark_lag_ms },
  // A checkpoint does not complete in every interval: its line joins the
  // intervals that have one.
  { id: 'checkpoint-duration', title: 'Checkpoint duration', fmt: fmtMs, each: 'one', get: (p) => p.checkpoint_ms, sparse: true },
  { id: 'checkpoint-size', title: 'Checkpoint size', fmt: fmtBytes, each: 'one', get: (p) => p.checkpoint_bytes, sparse: true },
  { id: 'state-size', title: 'State size', fmt: fmtBytes, each: 'ops', get: (o) => o.state_bytes, stateful: true },
  { id: 'shard-in', title: 'Records in per second, per shard', fmt: rate, each: 'shards', get: (s) => s.in_per_s },
  { id: 'shard-lag', title: 'Watermark lag, per shard', fmt: fmtMs, each: 'shards', get: (s) => s.watermark_lag_ms },
];

// seriesOf turns the history's points into uPlot columns for one chart:
// {labels, data: [xs, ys...]}; x in epoch seconds.
export function seriesOf(points, chart) {
  const xs = points.map((p) => Date.parse(p.time) / 1000);
  if (chart.each === 'one') return { labels: [chart.title], data: [xs, points.map((p) => num(chart.get(p)))] };
  const field = chart.each === 'ops' ? 'operators' : 'shards';
  const names = [];
  const seen = new Set();
  for (const p of points) {
    for (const [name, o] of Object.entries(p[field] || {})) {
      if (seen.has(name)) continue;
      // State size has a line only for operators that keep state.
      if (chart.stateful && o.state_bytes == null) continue;
      seen.add(name);
      names.push(name);
    }
  }
  return { labels: names, data: [xs, ...names.map((n) => points.map((p) => num(p[field] && p[field][n] ? chart.get(p[field][n]) : null)))] };
}

const num = (v) => (v == null || Number.isNaN(Number(v)) ? null : Number(v));

// signature tells one chart's data from another's: its lines, its number of
// points, its first and last times and its last values (points are not
// changed once the server has made them).
function signature(labels, data) {
  const n = data[0].length;
  return [labels.join('\u0000'), n, data[0][0], ...data.map((ys) => ys[n - 1])].join('|');
}

export class HistoryPanel {
  constructor(jobId) {
    this.jobId = jobId;
    this.shards = false;
    this.charts = new Map(); // id → {box, plot, labels}
    this.grid = h('div', { class: 'history-grid' });
    this.note = h('span', { class: 'muted', dataset: { testid: 'history-note' } }, 'loading…');
    this.shardBtn = h('button', { dataset: { testid: 'shard-breakdown' }, onclick: () => this.toggleShards() }, 'Per-shard breakdown');
    // A details element: closed, its charts are out of sight and not redrawn.
    this.el = h('details', { class: 'history-panel', open: true, dataset: { testid: 'history' } },
      h('summary', null, h('h2', null, 'Metrics, last hour')), h('div', { class: 'controls' }, this.shardBtn, this.note), this.grid);
    this.resize = new ResizeObserver(() => { for (const c of this.charts.values()) if (c.plot) c.plot.setSize(this.size()); });
    this.resize.observe(this.grid);
    // A chart out of sight (scrolled away, or the panel folded) is not
    // redrawn; it is drawn with the latest history when it comes back.
    this.seen = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const c = this.charts.get(e.target.dataset.chart);
        if (!c) continue;
        c.visible = e.isIntersecting;
        if (c.visible && c.pending) { const p = c.pending; c.pending = null; this.draw(p.chart, p.series); }
      }
    });
    this.poll = poller(() => this.load(), EVERY_MS);
  }

  size() {
    // Three charts a row on a wide page, two on a narrow one: each box adds
    // its padding and border (14 px), each gap 10 px.
    const w = this.grid.clientWidth || 900;
    const n = w > 1100 ? 3 : 2;
    return { width: Math.max(240, Math.floor((w - 10 * (n - 1)) / n) - 16), height: 150 };
  }

  toggleShards() {
    this.shards = !this.shards;
    this.shardBtn.classList.toggle('active', this.shards);
    this.shardBtn.textContent = this.shards ? 'Hide per-shard breakdown' : 'Per-shard breakdown';
    this.poll.stop();
    this.poll = poller(() => this.load(), EVERY_MS);
  }

  async load() {
    let r;
    try {
      r = await api(`/jobs/${enc(this.jobId)}/metrics/history${this.shards ? '?shards=true' : ''}`);
    } catch (e) {
      this.note.textContent = 'Cannot read the metrics history: ' + e.message;
      return;
    }
    if (this.closed) return;
    const points = r.points || [];
    this.note.textContent = points.length ? `${points.length} ${points.length === 1 ? 'point' : 'points'}, one every ${Math.round((r.interval_ms || EVERY_MS) / 1000)} s` : 'No points yet.';
    this.drawAll(points);
  }

  drawAll(points) {
    for (const chart of CHARTS) {
      if (chart.each === 'shards' && !this.shards) { this.drop(chart.id); continue; }
      const c = this.charts.get(chart.id);
      const series = seriesOf(points, chart);
      // A chart is built at once; later it waits until it is in sight.
      if (c && c.visible === false) c.pending = { chart, series };
      else this.draw(chart, series);
    }
    stats.historyDraws = (stats.historyDraws || 0) + 1;
  }

  drop(id) {
    const c = this.charts.get(id);
    if (!c) return;
    if (c.plot) c.plot.destroy();
    this.seen.unobserve(c.box);
    c.box.remove();
    this.charts.delete(id);
  }

  draw(chart, { labels, data }) {
    let c = this.charts.get(chart.id);
    if (!c) {
      const note = h('span', { class: 'muted chart-note', hidden: true });
      const box = h('div', { class: 'history-chart', dataset: { testid: 'history-chart', chart: chart.id } }, h('h3', null, chart.title, ' ', note));
      this.grid.append(box);
      c = { box, note, plot: null, labels: '', sig: '', visible: null, pending: null };
      this.charts.set(chart.id, c);
      this.seen.observe(box);
    }
    // Nothing new since the last poll (the server adds a point every 5 s):
    // nothing to redraw.
    const sig = signature(labels, data);
    if (c.plot && c.sig === sig) return;
    c.sig = sig;
    c.box.dataset.points = String(data[0].length);
    c.box.dataset.lines = String(labels.length);
    // Say so when there is nothing to draw (no operator reports its state
    // size, no checkpoint in the last hour), rather than leave an empty chart.
    const empty = !data.slice(1).some((ys) => ys.some((v) => v != null));
    c.note.hidden = !empty;
    if (empty) c.note.textContent = labels.length || chart.each === 'one' ? '· no data in the last hour' : `· no ${chart.each === 'shards' ? 'shard' : 'operator'} reports it`;
    const key = labels.join('\u0000');
    // The legend shows the latest values unless the cursor points at others.
    // (after uPlot's own update of this change, queued as a microtask)
    const latest = () => queueMicrotask(() => {
      if (!c.plot || c.plot.cursor.idx != null) return;
      let i = data[0].length - 1;
      while (i > 0 && data.slice(1).every((ys) => ys[i] == null)) i--;
      if (i >= 0) c.plot.setLegend({ idx: i });
    });
    if (c.plot && c.labels === key) { c.plot.setData(data); latest(); return; }
    if (c.plot) c.plot.destroy();
    c.labels = key;
    const opts = {
      ...this.size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: spanAtLeast(60) }, y: chart.max ? { range: [0, chart.max] } : { range: (u, lo, hi) => [Math.min(0, lo ?? 0), Math.max(1, hi ?? 1)] } },
      axes: [{ size: 30, values: axisClock, space: 70 }, { size: 64, values: (u, vs) => vs.map(chart.fmt) }],
      series: [{ value: (u, v) => (v == null ? '–' : new Date(v * 1000).toISOString().slice(11, 19) + 'Z') },
        ...labels.map((l, i) => ({ label: l, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: !!chart.sparse, points: { show: chart.sparse ? true : undefined }, value: (u, v) => chart.fmt(v) }))],
    };
    c.plot = new uPlot(opts, data, c.box);
    latest();
  }

  close() {
    this.closed = true;
    this.poll.stop();
    this.resize.disconnect();
    this.seen.disconnect();
    for (const c of this.charts.values()) if (c.plot) c.plot.destroy();
  }
}
