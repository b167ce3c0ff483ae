// The output panel of the job page: the last rows any sink of the job was
// given (GET /api/v1/jobs/{id}/output), read with long polls from the
// number after the last row shown. One sink at a time, picked in a select;
// the newest SHOWN rows, newest first.
import { api, enc, h, fmtTime, pretty } from './api.js';
import { cellText } from './cells.js';

export const SHOWN = 100;
const WAIT = '20s';
const FIRST = ['window_start', 'window_end', 'key'];

export class OutputPanel {
  constructor(jobId) {
    this.jobId = jobId;
    this.sink = null;
    this.rows = [];
    this.after = 0;
    this.gen = 0; // bumps on every sink change and on close: stale reads stop
    this.frame = 0;
    this.select = h('select', { dataset: { testid: 'output-sink' }, onchange: () => this.pick(this.select.value) });
    this.note = h('span', { class: 'muted', dataset: { testid: 'output-note' } });
    this.body = h('div', { class: 'table-wrap', dataset: { testid: 'output-rows' } });
    this.el = h('section', { class: 'output-panel' },
      h('h2', null, 'Output'),
      h('div', { class: 'controls' }, h('label', null, 'Sink ', this.select), this.note),
      this.body);
    this.names = '';
  }

  // setSinks lists the job's sinks ([{id, kind}]); the first is shown
  // until the user picks another.
  setSinks(sinks) {
    const names = sinks.map((s) => s.id + ':' + s.kind).join(',');
    if (names === this.names) return;
    this.names = names;
    this.select.replaceChildren(...sinks.map((s) => h('option', { value: s.id }, `${s.id} (${s.kind.replace('_', ' ')})`)));
    if (!sinks.length) return;
    if (!sinks.some((s) => s.id === this.sink)) this.pick(sinks[0].id);
    else this.select.value = this.sink;
  }

  pick(sink) {
    this.sink = sink;
    this.select.value = sink;
    this.rows = [];
    this.after = 0;
    this.render();
    this.loop(++this.gen);
  }

  async loop(gen) {
    let wait = '0s';
    while (gen === this.gen) {
      let page;
      this.abort = new AbortController();
      try {
        page = await api(`/jobs/${enc(this.jobId)}/output?sink=${enc(this.sink)}&after=${this.after}&wait=${wait}`, { signal: this.abort.signal });
      } catch (e) {
        if (gen !== this.gen) return;
        this.note.textContent = 'Cannot read the output: ' + e.message;
        await new Promise((r) => setTimeout(r, 3000));
        continue;
      }
      if (gen !== this.gen) return;
      wait = WAIT;
      this.after = page.next;
      if (page.rows.length) {
        this.rows = this.rows.concat(page.rows).slice(-SHOWN);
        // Drawn with the page's next frame (with the live chart's, if any).
        if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
      }
      this.note.textContent = page.missed ? `${page.missed} rows left the server's buffer unread` : '';
      if (!this.rows.length) this.note.textContent = 'No rows yet.';
    }
  }

  // render shows the rows newest first. While the columns stay the same
  // only the rows that came are added (at the top) and the oldest beyond
  // SHOWN removed; a change of columns, or of sink, rebuilds the table.
  render() {
    if (!this.rows.length) {
      this.body.replaceChildren();
      this.table = null;
      return;
    }
    const objects = this.rows.every((r) => r.value && typeof r.value === 'object' && !Array.isArray(r.value));
    const cols = objects ? columnsOf(this.rows) : ['value'];
    const key = (objects ? 'o:' : 'v:') + cols.join('\u0000');
    const rowEl = (r) => h('tr', { dataset: { seq: r.seq } },
      h('td', null, String(r.seq)),
      timeCell(Date.parse(r.time)),
      cols.map((c) => valueCell(c, objects ? r.value[c] : r.value)));
    if (!this.table || this.table.key !== key) {
      this.tbody = h('tbody', null, this.rows.slice().reverse().map(rowEl));
      this.table = h('table', { class: 'list output' },
        h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'Received (UTC)'), cols.map((c) => h('th', null, c)))),
        this.tbody);
      this.table.key = key;
      this.body.replaceChildren(this.table);
      return;
    }
    const top = Number(this.tbody.firstChild?.dataset.seq ?? -Infinity);
    const fresh = this.rows.filter((r) => r.seq > top);
    if (fresh.length) this.tbody.prepend(...fresh.reverse().map(rowEl));
    while (this.tbody.rows.length > this.rows.length) this.tbody.lastChild.remove();
  }

  // pause stops reading (a long poll under way is cut); resume reads on.
  pause() {
    this.gen++;
    if (this.abort) this.abort.abort();
  }

  resume() {
    if (this.sink) this.loop(++this.gen);
  }

  close() {
    this.pause();
    cancelAnimationFrame(this.frame);
  }
}

// columnsOf orders the fields of the rows: window columns first, then as
// they first appear.
export function columnsOf(rows) {
  const seen = new Set();
  for (const r of rows) for (const k of Object.keys(r.value)) seen.add(k);
  return [...FIRST.filter((c) => seen.has(c)), ...[...seen].filter((c) => !FIRST.includes(c))];
}

// timeCell shows a time in UTC ISO form, local time on hover.
export function timeCell(ms) {
  if (ms == null || Number.isNaN(ms)) return h('td', null, '–');
  return h('td', { title: new Date(ms).toString() }, fmtTime(ms));
}

// valueCell is one cell of a row of results, the same in the output and
// preview tables: window times in UTC, numbers and structs as cellText.
export function valueCell(col, v) {
  if (col === 'window_start' || col === 'window_end') {
    const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
    if (!Number.isNaN(ms)) return timeCell(ms);
  }
  if (v == null) return h('td', { class: 'muted' }, '');
  if (typeof v === 'object') return h('td', { class: 'data', title: pretty(v) }, cellText(v));
  return h('td', null, cellText(v));
}
