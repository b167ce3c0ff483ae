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

const pick = (o, snake, go) => (o[snake] !== undefined ? o[snake] : o[go]);

// operatorsOf reads a job's operator counters whichever case the server's
// JSON uses (snake_case, or Go's field names) into one shape.
export function operatorsOf(job) {
  return (job.operators || []).map((o) => ({
    ID: pick(o, 'id', 'ID'), Kind: pick(o, 'kind', 'Kind'), In: pick(o, 'in', 'In'), Out: pick(o, 'out', 'Out'),
    Errors: pick(o, 'errors', 'Errors'), Skipped: pick(o, 'skipped', 'Skipped'), DeadLettered: pick(o, 'dead_lettered', 'DeadLettered'),
    Late: pick(o, 'late', 'Late'), Backpressure: pick(o, 'backpressure', 'Backpressure'), Watermark: pick(o, 'watermark', 'Watermark'),
    Stages: (pick(o, 'stages', 'Stages') || []).map((st) => ({
      Operator: pick(st, 'operator', 'Operator'), Errors: pick(st, 'errors', 'Errors'), Skipped: pick(st, 'skipped', 'Skipped'),
      DeadLettered: pick(st, 'dead_lettered', 'DeadLettered'),
    })),
  }));
}

// nodesOf gives [{id, kind, inputs}] — the job's graph when the server sends
// one, else a chain through the operators in order.
export function nodesOf(job) {
  if (Array.isArray(job.graph) && job.graph.length) {
    return job.graph.map((n) => ({ id: n.id, kind: n.kind, inputs: n.inputs || [] }));
  }
  const ops = operatorsOf(job);
  return ops.map((o, i) => ({ id: o.ID, kind: o.Kind, inputs: i ? [ops[i - 1].ID] : [] }));
}

// statsByNode maps graph node ids to counters. The runtime fuses chains of
// maps and filters into one task and reports it once, under its first id,
// with per-stage error counts: each stage gets its own entry, the first
// with the task's In, the last with its Out.
export function statsByNode(operators) {
  const m = new Map();
  for (const o of operators) {
    const stages = o.Stages || [];
    if (stages.length < 2) {
      m.set(o.ID, o);
      continue;
    }
    const names = stages.map((st) => st.Operator);
    stages.forEach((st, i) => {
      m.set(st.Operator, {
        ID: st.Operator, Kind: o.Kind, Errors: st.Errors, Skipped: st.Skipped, DeadLettered: st.DeadLettered, Late: 0,
        In: i === 0 ? o.In : undefined, Out: i === stages.length - 1 ? o.Out : undefined,
        fused: o.ID, fusedWith: names,
      });
    });
  }
  return m;
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
    const stats = statsByNode(operatorsOf(job));
    // Rates over the last RATE_SPAN_MS of polls, so a window operator that
    // emits once per window does not flicker between 0 and a burst.
    this.history.push({ t: now, counters: new Map([...stats].map(([id, o]) => [id, { In: o.In, Out: o.Out }])) });
    while (this.history.length > 2 && now - this.history[1].t >= RATE_SPAN_MS) this.history.shift();
    const rates = new Map();
    const first = this.history[0];
    const dt = (now - first.t) / 1000;
    if (this.history.length > 1 && dt > 0) {
      for (const [id, o] of stats) {
        const p = first.counters.get(id);
        if (!p) continue;
        rates.set(id, {
          in: o.In == null ? null : Math.max(0, (o.In - p.In) / dt),
          out: o.Out == null ? null : Math.max(0, (o.Out - p.Out) / dt),
        });
      }
    }
    const running = job.state === 'running';
    const sinkIds = new Set((job.sinks || []).map((sk) => sk.id));
    for (const n of nodes) {
      const view = this.nodes.get(n.id);
      if (!view) continue;
      const o = stats.get(n.id) || {};
      // A job that is not running has no rates and no backpressure: its
      // last counters stay, its bars go grey.
      const r = running ? rates.get(n.id) : null;
      let pressure = running && typeof o.Backpressure === 'number' ? o.Backpressure : null;
      if (pressure == null && r && r.in != null && n.inputs.length && n.kind !== 'dead_letter') {
        const offered = n.inputs.reduce((acc, i) => acc + ((rates.get(i) || {}).out || 0), 0);
        if (offered > 0) pressure = Math.min(1, Math.max(0, 1 - r.in / offered));
      }
      const errs = (o.Errors || 0) + (o.Skipped || 0) + (o.DeadLettered || 0);
      const isSource = o.Kind === 'source' || !n.inputs.length;
      const isSink = !isSource && (o.Kind === 'sink' || sinkIds.has(n.id) || n.kind === 'dead_letter');
      const rate = (v) => (v == null ? '–' : fmtNum(v) + '/s');
      const parts = [];
      // (a job that is not running shows its state, below, instead of rates)
      if (running && !isSource && !(o.fused && o.In == null)) parts.push(`in ${rate(r && r.in)}`);
      if (running && !isSink && !(o.fused && o.Out == null)) parts.push(`out ${rate(r && r.out)}`);
      fit(view.lines[1], parts.join('  ') || (running && o.fused ? `fused with ${o.fused}` : ''));
      const wm = typeof o.Watermark === 'number' ? o.Watermark : job.watermark;
      fit(view.lines[2], running ? `wm lag ${wm != null ? fmtAge(Date.now() - wm) : '–'}` + (o.Late ? `  late ${fmtNum(o.Late)}` : '') : job.state);
      const errParts = [];
      if (o.Errors) errParts.push(`errors ${fmtNum(o.Errors)}`);
      if (o.Skipped) errParts.push(`skipped ${fmtNum(o.Skipped)}`);
      if (o.DeadLettered) errParts.push(`dead ${fmtNum(o.DeadLettered)}`);
      fit(view.lines[3], errs ? errParts.join(' · ') : (o.fused ? `fused: ${o.fusedWith.join(' → ')}` : ''));
      view.rect.setAttribute('stroke', errs ? '#d64545' : '#8895a7');
      view.bar.setAttribute('fill', pressureColour(pressure));
      view.g.dataset.backpressure = pressure == null ? '' : pressure.toFixed(2);
      view.g.dataset.in = r && r.in != null ? r.in.toFixed(1) : '';
      view.g.dataset.out = r && r.out != null ? r.out.toFixed(1) : '';
      view.title.textContent = `${n.id} (${n.kind})\nin ${o.In ?? '–'}, out ${o.Out ?? '–'}, errors ${o.Errors ?? 0}, skipped ${o.Skipped ?? 0}, dead-lettered ${o.DeadLettered ?? 0}, late ${o.Late ?? 0}` +
        (o.fused ? `\nruns fused in one task with ${o.fusedWith.join(', ')}` : '') +
        (running ? `\nbackpressure ${pressure == null ? 'unknown' : Math.round(pressure * 100) + '%'}` : `\njob ${job.state}`);
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
      fit(lines[0], `${n.id} · ${n.kind.replace('_', ' ')}`, NAME_CHARS);
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

// Text that fits a node: NAME_CHARS of the bold name line, STAT_CHARS of a
// stat line; what is cut is in the node's tooltip.
const NAME_CHARS = 21, STAT_CHARS = 25;

export function fitText(str, max) {
  return str.length <= max ? str : str.slice(0, max - 1) + '…';
}

function fit(el, str, max = STAT_CHARS) {
  const t = fitText(str, max);
  if (el.textContent !== t) el.textContent = t;
}

function dot(c) {
  return h('span', { class: 'dot', style: `background:${c}` });
}
