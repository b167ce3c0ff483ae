// Streams list (create a stream; records, bytes and the jobs reading each)
// and the stream page: delete, put a record, shards with hash ranges and
// lineage, per-shard incoming rate (from last_position deltas between
// polls), and a tail of several shards together.
import { api, enc, h, fmtNum, fmtCount, fmtRate, fmtBytes, timeEl, pretty, confirmBar, jsonBody, poller } from './api.js';

const TAIL_ROWS = 100;

export function streamsPage(root) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  const name = h('input', { placeholder: 'name', size: 20, required: true, pattern: '[a-zA-Z0-9_.\\-]{1,128}', dataset: { testid: 'new-stream-name' } });
  const shards = h('input', { type: 'number', min: 1, max: 1024, value: 1, size: 4, dataset: { testid: 'new-stream-shards' } });
  const retention = h('input', { type: 'number', min: 1, max: 8760, value: 24, size: 5, dataset: { testid: 'new-stream-retention' } });
  const createNote = h('span', { class: 'muted', dataset: { testid: 'create-stream-note' } });
  const form = h('form', { class: 'controls', 'data-needs': 'writer', dataset: { testid: 'create-stream' } },
    h('strong', null, 'New stream'), name, h('label', null, 'shards ', shards), h('label', null, 'retention ', retention, ' h'),
    h('button', { class: 'primary', type: 'submit', dataset: { testid: 'create-stream-submit' } }, 'Create'), createNote);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    createNote.classList.remove('error');
    try {
      await api('/streams', jsonBody('POST', { name: name.value.trim(), shards: Number(shards.value), retention_hours: Number(retention.value) }));
      createNote.textContent = `Created ${name.value.trim()}.`;
      name.value = '';
      p.now();
    } catch (e) {
      createNote.textContent = 'Cannot create: ' + e.message;
      createNote.classList.add('error');
    }
  });
  root.append(h('div', { class: 'page-head' }, h('h1', null, 'Streams')), form,
    h('div', { class: 'scroll-x' }, h('table', { class: 'list', dataset: { testid: 'stream-list' } },
      h('thead', null, h('tr', null, ['Stream', 'Status', 'Open shards', 'Records kept', 'Bytes on disk', 'Read by', 'Retention', 'Created (UTC)'].map((c) => h('th', null, c)))), body)),
    note);
  const p = poller(async () => {
    let streams;
    try {
      streams = (await api('/streams')).streams || [];
    } catch (e) {
      note.textContent = 'Cannot list streams: ' + e.message;
      return;
    }
    note.textContent = streams.length ? '' : 'No streams yet.';
    body.replaceChildren(...streams.map((s) => h('tr', { dataset: { testid: 'stream-row', stream: s.name } },
      h('td', null, h('a', { href: '#/streams/' + enc(s.name) }, s.name)),
      h('td', null, s.status), h('td', null, s.open_shards),
      h('td', { dataset: { testid: 'stream-records' } }, s.records == null ? '–' : fmtNum(s.records)),
      h('td', { title: s.bytes == null ? null : `${s.bytes} bytes in the stream's segment files on disk`, dataset: { testid: 'stream-bytes' } }, fmtBytes(s.bytes)),
      h('td', { dataset: { testid: 'stream-readers' } }, readers(s.readers)),
      h('td', null, s.retention_hours + ' h'),
      timeEl(s.created, 'td'))));
  }, 3000);
  return () => p.stop();
}

function readers(list) {
  if (!Array.isArray(list)) return '–';
  if (!list.length) return h('span', { class: 'muted' }, 'no job');
  return list.flatMap((id, i) => [i ? ', ' : null, h('a', { href: '#/jobs/' + enc(id) }, id)]);
}

const SPARK_POINTS = 60;

// sparkline draws the last rates of a shard as a small SVG polyline.
function sparkline(values) {
  const w = 90, ht = 18;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${((i / (SPARK_POINTS - 1)) * w).toFixed(1)},${(ht - 1 - (v / max) * (ht - 2)).toFixed(1)}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', w);
  svg.setAttribute('height', ht);
  svg.setAttribute('class', 'spark');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', pts);
  svg.append(line);
  return svg;
}

