// Streams list and the stream page: shards with hash ranges and lineage,
// per-shard incoming rate (from last_position deltas between polls) and a
// tail of recent records of one shard.
import { api, enc, h, fmtNum, fmtTime, poller } from './api.js';

const TAIL_ROWS = 100;

export function streamsPage(root) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  root.append(h('div', { class: 'page-head' }, h('h1', null, 'Streams')),
    h('table', { class: 'list', dataset: { testid: 'stream-list' } },
      h('thead', null, h('tr', null, ['Stream', 'Status', 'Open shards', 'Retention', 'Created'].map((c) => h('th', null, c)))), body),
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
    body.replaceChildren(...streams.map((s) => h('tr', { dataset: { testid: 'stream-row' } },
      h('td', null, h('a', { href: '#/streams/' + enc(s.name) }, s.name)),
      h('td', null, s.status), h('td', null, s.open_shards), h('td', null, s.retention_hours + ' h'),
      h('td', null, fmtTime(Date.parse(s.created))))));
  }, 3000);
  return () => p.stop();
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

export function streamPage(root, name) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  const shardSelect = h('select', { dataset: { testid: 'tail-shard' } });
  const tailBody = h('tbody');
  const tailStatus = h('span', { class: 'muted' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', null, name), h('a', { href: '#/streams' }, '← streams')),
    note,
    h('section', null, h('h2', null, 'Shards'),
      h('table', { class: 'list', dataset: { testid: 'shard-list' } },
        h('thead', null, h('tr', null, ['Shard', 'Open', 'Hash keys', 'Parent', 'Adjacent parent', 'Children', 'Trim', 'Last', 'Incoming/s', 'Last 2 min'].map((c) => h('th', null, c)))),
        body)),
    h('section', null, h('h2', null, 'Recent records'),
      h('div', { class: 'controls' }, h('label', null, 'Shard ', shardSelect), tailStatus),
      h('div', { class: 'table-wrap' }, h('table', { class: 'list', dataset: { testid: 'tail' } },
        h('thead', null, h('tr', null, ['Position', 'Arrival', 'Key', 'Data'].map((c) => h('th', null, c)))), tailBody))));

  let prev = null; // {t, last: Map shard → last_position}
  const history = new Map(); // shard → recent rates, ≤ SPARK_POINTS
  const p = poller(async () => {
    let st;
    try { st = await api('/streams/' + enc(name)); } catch (e) { note.textContent = e.message; return; }
    note.textContent = `${st.status} · ${st.open_shards} open shards · retention ${st.retention_hours} h`;
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
        h('td', { dataset: { testid: 'shard-rate' } }, rate == null ? '…' : fmtNum(rate)),
        h('td', null, hist.length > 1 ? sparkline(hist) : ''));
    }));
    prev = { t: now, last: new Map(shards.map((s) => [s.id, s.last_position])) };
    for (const id of history.keys()) if (!shards.some((s) => s.id === id)) history.delete(id);
    const ids = shards.map((s) => s.id);
    if ([...shardSelect.options].map((o) => o.value).join() !== ids.join()) {
      const keep = shardSelect.value;
      shardSelect.replaceChildren(...ids.map((id) => h('option', { value: id }, id)));
      shardSelect.value = ids.includes(keep) ? keep : (shards.find((s) => s.open) || shards[0] || {}).id || '';
    }
  }, 2000);

  // Tail: start at the latest records of the chosen shard, then follow.
  let pos = null, shard = '';
  const rows = [];
  shardSelect.addEventListener('change', () => { pos = null; rows.length = 0; tailBody.replaceChildren(); });
  const tail = poller(async () => {
    if (!shardSelect.value) return;
    if (shard !== shardSelect.value) { shard = shardSelect.value; pos = null; rows.length = 0; }
    if (pos == null) {
      const info = await api('/streams/' + enc(name));
      const s = (info.shards || []).find((x) => x.id === shard);
      if (s && s.last_position) pos = Math.max(s.trim_position || 0, s.last_position - 20);
    }
    const q = pos == null ? 'from=trim_horizon' : `position=${pos}`;
    const res = await api(`/streams/${enc(name)}/records?shard=${enc(shard)}&${q}&limit=500`);
    if (res.next_position != null) pos = res.next_position;
    for (const r of res.records || []) rows.push(r);
    if (rows.length > TAIL_ROWS) rows.splice(0, rows.length - TAIL_ROWS);
    tailStatus.textContent = `${rows.length} records shown · next position ${pos ?? '–'}`;
    tailBody.replaceChildren(...rows.slice().reverse().map((r) => h('tr', { dataset: { testid: 'tail-row' } },
      h('td', null, r.position), h('td', null, r.arrival ? r.arrival.slice(11, 23) : ''), h('td', null, r.key),
      h('td', { class: 'data' }, r.data != null ? r.data : `base64: ${r.data_base64}`))));
  }, 1000);
  return () => { p.stop(); tail.stop(); };
}
