// The job page's error history (GET /api/v1/jobs/{id}/errors): the records
// an operator failed on, newest first — when, which operator, where the
// record came from, the message, the record itself pretty-printed, and a
// link to its dead letter in the dead-letter stream's tail.
import { api, enc, h, fmtNum, timeEl, pretty, poller } from './api.js';

const LIMIT = 200;

export class ErrorsPanel {
  constructor(jobId) {
    this.jobId = jobId;
    this.seen = '';
    this.note = h('span', { class: 'muted', dataset: { testid: 'errors-note' } }, 'loading…');
    this.body = h('div', { class: 'table-wrap' });
    this.el = h('section', { class: 'errors-panel', dataset: { testid: 'errors' } },
      h('h2', null, 'Errors'), h('div', { class: 'controls' }, this.note), this.body);
    this.poll = poller(() => this.load(), 5000);
  }

  async load() {
    let r;
    try {
      r = await api(`/jobs/${enc(this.jobId)}/errors?limit=${LIMIT}`);
    } catch (e) {
      this.note.textContent = 'Cannot read the errors: ' + e.message;
      return;
    }
    const list = r.errors || [];
    const key = `${r.total}|${list.length}|${list[0] ? list[0].time + list[0].message : ''}`;
    if (key === this.seen) return;
    this.seen = key;
    this.note.textContent = !r.total ? 'No errors.'
      : `${fmtNum(r.total)} ${r.total === 1 ? 'error' : 'errors'}${r.total > list.length ? `, the newest ${list.length} shown` : ''}.`;
    if (!list.length) { this.body.replaceChildren(); return; }
    // Records the user opened stay open as new errors arrive.
    const open = new Set([...this.body.querySelectorAll('tr[data-key]')].filter((tr) => tr.querySelector('details[open]')).map((tr) => tr.dataset.key));
    this.body.replaceChildren(h('table', { class: 'list errors' },
      h('thead', null, h('tr', null, ['Time (UTC)', 'Operator', 'Origin', 'Message', 'Record', 'Dead letter'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((e) => h('tr', { dataset: { testid: 'error-row', operator: e.operator || '', key: rowKey(e) } },
        timeEl(e.time, 'td'),
        h('td', null, e.operator || ''),
        h('td', { class: 'mono' }, originText(e.origin, e.shard)),
        h('td', { class: 'wrap', dataset: { testid: 'error-message' } }, e.message || ''),
        h('td', null, recordCell(e.record, open.has(rowKey(e)))),
        h('td', null, deadLetterLink(e.dead_letter, e.origin)))))));
  }

  close() { this.poll.stop(); }
}

function rowKey(e) {
  return `${e.time}|${e.operator}|${originText(e.origin, e.shard)}|${e.message}`;
}

export function originText(o, shard) {
  if (!o) return shard || '';
  if (typeof o === 'string') return o;
  const where = [o.stream, o.shard].filter(Boolean).join('/');
  return `${where}${o.sequence ? '@' + o.sequence : ''}` || shard || '';
}

// recordCell shows a short form of the record that opens to the whole of
// it, indented.
export function recordCell(rec, open = false) {
  if (rec == null) return h('span', { class: 'muted' }, '–');
  const text = pretty(rec);
  const short = (typeof rec === 'string' ? rec : JSON.stringify(rec)).slice(0, 60);
  return h('details', { class: 'record', open }, h('summary', { class: 'mono' }, short + (short.length >= 60 ? '…' : '')),
    h('pre', { class: 'json', dataset: { testid: 'error-record' } }, text));
}

// deadLetterLink opens the dead-letter stream's tail searching for the
// dead letter: by its own sequence number when the server knows it (the
// dead letter is committed at the next checkpoint, so it may not yet), else
// by the sequence number of the record it holds, which its origin names.
function deadLetterLink(d, origin) {
  if (!d || !d.stream) return h('span', { class: 'muted' }, '–');
  const find = d.sequence || (origin && typeof origin === 'object' ? origin.sequence : '') || '';
  return h('a', { href: `#/streams/${enc(d.stream)}${find ? '?find=' + enc(find) : ''}`, dataset: { testid: 'dead-letter-link' },
    title: d.sequence ? `dead letter ${d.sequence}` : find ? `the dead letter of record ${find}` : null }, d.stream);
}