function shortHash(s) {
  return s && s.length > 12 ? s.slice(0, 6) + '…' + s.slice(-4) : s;
}

export function streamPage(root, name, params = new URLSearchParams()) {
  const body = h('tbody');
  const note = h('p', { class: 'muted', dataset: { testid: 'stream-facts' } });
  const deleteConfirm = confirmBar('delete-stream-confirm', `Delete the stream ${name} and every record in it? Jobs reading it will fail.`, [
    ['Delete', 'confirm-delete-stream', () => remove(), 'danger'],
  ]);
  const lifeNote = h('span', { class: 'muted', dataset: { testid: 'stream-note' } });
  const deleteBtn = h('button', { class: 'danger', 'data-needs': 'admin', dataset: { testid: 'delete-stream' }, onclick: () => deleteConfirm.ask() }, 'Delete…');
  const put = putForm(name);
  const tail = new Tail(name, params.get('find') || '');
  root.append(
    h('div', { class: 'page-head' }, h('h1', null, name), deleteBtn, lifeNote, h('a', { href: '#/streams' }, '← streams')),
    deleteConfirm, note,
    h('section', null, h('h2', null, 'Shards'),
      // (a stream split many times has many shards and long child lists: they scroll)
      h('div', { class: 'table-wrap' }, h('table', { class: 'list', dataset: { testid: 'shard-list' } },
        h('thead', null, h('tr', null, ['Shard', 'Open', 'Hash keys', 'Parent', 'Adjacent parent', 'Children', 'Trim', 'Last', 'Incoming', 'Last 2 min'].map((c) => h('th', null, c)))),
        body))),
    put,
    tail.el);

  async function remove() {
    // No read of the stream is under way when it goes (it would answer 404).
    await Promise.all([p.stop(), tail.poll.stop()]);
    try {
      await api('/streams/' + enc(name), { method: 'DELETE' });
      location.hash = '#/streams';
    } catch (e) {
      lifeNote.textContent = 'Delete failed: ' + e.message;
      lifeNote.classList.add('error');
      p.resume();
      tail.poll.resume();
    }
  }

  let prev = null; // {t, last: Map shard → last_position}
  const history = new Map(); // shard → recent rates, ≤ SPARK_POINTS
  const p = poller(async () => {
    let st;
    try { st = await api('/streams/' + enc(name)); } catch (e) {
      if (e.status === 404) {
        // Nothing of the page applies: no reads of a stream that is not there.
        p.stop();
        tail.close();
        root.replaceChildren(h('div', { class: 'page-head' }, h('h1', null, name)),
          h('p', { class: 'error', dataset: { testid: 'no-such-stream' } },
            'No such stream: it was deleted, or never created. ', h('a', { href: '#/streams' }, 'All streams')));
        return;
      }
      note.textContent = 'Cannot load the stream: ' + e.message;
      return;
    }
    if (st.records === undefined) {
      // The list has the counts and readers when the stream itself does not.
      const row = ((await api('/streams')).streams || []).find((x) => x.name === name);
      if (row) Object.assign(st, { records: row.records, bytes: row.bytes, readers: row.readers });
    }
    note.replaceChildren(`${st.status} · ${fmtCount(st.open_shards, 'open shard')} · retention ${st.retention_hours} h · `,
      h('span', { dataset: { testid: 'stream-counts' }, title: 'records kept; bytes of the stream on disk' }, `${st.records == null ? '– records' : fmtCount(st.records, 'record')} kept · ${fmtBytes(st.bytes)} on disk`),
      ' · read by ', h('span', { dataset: { testid: 'stream-page-readers' } }, readers(st.readers)));
    const now = performance.now();
    const shards = st.shards || [];
    body.replaceChildren(...shards.map((s) => {
      const before = prev && prev.last.get(s.id);
      const rate = before != null ? Math.max(0, (s.last_position - before) / ((now - prev.t) / 1000)) : null;
      const hist = history.get(s.id) || [];
      if (rate != null) hist.push(rate);
      if (hist.length > SPARK_POINTS) hist.shift();
      history.set(s.id, hist);
      return h('tr', { dataset: { testid: 'shard-row', shard: s.id }, class: s.open ? null : 'closed' },
        h('td', null, s.id), h('td', null, s.open ? 'yes' : 'closed'),
        h('td', { title: `${s.hash_key_start} – ${s.hash_key_end}` }, `${shortHash(s.hash_key_start)} – ${shortHash(s.hash_key_end)}`),
        h('td', null, s.parent || ''), h('td', null, s.adjacent_parent || ''), h('td', null, (s.children || []).join(', ')),
        h('td', null, s.trim_position ?? ''), h('td', null, s.last_position ?? ''),
        h('td', { dataset: { testid: 'shard-rate' } }, rate == null ? '…' : fmtRate(rate)),
        h('td', null, hist.length > 1 ? sparkline(hist) : ''));
    }));
    prev = { t: now, last: new Map(shards.map((s) => [s.id, s.last_position])) };
    for (const id of history.keys()) if (!shards.some((s) => s.id === id)) history.delete(id);
    tail.setShards(shards);
  }, 2000);
  return () => { p.stop(); tail.close(); };
}

