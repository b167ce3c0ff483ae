// The job's operator DAG, laid out by dagre and drawn as SVG. Each node
// shows records in/out per second (counter deltas over the last 10 s of
// polls), the watermark lag, errors, and a backpressure colour.
//
// Backpressure: when the server reports a per-operator `Backpressure`
// (0..1) it is used as is. Otherwise it is estimated from the rates: the
// share of what the inputs emit that the node has not taken in yet
// (1 - in/s ÷ Σ inputs' out/s), which grows when an operator cannot keep up.
import { layout as dagreLayout, graphlib } from '@dagrejs/dagre';
import { h, fmtNum, fmtAge } from './api.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 178, H = 74;
const RATE_SPAN_MS = 10000;

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

// nodesOf gives [{id, kind, inputs}] — the job's graph when the server sends
// one, else a chain through the operators in order.
export function nodesOf(job) {
  if (Array.isArray(job.graph) && job.graph.length) {
    return job.graph.map((n) => ({ id: n.id, kind: n.kind, inputs: n.inputs || [] }));
  }
  const ops = job.operators || [];
  return ops.map((o, i) => ({ id: o.ID, kind: o.Kind, inputs: i ? [ops[i - 1].ID] : [] }));
}

export function pressureColour(p) {
  if (p == null) return '#9aa5b1';
  if (p < 0.1) return '#3fa34d';
  if (p < 0.5) return '#e0a800';
  return '#d64545';
}

export class JobGraph {
  constructor(box) {
    this.box = box;
    this.shape = '';
    this.history = []; // polls: {t, counters: Map id → {In, Out}}, oldest first
    this.nodes = new Map(); // id → {g, lines: [text...], rect}
  }

  update(job) {
    const nodes = nodesOf(job);
    const shape = JSON.stringify(nodes);
    if (shape !== this.shape) {
      this.shape = shape;
      this.draw(nodes);
    }
    const now = performance.now();
    const stats = new Map((job.operators || []).map((o) => [o.ID, o]));
    // Rates over the last RATE_SPAN_MS of polls, so a window operator that
    // emits once per window does not flicker between 0 and a burst.
    this.history.push({ t: now, counters: new Map([...stats].map(([id, o]) => [id, { In: o.In || 0, Out: o.Out || 0 }])) });
    while (this.history.length > 2 && now - this.history[1].t >= RATE_SPAN_MS) this.history.shift();
    const rates = new Map();
    const first = this.history[0];
    const dt = (now - first.t) / 1000;
    if (this.history.length > 1 && dt > 0) {
      for (const [id, o] of stats) {
        const p = first.counters.get(id);
        if (!p) continue;
        rates.set(id, { in: Math.max(0, ((o.In || 0) - p.In) / dt), out: Math.max(0, ((o.Out || 0) - p.Out) / dt) });
      }
    }
    for (const n of nodes) {
      const view = this.nodes.get(n.id);
      if (!view) continue;
      const o = stats.get(n.id) || {};
      const r = rates.get(n.id);
      let pressure = typeof o.Backpressure === 'number' ? o.Backpressure : null;
      if (pressure == null && r && n.inputs.length) {
        const offered = n.inputs.reduce((acc, i) => acc + ((rates.get(i) || {}).out || 0), 0);
        if (offered > 0) pressure = Math.min(1, Math.max(0, 1 - r.in / offered));
      }
      const errs = (o.Errors || 0) + (o.Skipped || 0);
      const isSource = n.kind === 'source';
      const isSink = !isSource && (o.Kind === 'sink' || ['dashboard', 'stream', 'file', 'log'].includes(n.kind));
      view.lines[1].textContent = (isSource ? '' : `in ${r ? fmtNum(r.in) : '–'}/s  `) + (isSink ? '' : `out ${r ? fmtNum(r.out) : '–'}/s`);
      const wm = typeof o.Watermark === 'number' ? o.Watermark : job.watermark;
      view.lines[2].textContent = `wm lag ${wm != null && job.state === 'running' ? fmtAge(Date.now() - wm) : '–'}` +
        (o.Late ? `  late ${fmtNum(o.Late)}` : '');
      view.lines[3].textContent = errs ? `errors ${fmtNum(o.Errors || 0)}, skipped ${fmtNum(o.Skipped || 0)}` : '';
      view.rect.setAttribute('stroke', errs ? '#d64545' : '#8895a7');
      view.bar.setAttribute('fill', pressureColour(pressure));
      view.g.dataset.backpressure = pressure == null ? '' : pressure.toFixed(2);
      view.g.dataset.in = r ? r.in.toFixed(1) : '';
      view.g.dataset.out = r ? r.out.toFixed(1) : '';
      view.title.textContent = `${n.id} (${n.kind})\nin ${o.In ?? '–'}, out ${o.Out ?? '–'}, errors ${o.Errors ?? 0}, skipped ${o.Skipped ?? 0}, late ${o.Late ?? 0}\nbackpressure ${pressure == null ? 'unknown' : Math.round(pressure * 100) + '%'}`;
    }
  }

  draw(nodes) {
    const g = new graphlib.Graph();
    g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 46, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    const ids = new Set(nodes.map((n) => n.id));
    for (const n of nodes) g.setNode(n.id, { width: W, height: H });
    for (const n of nodes) for (const i of n.inputs) if (ids.has(i)) g.setEdge(i, n.id);
    dagreLayout(g);
    const { width, height } = g.graph();
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'job graph' });
    svg.append(s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8895a7' }))));
    for (const e of g.edges()) {
      const pts = g.edge(e).points;
      svg.append(s('path', { class: 'edge', d: 'M' + pts.map((p) => `${p.x},${p.y}`).join(' L'), 'marker-end': 'url(#arrow)' }));
    }
    this.nodes.clear();
    for (const n of nodes) {
      const { x, y } = g.node(n.id);
      const x0 = x - W / 2, y0 = y - H / 2;
      const title = s('title');
      const rect = s('rect', { x: x0, y: y0, width: W, height: H, rx: 6, class: 'node-box' });
      const bar = s('rect', { x: x0, y: y0, width: 6, height: H, rx: 2, fill: pressureColour(null) });
      const lines = [0, 1, 2, 3].map((i) => s('text', { x: x0 + 14, y: y0 + 18 + i * 16, class: i ? 'node-stat' : 'node-name' }));
      lines[0].textContent = `${n.id} · ${n.kind}`;
      const group = s('g', { class: 'node kind-' + n.kind }, title, rect, bar, ...lines);
      group.dataset.testid = 'graph-node';
      group.dataset.nodeId = n.id;
      group.dataset.kind = n.kind;
      svg.append(group);
      this.nodes.set(n.id, { g: group, rect, bar, lines, title });
    }
    const legend = h('p', { class: 'legend muted' },
      'Bar colour: backpressure — ', dot('#3fa34d'), ' keeping up ', dot('#e0a800'), ' falling behind ', dot('#d64545'), ' blocked ', dot('#9aa5b1'), ' unknown.');
    this.box.replaceChildren(svg, legend);
  }
}

function dot(c) {
  return h('span', { class: 'dot', style: `background:${c}` });
}
