// Live window results of one dashboard sink: an Arrow IPC stream
// (GET /api/v1/jobs/{id}/results/live?sink=ID) decoded batch by batch with
// apache-arrow, kept in a bounded store (the last MAX_POINTS windows of at
// most MAX_KEYS keys, the last TABLE_ROWS rows), drawn with uPlot at most
// four times a second, anomalies marked on the chart.
import { RecordBatchReader } from 'apache-arrow';
import uPlot from 'uplot';
import { h, enc, fmtNum, fmtCount, fmtTime, axisClock, spanAtLeast } from './api.js';
import { Store, stats, TABLE_ROWS } from './store.js';
import { cellText } from './cells.js';

// The page redraws the live chart, the table and the row counter together,
// at most this often: however fast batches come, four redraws a second
// keep a chart of window results live at a bounded cost.
const REDRAW_EVERY_MS = 250;
const TOPN_EVERY_MS = 2000;
const MAX_MARKERS = 400;
const MIN_SPAN_S = 60;
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f', '#393b79',
  '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd', '#e6550d', '#31a354', '#756bb1', '#636363', '#6baed6'];

export class ResultsPanel {
  constructor(jobId, sink) {
    this.jobId = jobId;
    this.sink = sink;
    this.store = new Store();
    this.closed = false;
    this.paused = false;
    this.jobState = 'running';
    this.col = null;
    this.topN = 10;
    this.keys = [];
    this.plot = null;
    this.frame = 0;
    this.chartDirty = false;
    this.tableDirty = false;
    this.timer = null;
    this.lastDraw = -Infinity;
    this.lastTop = 0;
    this.markerPool = [];
    this.retry = null;
    this.colours = new Map(); // key → palette colour, kept while the key is charted

    this.aggSelect = h('select', { dataset: { testid: 'aggregate-select' }, onchange: () => { this.col = this.aggSelect.value; this.lastTop = 0; this.dirty(); } });
    this.topSelect = h('select', { dataset: { testid: 'topn-select' }, onchange: () => { this.topN = Number(this.topSelect.value); this.lastTop = 0; this.dirty(); } },
      [5, 10, 20].map((n) => h('option', { value: n, selected: n === this.topN }, `top ${n} keys`)));
    this.bandSelect = h('select', { dataset: { testid: 'band-select' }, title: 'the expected range the detect operator computed for one key', onchange: () => { this.band = this.bandSelect.value || null; this.plotBand = undefined; this.lastTop = 0; this.dirty(); } });
    this.band = null;
    this.pauseBtn = h('button', { dataset: { testid: 'pause-results' }, onclick: () => this.togglePause() }, 'Pause table');
    this.status = h('span', { class: 'muted', dataset: { testid: 'results-status' } }, 'connecting…');
    this.chartBox = h('div', { class: 'chart', dataset: { testid: 'results-chart', points: '0' } }, h('p', { class: 'muted empty' }, 'Waiting for the first window to fire…'));
    this.thead = h('thead');
    this.tbody = h('tbody');
    this.table = h('table', { class: 'list results', dataset: { testid: 'results-table' } }, this.thead, this.tbody);
    this.el = h('section', { class: 'results-panel', dataset: { sink: sink.id } },
      h('h2', null, sink.title || sink.id, h('small', { class: 'muted' }, ` · dashboard sink ${sink.id}`)),
      h('div', { class: 'controls' }, this.aggLabel = h('label', null, 'Aggregate ', this.aggSelect), this.topSelect,
        this.bandLabel = h('label', { hidden: true }, 'Expected range of ', this.bandSelect), this.pauseBtn, this.status),
      this.chartBox,
      h('h3', null, 'Latest results'),
      h('div', { class: 'table-wrap' }, this.table));
    this.resize = new ResizeObserver(() => { if (this.plot) this.plot.setSize(this.size()); });
    this.resize.observe(this.chartBox);
    // A chart out of sight (scrolled away, or a hidden tab) is not redrawn;
    // it is drawn with the latest windows when it comes back into view.
    this.visible = true;
    this.seen = new IntersectionObserver((entries) => {
      this.visible = entries.some((e) => e.isIntersecting);
      this.chartBox.dataset.visible = String(this.visible);
      if (this.visible && this.chartDirty) this.dirty();
    });
    this.seen.observe(this.chartBox);
    this.connect();
  }

