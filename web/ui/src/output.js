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
      try {
        page = await api(`/jobs/${enc(this.jobId)}/output?sink=${enc(this.sink)}&after=${this.after}&wait=${wait}`);
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
        this.render();
      }
      this.note.textContent = page.missed ? `${page.missed} rows left the server's buffer unread` : '';
      if (!this.rows.length) this.note.textContent = 'No rows yet.';
    }
  }

  render() {
    if (!this.rows.length) {
      this.body.replaceChildren();
      return;
    }
    const objects = this.rows.every((r) => r.value && typeof r.value === 'object' && !Array.isArray(r.value));
    const cols = objects ? columnsOf(this.rows) : ['value'];
    const rows = this.rows.slice().reverse();
    this.body.replaceChildren(h('table', { class: 'list output' },
      h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'Received (UTC)'), cols.map((c) => h('th', null, c)))),
      h('tbody', null, rows.map((r) => h('tr', null,
        h('td', null, String(r.seq)),
        timeCell(Date.parse(r.time)),
        cols.map((c) => valueCell(c, objects ? r.value[c] : r.value)))))));
  }

  close() { this.gen++; }
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

function valueCell(col, v) {
  if ((col === 'window_start' || col === 'window_end') && typeof v === 'number') return timeCell(v);
  if (v == null) return h('td', { class: 'muted' }, '');
  if (typeof v === 'object') return h('td', { class: 'data', title: pretty(v) }, cellText(v));
  return h('td', null, cellText(v));
}