// putForm puts one record: a partition key and a JSON value, checked as
// JSON before it is sent (the error says where).
function putForm(name) {
  const key = h('input', { placeholder: 'partition key', size: 24, value: 'key-1', dataset: { testid: 'put-key' } });
  const text = h('textarea', { rows: 5, cols: 70, spellcheck: 'false', class: 'json-input', dataset: { testid: 'put-json' } }, '{"page": "/home", "user": "u1", "latency_ms": 12}');
  const note = h('span', { class: 'muted', dataset: { testid: 'put-note' } });
  const btn = h('button', { class: 'primary', dataset: { testid: 'put-record' } }, 'Put record');
  const check = () => {
    try { JSON.parse(text.value); text.classList.remove('invalid'); return true; } catch (e) {
      text.classList.add('invalid');
      note.textContent = 'Not JSON: ' + e.message;
      note.classList.add('error');
      return false;
    }
  };
  text.addEventListener('input', () => { if (check()) { note.textContent = ''; note.classList.remove('error'); } });
  btn.addEventListener('click', async () => {
    note.classList.remove('error');
    if (!check()) return;
    btn.disabled = true;
    try {
      const r = await api(`/streams/${enc(name)}/records`, jsonBody('POST', { records: [{ key: key.value, json: JSON.parse(text.value) }] }));
      const rec = (r.records || [])[0] || {};
      note.textContent = `Put in ${rec.shard} at position ${rec.position} (sequence ${rec.sequence_number}).`;
    } catch (e) {
      note.textContent = 'Put failed: ' + e.message;
      note.classList.add('error');
    } finally {
      btn.disabled = false;
    }
  });
  return h('section', { 'data-needs': 'writer', dataset: { testid: 'put' } }, h('h2', null, 'Put a record'),
    h('div', { class: 'controls' }, h('label', null, 'Key ', key), btn, note), text);
}

const KEEP = 1000;

// Tail follows several shards of a stream together: each chosen shard is
// read from its latest records on (or from its oldest kept, when looking
// for something), the records merged in arrival order, the newest
// TAIL_ROWS that match the search shown newest first, JSON pretty-printed
// and dead letters laid out as what they are.
class Tail {
  constructor(name, find) {
    this.name = name;
    this.find = find;
    this.chosen = null; // Set of shard ids, the open shards until the user picks
    this.shards = [];
    this.pos = new Map();
    this.rows = [];
    this.picks = h('span', { class: 'shard-picks', dataset: { testid: 'tail-shards' } });
    this.search = h('input', { type: 'search', placeholder: 'search the tail', size: 30, value: find, dataset: { testid: 'tail-search' }, oninput: () => this.render() });
    this.status = h('span', { class: 'muted', dataset: { testid: 'tail-status' } });
    this.list = h('div', { class: 'tail', dataset: { testid: 'tail' } });
    this.el = h('section', null, h('h2', null, 'Recent records'),
      h('div', { class: 'controls' }, 'Shards ', this.picks, this.search, this.status), this.list);
    this.poll = poller(() => this.read(), 1000);
  }