  setJobState(state) { this.jobState = state; }

  size() { return { width: Math.max(300, this.chartBox.clientWidth - 4), height: 320 }; }

  async connect() {
    if (this.closed) return;
    this.abort = new AbortController();
    stats.connects++;
    let received = false;
    try {
      const url = `/api/v1/jobs/${enc(this.jobId)}/results/live?sink=${enc(this.sink.id)}`;
      const res = await fetch(url, { signal: this.abort.signal, headers: { Accept: 'application/vnd.apache.arrow.stream' } });
      if (!res.ok) {
        let msg = `HTTP ${res.status}`;
        try { msg = (await res.json()).error.message; } catch { /* not JSON */ }
        throw new Error(msg);
      }
      this.status.textContent = 'connected, waiting for results…';
      const reader = await RecordBatchReader.from(res);
      for await (const batch of reader) {
        if (this.closed) return;
        if (!received) { this.store.reset(); received = true; }
        this.store.ingest(batch);
        this.live = true;
        this.dirty();
      }
      if (this.closed) return;
      this.live = false;
      this.status.textContent = this.jobState === 'running' ? 'stream ended; reconnecting…' : `job ${this.jobState}`;
    } catch (e) {
      if (this.closed || e.name === 'AbortError') return;
      this.live = false;
      this.status.textContent = 'results unavailable: ' + e.message + ' (retrying)';
    }
    if (!this.closed && (this.jobState === 'running' || !received)) {
      this.retry = setTimeout(() => this.connect(), 2000);
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.abort) this.abort.abort();
    cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
    this.resize.disconnect();
    this.seen.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseBtn.textContent = this.paused ? 'Resume table' : 'Pause table';
    this.pauseBtn.classList.toggle('active', this.paused);
    this.table.dataset.paused = this.paused ? '1' : '';
    if (!this.paused) this.dirty();
  }

  // dirty asks for a redraw: on the first animation frame at least
  // REDRAW_EVERY_MS after the last one, the chart (unless it is out of
  // sight), the table and the row counter, so one frame carries every
  // change of the batches that came in between.
  dirty() {
    if (this.closed) return;
    this.chartDirty = true;
    this.tableDirty = true;
    if (this.frame || this.timer) return;
    const wait = this.lastDraw + REDRAW_EVERY_MS - performance.now();
    const ask = () => { this.timer = null; if (!this.closed) this.frame = requestAnimationFrame((t) => this.render(t)); };
    if (wait > 0) this.timer = setTimeout(ask, wait);
    else ask();
  }

  render(now) {
    this.frame = 0;
    if (this.closed) return;
    this.lastDraw = now;
    // The chart's controls follow the columns even while it is out of sight.
    if (this.chartDirty && this.store.timed !== false) this.syncAggregates();
    // (The note that rows have no time to chart is cheap: it shows at once.)
    if (this.chartDirty && (this.visible || this.store.timed === false)) {
      this.chartDirty = false;
      this.renderChart(now);
    }
    if (this.tableDirty) {
      this.tableDirty = false;
      this.renderStatus();
      if (!this.paused) this.renderTable();
    }
  }

  // renderStatus counts rows, keys and anomalies, at the table's pace.
  renderStatus() {
    if (!this.live) return;
    // (rows with no time are not charted by key: no key count for them)
    const text = `live · ${fmtCount(this.store.seq, 'row')}` + (this.store.timed === false ? '' : ` · ${fmtCount(this.store.keys.size, 'key')} · ${fmtCount(this.store.anomalies, 'anomaly', 'anomalies')}`);
    if (this.status.textContent !== text) this.status.textContent = text;
  }

  syncAggregates() {
    const cols = this.store.numeric;
    const have = [...this.aggSelect.options].map((o) => o.value);
    if (have.join() !== cols.join()) {
      this.aggSelect.replaceChildren(...cols.map((c) => h('option', { value: c }, c)));
    }
    if (!cols.includes(this.col)) this.col = cols.includes(this.store.detectField) ? this.store.detectField : cols[0] || null;
    // (setting a select's value, even to the same one, costs a style pass)
    if (this.aggSelect.value !== (this.col || '')) this.aggSelect.value = this.col || '';
  }

