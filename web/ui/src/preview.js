// The editor's preview (POST /api/v1/jobs/preview?records=N): the job run
// on recent records with its sinks captured in memory, nothing written.
// One tab per operator, each with its output rows (up to 200 the server
// sends) and the errors it met, the record and its origin with each.
import { h, fmtNum, fmtCount, fmtMs } from './api.js';
import { originText, recordCell } from './errors.js';
import { columnsOf, valueCell } from './output.js';

export class PreviewPanel {
  constructor() {
    this.tabs = h('div', { class: 'tabs', dataset: { testid: 'preview-tabs' } });
    this.summary = h('p', { class: 'muted', dataset: { testid: 'preview-summary' } });
    this.problems = h('div', { dataset: { testid: 'preview-problems' } });
    this.body = h('div', { dataset: { testid: 'preview-body' } });
    this.el = h('section', { class: 'preview', hidden: true, dataset: { testid: 'preview' } },
      h('h2', null, 'Preview'), this.summary, this.problems, this.tabs, this.body);
    this.res = null;
    this.op = null;
  }

  running() {
    this.el.hidden = false;
    this.summary.classList.remove('error');
    this.summary.textContent = 'running the job on recent records…';
  }

  failed(e) {
    this.el.hidden = false;
    this.problems.replaceChildren();
    this.tabs.replaceChildren();
    this.body.replaceChildren();
    this.summary.classList.add('error');
    this.summary.textContent = e.status === 400 ? 'The job file is invalid: see the problems above.' : 'Preview failed: ' + e.message;
  }

  show(res) {
    this.res = res;
    const ops = res.operators || [];
    const errs = ops.reduce((s, o) => s + errorCount(o), 0);
    this.summary.classList.remove('error');
    this.summary.textContent = `${fmtCount(res.records_read, 'record')} read in ${fmtMs(res.elapsed_ms)} · ${fmtCount(ops.length, 'operator')} · ${fmtCount(errs, 'error')} · nothing was written`;
    // What stopped the preview early, or what it could not read.
    this.problems.replaceChildren(...[
      res.timed_out ? h('p', { class: 'error', dataset: { testid: 'preview-timed-out' } }, 'The preview was cut at its time limit: the rows so far are shown, open windows were not flushed.') : null,
      res.error ? h('p', { class: 'error', dataset: { testid: 'preview-error-message' } }, 'The job failed: ' + res.error) : null,
      ...(res.warnings || []).map((w) => h('p', { class: 'warning', dataset: { testid: 'preview-warning' } }, w)),
    ].filter(Boolean));
    if (!ops.some((o) => o.id === this.op)) {
      // Open on the first operator with errors, else the last (the output).
      this.op = (ops.find((o) => errorCount(o)) || ops[ops.length - 1] || {}).id;
    }
    this.tabs.replaceChildren(...ops.map((o) => h('button', {
      class: o.id === this.op ? 'tab active' : 'tab',
      dataset: { testid: 'preview-tab', op: o.id },
      onclick: () => { this.op = o.id; this.show(this.res); },
    }, `${o.id} (${o.kind}) · ${fmtCount(o.row_count ?? (o.rows || []).length, 'row')}`, errorCount(o) ? h('span', { class: 'error' }, ` · ${fmtCount(errorCount(o), 'error')}`) : null)));
    const o = ops.find((x) => x.id === this.op);
    this.body.replaceChildren(o ? operatorView(o) : h('p', { class: 'muted' }, 'No operators.'));
  }
}

function operatorView(o) {
  const rows = o.rows || [];
  const parts = [];
  const count = o.row_count ?? rows.length;
  parts.push(h('p', { class: 'muted' }, `${fmtCount(count, 'row')}${count > rows.length ? `, the first ${rows.length} shown` : ''}`,
    o.flushed ? ' · open windows were flushed at the end of the preview' : ''));
  if (rows.length) {
    const objects = rows.every((r) => r && typeof r === 'object' && !Array.isArray(r));
    const cols = objects ? columnsOf(rows.map((r) => ({ value: r }))) : ['value'];
    parts.push(h('div', { class: 'table-wrap' }, h('table', { class: 'list', dataset: { testid: 'preview-rows', op: o.id } },
      h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
      h('tbody', null, rows.map((r) => h('tr', null, cols.map((c) => valueCell(c, objects ? r[c] : r))))))));
  }
  const errors = o.errors || [];
  if (errors.length) {
    const all = errorCount(o);
    parts.push(h('h3', { class: 'error' }, `Errors (${fmtNum(all)}${all > errors.length ? `, the first ${errors.length} shown` : ''})`), h('div', { class: 'table-wrap' }, h('table', { class: 'list', dataset: { testid: 'preview-errors', op: o.id } },
      h('thead', null, h('tr', null, ['Message', 'Origin', 'Record'].map((c) => h('th', null, c)))),
      h('tbody', null, errors.map((e) => h('tr', { dataset: { testid: 'preview-error' } },
        h('td', { class: 'wrap' }, e.message || ''), h('td', { class: 'mono' }, originText(e.origin)), h('td', null, recordCell(e.record))))))));
  }
  return h('div', null, parts);
}

// errorCount is an operator's count of errors (the server lists the first
// of them).
function errorCount(o) {
  return o.error_count ?? (o.errors || []).length;
}