  setShards(shards) {
    const ids = shards.map((s) => s.id);
    if (!this.chosen) this.chosen = new Set(shards.filter((s) => s.open).map((s) => s.id));
    this.shards = shards;
    if (ids.join() === this.ids) return;
    this.ids = ids.join();
    this.picks.replaceChildren(...shards.map((s) => h('label', { class: s.open ? null : 'muted' },
      h('input', { type: 'checkbox', value: s.id, checked: this.chosen.has(s.id), dataset: { testid: 'tail-shard' },
        onchange: (ev) => { if (ev.target.checked) this.chosen.add(s.id); else this.chosen.delete(s.id); this.render(); } }),
      s.id.replace('shardId-', ''))));
  }

  async read() {
    if (!this.chosen) return;
    let got = false;
    for (const s of this.shards) {
      if (!this.chosen.has(s.id)) continue;
      let pos = this.pos.get(s.id);
      if (pos == null) pos = this.find ? s.trim_position || 1 : Math.max(s.trim_position || 1, (s.last_position || 0) - 19);
      const res = await api(`/streams/${enc(this.name)}/records?shard=${enc(s.id)}&position=${pos}&limit=500`);
      if (res.next_position != null) this.pos.set(s.id, res.next_position);
      for (const r of res.records || []) { r.shard = s.id; this.rows.push(r); got = true; }
    }
    if (got) {
      this.rows.sort((a, b) => String(a.arrival).localeCompare(String(b.arrival)) || a.position - b.position);
      if (this.rows.length > KEEP) this.rows.splice(0, this.rows.length - KEEP);
    }
    if (got || !this.drawn) this.render();
  }

  render() {
    this.drawn = true;
    const q = this.search.value.trim().toLowerCase();
    const shown = [];
    for (let i = this.rows.length - 1; i >= 0 && shown.length < TAIL_ROWS; i--) {
      const r = this.rows[i];
      if (!this.chosen.has(r.shard)) continue;
      if (q && !searchText(r).includes(q)) continue;
      shown.push(r);
    }
    this.status.textContent = `${shown.length} shown of ${this.rows.length} read` + (q ? ` · matching “${q}”` : '');
    this.list.replaceChildren(...shown.map(tailRow));
  }

  close() { this.poll.stop(); }
}

function searchText(r) {
  if (r._search == null) r._search = `${r.key} ${r.sequence_number} ${r.data ?? r.data_base64 ?? ''}`.toLowerCase();
  return r._search;
}

// deadLetterOf reads a dead-letter entry ({error, job, operator, origin,
// record}) out of a record's data, or null.
export function deadLetterOf(data) {
  if (typeof data !== 'string' || data[0] !== '{') return null;
  let v;
  try { v = JSON.parse(data); } catch { return null; }
  return v && typeof v.error === 'string' && 'operator' in v && 'record' in v ? v : null;
}

function tailRow(r) {
  const head = h('div', { class: 'tail-head' },
    h('span', { class: 'mono' }, `${r.shard.replace('shardId-', '')} #${r.position}`),
    timeEl(r.arrival), h('span', null, 'key ', h('code', null, r.key)),
    h('span', { class: 'muted mono', title: 'sequence number' }, r.sequence_number));
  const dl = deadLetterOf(r.data);
  if (dl) {
    return h('div', { class: 'tail-row dead-letter', dataset: { testid: 'tail-row', shard: r.shard, deadLetter: '1' } }, head,
      h('div', { class: 'dl', dataset: { testid: 'dead-letter' } },
        h('div', null, h('strong', null, 'Dead letter'), ` of job `, h('a', { href: '#/jobs/' + enc(dl.job) }, dl.job), `, operator ${dl.operator}`, dl.origin ? `, from ${dl.origin}` : ''),
        h('div', { class: 'error', dataset: { testid: 'dead-letter-error' } }, dl.error),
        h('pre', { class: 'json' }, pretty(dl.record))));
  }
  const body = r.data != null ? pretty(r.data) : `base64: ${r.data_base64}`;
  return h('div', { class: 'tail-row', dataset: { testid: 'tail-row', shard: r.shard } }, head, h('pre', { class: 'json' }, body));
}