  renderChart(now) {
    // Rows a map reshaped (no window_end or window_start) have no time to
    // chart them against: the table shows them.
    if (this.store.timed === false) {
      if (!this.chartBox.querySelector('[data-testid=no-time-chart]')) {
        if (this.plot) this.plot.destroy();
        this.plot = null;
        this.chartBox.replaceChildren(h('p', { class: 'muted empty', dataset: { testid: 'no-time-chart' } },
          'These rows have no window_end or window_start column, so there is no time chart: the table shows them.'));
        // (the chart's controls would do nothing)
        this.aggLabel.hidden = this.topSelect.hidden = this.bandLabel.hidden = true;
      }
      return;
    }
    this.syncAggregates();
    if (!this.col) return;
    if (now - this.lastTop >= TOPN_EVERY_MS || !this.keys.length) {
      this.lastTop = now;
      const keys = this.store.topKeys(this.col, this.topN);
      const band = this.bandFor(keys);
      if (keys.join('\u0000') !== this.keys.join('\u0000') || this.plotCol !== this.col || this.plotBand !== band) {
        this.keys = keys;
        this.syncBandOptions();
        this.rebuild(band);
      }
    }
    this.keys = this.keys.filter((k) => this.store.keys.has(k));
    if (!this.plot || !this.keys.length) return;
    const { data, marks } = this.store.series(this.keys, this.col, this.plotBand);
    this.marks = marks;
    this.plot.setData(data);
    const points = String(data[0].length);
    if (this.chartBox.dataset.points !== points) this.chartBox.dataset.points = points;
  }

  // bandFor says which key's expected range to draw: the chosen one, while
  // it is charted and the chart shows the aggregate the detector scores.
  bandFor(keys) {
    const scored = this.store.detectField && this.col === this.store.detectField;
    this.bandLabel.hidden = !scored;
    return scored && this.band && keys.includes(this.band) ? this.band : null;
  }

  syncBandOptions() {
    const want = ['', ...this.keys];
    if ([...this.bandSelect.options].map((o) => o.value).join('\u0000') !== want.join('\u0000')) {
      this.bandSelect.replaceChildren(...want.map((k) => h('option', { value: k }, k || 'none')));
    }
    this.bandSelect.value = this.keys.includes(this.band) ? this.band : '';
  }

  rebuild(band) {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.chartBox.replaceChildren();
    if (!this.keys.length) return;
    this.plotCol = this.col;
    this.plotBand = band;
    this.chartBox.dataset.band = band || '';
    const bandSeries = band ? [
      { label: `expected low (${band})`, stroke: 'rgba(214, 69, 69, .45)', dash: [4, 4], width: 1, spanGaps: true, points: { show: false } },
      { label: `expected high (${band})`, stroke: 'rgba(214, 69, 69, .45)', dash: [4, 4], width: 1, spanGaps: true, points: { show: false } },
    ] : [];
    const n = this.keys.length;
    const opts = {
      ...this.size(),
      // At least a minute of x axis, so the first windows are not drawn
      // across the whole width with sub-second ticks.
      scales: { x: { time: true, range: spanAtLeast(MIN_SPAN_S) } },
      legend: { live: false },
      // Times in UTC, as everywhere else in the UI.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      cursor: { drag: { x: false, y: false } },
      series: [{ label: 'window end' }, ...this.keys.map((k) => ({
        label: k, stroke: this.colour(k), width: k === band ? 2.5 : 1.5, spanGaps: true, points: { show: false },
      })), ...bandSeries],
      bands: band ? [{ series: [n + 2, n + 1], fill: 'rgba(214, 69, 69, .08)' }] : [],
      axes: [{ values: axisClock, space: 70 }, { label: this.col, size: 60 }],
      hooks: { draw: [(u) => { stats.draws++; this.placeMarkers(u); }] },
    };
    this.plot = new uPlot(opts, [[], ...this.keys.map(() => []), ...bandSeries.map(() => [])], this.chartBox);
  }

