// The bounded store behind a results panel: what the page keeps of a
// dashboard sink's window results, whatever the stream sends — per key the
// last MAX_POINTS windows of at most MAX_KEYS keys, and the last TABLE_ROWS
// rows. It reads apache-arrow record batches and knows nothing of the DOM.
import { DataType } from 'apache-arrow';

export const MAX_POINTS = 240;
export const MAX_KEYS = 1000;
export const TABLE_ROWS = 50;
const RANK_WINDOWS = 12;
// Columns that are not aggregates a user would chart.
const NOT_AGGREGATES = new Set(['window_start', 'window_end', 'key', 'anomaly_score', 'is_anomaly', 'expected', 'expected_low', 'expected_high', 'explanation']);

// Page-wide counters, read by the browser tests and the perf script.
export const stats = (globalThis.__runnelStats ||= { draws: 0, batches: 0, rows: 0, connects: 0 });

// apache-arrow already gives timestamps of every unit as epoch ms.
function toMillis(v) {
  if (v == null) return null;
  return v instanceof Date ? v.getTime() : Number(v);
}

function plain(v) {
  if (v == null) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'object' && typeof v.toJSON === 'function') return v.toJSON();
  return v;
}

function num(v) {
  return v == null ? null : Number(v);
}

// scoredField reads the field a detect verdict is about from its
// explanation (a struct, or a JSON string).
function scoredField(ex) {
  if (typeof ex === 'string') {
    try { ex = JSON.parse(ex); } catch { return null; }
  }
  return ex && typeof ex.field === 'string' ? ex.field : null;
}

function isNumeric(type) {
  return DataType.isInt(type) || DataType.isFloat(type) || DataType.isDecimal(type);
}

// Store keeps what the page shows, bounded whatever the stream sends.
export class Store {
  constructor() { this.reset(); }

  reset() {
    this.keys = new Map(); // key → {t: number[], v: Map col → number[], a: boolean[], last: seq}
    this.rows = []; // latest rows, oldest first, ≤ TABLE_ROWS
    this.numeric = []; // aggregate columns that are numbers
    this.columns = []; // all column names
    this.anomalies = 0;
    this.seq = 0;
    this.timed = null; // whether rows carry window_end/window_start (null: no rows yet)
    this.detectField = null; // the aggregate a detect operator scores, from its explanation
  }

  ingest(batch) {
    const fields = batch.schema.fields;
    const vecs = fields.map((f) => batch.getChild(f.name));
    const idx = Object.fromEntries(fields.map((f, i) => [f.name, i]));
    this.columns = orderColumns(fields.map((f) => f.name));
    this.numeric = fields.filter((f) => !NOT_AGGREGATES.has(f.name) && isNumeric(f.type)).map((f) => f.name);
    const endI = idx.window_end ?? idx.window_start;
    this.timed = endI != null;
    const keyI = idx.key;
    const anomI = idx.is_anomaly;
    const loI = idx.expected_low, hiI = idx.expected_high;
    const explI = idx.explanation;
    // Only the rows the table can show are made into row objects.
    const firstRow = Math.max(0, batch.numRows - TABLE_ROWS);
    for (let r = 0; r < batch.numRows; r++) {
      this.seq++;
      const key = keyI == null ? '' : String(vecs[keyI].get(r));
      const t = endI == null ? Date.now() : toMillis(vecs[endI].get(r));
      const anomalous = anomI != null && vecs[anomI].get(r) === true;
      if (anomalous) this.anomalies++;
      let k = this.keys.get(key);
      if (!k) {
        if (this.keys.size >= MAX_KEYS) this.evictOldestKey();
        k = { t: [], v: new Map(), a: [], lo: [], hi: [], last: 0 };
        this.keys.set(key, k);
      }
      k.last = this.seq;
      k.t.push(t);
      k.a.push(anomalous);
      k.lo.push(loI == null ? null : num(vecs[loI].get(r)));
      k.hi.push(hiI == null ? null : num(vecs[hiI].get(r)));
      for (const name of this.numeric) {
        let arr = k.v.get(name);
        if (!arr) { arr = new Array(k.t.length - 1).fill(null); k.v.set(name, arr); }
        const raw = vecs[idx[name]].get(r);
        arr.push(raw == null ? null : Number(raw));
      }
      if (k.t.length > MAX_POINTS * 1.25) {
        const drop = k.t.length - MAX_POINTS;
        k.t.splice(0, drop);
        k.a.splice(0, drop);
        k.lo.splice(0, drop);
        k.hi.splice(0, drop);
        for (const arr of k.v.values()) arr.splice(0, drop);
      }
      if (!this.detectField && explI != null) this.detectField = scoredField(plain(vecs[explI].get(r)));
      if (r < firstRow) continue;
      const row = {};
      for (let c = 0; c < fields.length; c++) {
        const f = fields[c];
        row[f.name] = DataType.isTimestamp(f.type) ? toMillis(vecs[c].get(r)) : plain(vecs[c].get(r));
      }
      this.rows.push(row);
    }
    if (this.rows.length > TABLE_ROWS * 2) this.rows.splice(0, this.rows.length - TABLE_ROWS);
    stats.batches++;
    stats.rows += batch.numRows;
  }