  // colour keeps a key's colour while it stays charted.
  colour(key) {
    for (const k of this.colours.keys()) if (!this.keys.includes(k)) this.colours.delete(k);
    if (!this.colours.has(key)) {
      const used = new Set(this.colours.values());
      this.colours.set(key, PALETTE.find((c) => !used.has(c)) || PALETTE[this.colours.size % PALETTE.length]);
    }
    return this.colours.get(key);
  }

  // placeMarkers positions one pooled <div> per anomalous point over the
  // plot (only a transform changes per frame, so no layout is forced);
  // markers past the visible area are hidden. Titles are set on hover.
  placeMarkers(u) {
    const marks = (this.marks || []).slice(-MAX_MARKERS);
    const w = u.bbox.width / uPlot.pxRatio, ht = u.bbox.height / uPlot.pxRatio;
    let used = 0;
    for (const [xi, si] of marks) {
      const xv = u.data[0][xi], yv = u.data[si][xi];
      const left = u.valToPos(xv, 'x'), top = u.valToPos(yv, 'y');
      if (!(left >= -1 && top >= -1 && left <= w + 1 && top <= ht + 1)) continue;
      let m = this.markerPool[used];
      if (!m) {
        m = h('div', { class: 'anomaly-marker', dataset: { testid: 'anomaly-marker' } });
        m.addEventListener('mouseenter', () => {
          const [x, y, label] = m.point;
          m.title = `${label} · window end ${fmtTime(x * 1000)} · ${this.col} = ${fmtNum(y)} (anomaly)`;
        });
        this.markerPool.push(m);
      }
      if (m.parentNode !== u.over) u.over.append(m);
      m.point = [xv, yv, u.series[si].label];
      const at = `translate(${left}px, ${top}px)`;
      if (m.at !== at) { m.at = at; m.style.transform = at; }
      if (m.hidden) m.hidden = false;
      used++;
    }
    for (let i = used; i < this.markerPool.length; i++) if (!this.markerPool[i].hidden) this.markerPool[i].hidden = true;
    if (this.shownMarkers !== used) { this.shownMarkers = used; this.chartBox.dataset.anomalies = String(used); }
  }

  // renderTable rewrites the text of a fixed set of rows in place: each
  // cell keeps one text node whose data changes, and only where the text
  // changed (a new node per cell would restyle it).
  renderTable() {
    const cols = this.store.columns;
    if (!cols.length) return;
    if (this.thead.dataset.cols !== cols.join()) {
      this.thead.dataset.cols = cols.join();
      // Times get the width of their full UTC form; the fixed layout shares the rest.
      this.thead.replaceChildren(h('tr', null, cols.map((c) => h('th', { class: TIME_COLS.has(c) ? 'time' : null, title: c }, c))));
      // At a narrow width the table scrolls sideways rather than cut every
      // other column to a character or two.
      const times = cols.filter((c) => TIME_COLS.has(c)).length;
      this.table.style.minWidth = `${times * 13.5 + (cols.length - times) * 5.5}em`;
      this.tbody.replaceChildren();
    }
    const rows = this.store.rows.slice(-TABLE_ROWS).reverse();
    while (this.tbody.rows.length < rows.length) {
      this.tbody.append(h('tr', { dataset: { testid: 'result-row' } }, cols.map(() => h('td', null, document.createTextNode('')))));
    }
    while (this.tbody.rows.length > rows.length) this.tbody.lastChild.remove();
    rows.forEach((r, i) => {
      const tr = this.tbody.rows[i];
      const anomalous = r.is_anomaly === true;
      if (tr.classList.contains('anomaly') !== anomalous) tr.classList.toggle('anomaly', anomalous);
      cols.forEach((c, j) => {
        const text = formatCell(c, r[c]);
        const td = tr.cells[j];
        const node = td.firstChild;
        if (node.data !== text) {
          node.data = text;
          // Times in UTC, the local time on hover.
          if (TIME_COLS.has(c)) td.title = r[c] == null ? '' : new Date(r[c]).toString();
        }
      });
    });
  }
}

const TIME_COLS = new Set(['window_start', 'window_end']);

function formatCell(col, v) {
  if (v == null) return '';
  if (TIME_COLS.has(col)) return fmtTime(v);
  return cellText(v);
}