  evictOldestKey() {
    let oldest = null, seq = Infinity;
    for (const [key, k] of this.keys) if (k.last < seq) { seq = k.last; oldest = key; }
    if (oldest != null) this.keys.delete(oldest);
  }

  // topKeys picks the n keys with the highest mean of col over their last
  // RANK_WINDOWS windows, among keys seen in the newest windows (a mean, not
  // the latest value, so the set does not churn with every window), and
  // returns them sorted by name.
  topKeys(col, n) {
    // Recent: updated in one of the three newest windows.
    const ends = new Set();
    for (const k of this.keys.values()) for (let i = Math.max(0, k.t.length - 3); i < k.t.length; i++) ends.add(k.t[i]);
    const sorted = [...ends].sort((a, b) => b - a);
    const newest = sorted[Math.min(2, sorted.length - 1)];
    const ranked = [];
    for (const [key, k] of this.keys) {
      const arr = k.v.get(col);
      if (!arr || !arr.length) continue;
      let sum = 0, cnt = 0;
      for (let i = Math.max(0, arr.length - RANK_WINDOWS); i < arr.length; i++) if (arr[i] != null) { sum += arr[i]; cnt++; }
      const recent = k.t[k.t.length - 1] >= newest ? 1 : 0;
      ranked.push([key, recent, cnt ? sum / cnt : -Infinity]);
    }
    ranked.sort((a, b) => b[1] - a[1] || b[2] - a[2] || (a[0] < b[0] ? -1 : 1));
    return ranked.slice(0, n).map((r) => r[0]).sort();
  }

  // series aligns the keys on one x axis (window end, seconds), the last
  // MAX_POINTS windows; anomalies as [xIndex, seriesIndex] pairs. With
  // band, two more series follow: that key's expected low and high.
  series(keys, col, band) {
    const xs = new Set();
    for (const key of keys) for (const t of this.keys.get(key).t) xs.add(t);
    const x = [...xs].sort((a, b) => a - b).slice(-MAX_POINTS);
    const pos = new Map(x.map((t, i) => [t, i]));
    const align = (k, vals) => {
      const y = new Array(x.length).fill(null);
      for (let i = 0; i < k.t.length; i++) {
        const xi = pos.get(k.t[i]);
        if (xi != null) y[xi] = vals[i] ?? null;
      }
      return y;
    };
    const ys = [];
    const marks = [];
    keys.forEach((key, si) => {
      const k = this.keys.get(key);
      const y = align(k, k.v.get(col) || []);
      for (let i = 0; i < k.t.length; i++) {
        const xi = pos.get(k.t[i]);
        if (k.a[i] && xi != null && y[xi] != null) marks.push([xi, si + 1]);
      }
      ys.push(y);
    });
    if (band && this.keys.has(band)) {
      const k = this.keys.get(band);
      ys.push(align(k, k.lo), align(k, k.hi));
    }
    return { data: [x.map((t) => t / 1000), ...ys], marks };
  }
}

const FIRST = ['window_start', 'window_end', 'key'];
const LAST = ['is_anomaly', 'anomaly_score', 'expected', 'expected_low', 'expected_high', 'explanation'];

// orderColumns puts the window and key first and the detect verdict last,
// whatever order the server's schema has.
export function orderColumns(names) {
  const rank = (n) => (FIRST.includes(n) ? FIRST.indexOf(n) - 100 : LAST.includes(n) ? 100 + LAST.indexOf(n) : 0);
  return names.map((n, i) => [n, i]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map((x) => x[0]);
}

