// An in-process fake of Runnel's REST API (the parts the UI reads), for
// browser tests that must not depend on the job runtime being landed, and
// for the performance script, whose load (keys, batches per second) it sets.
// It serves the built UI too. Results are real Arrow IPC streams written
// with apache-arrow, shaped as the dashboard sink's: window_start,
// window_end (timestamp[ms, UTC]), key, aggregates, then the detect columns.
import http from 'node:http';
import { parallelismOf } from '../src/jobfile.js';
import { readFile } from 'node:fs/promises';
import { join, extname } from 'node:path';
import {
  Table, vectorFromArray, tableToIPC, Utf8, Int64, Float64, Bool, TimestampMillisecond, Struct, Field, List,
} from 'apache-arrow';

// The detect operator's explanation, as the server's Arrow schema has it.
const EXPLANATION = new Struct([new Field('field', new Utf8(), true), new Field('direction', new Utf8(), true), new Field('z', new Float64(), true)]);
// With structs: true, each row also carries a generic struct (with a list
// and a struct inside) and a list column.
const SOURCE = new Struct([new Field('shard', new Utf8(), true), new Field('lag_ms', new Int64(), true),
  new Field('pos', new Struct([new Field('x', new Float64(), true), new Field('y', new Float64(), true)]), true),
  new Field('hops', new List(new Field('item', new Utf8(), true)), true)]);
const TAGS = new List(new Field('item', new Utf8(), true));

// explanationOf is row i's explanation: high with a large z-score when anomalous.
export function explanationOf(anomalous) {
  return anomalous ? { field: 'views', direction: 'high', z: 18.9 } : { field: 'views', direction: 'low', z: -0.4 };
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

// resultTable builds one batch: a row per key for the window ending at end.
export function resultTable(keys, end, sizeMs, anomalous, { structs = false } = {}) {
  const ks = [], starts = [], ends = [], views = [], p95 = [], score = [], anom = [], exp = [], lo = [], hi = [];
  for (let i = 0; i < keys; i++) {
    const base = 100 + i * 7;
    const spike = anomalous(i, end);
    const v = Math.round(base * (spike ? 3 : 1) + ((end / sizeMs + i) % 5));
    ks.push(`/page/${i}`); starts.push(end - sizeMs); ends.push(end);
    views.push(BigInt(v)); p95.push(20 + ((i * 13 + end / sizeMs) % 17));
    score.push(spike ? 0.97 : 0.1); anom.push(spike); exp.push(base); lo.push(base * 0.8); hi.push(base * 1.2);
  }
  const extra = structs ? {
    source: vectorFromArray(ks.map((_, i) => ({ shard: `shardId-00000000000${i % 2}`, lag_ms: BigInt(i), pos: { x: 1.5, y: i }, hops: ['edge', 'core'] })), SOURCE),
    tags: vectorFromArray(ks.map((_, i) => (i % 2 ? ['odd', `k${i}`] : [])), TAGS),
  } : {};
  return new Table({
    window_start: vectorFromArray(starts, new TimestampMillisecond('UTC')),
    window_end: vectorFromArray(ends, new TimestampMillisecond('UTC')),
    key: vectorFromArray(ks, new Utf8()),
    views: vectorFromArray(views, new Int64()),
    p95_ms: vectorFromArray(p95, new Float64()),
    anomaly_score: vectorFromArray(score, new Float64()),
    is_anomaly: vectorFromArray(anom, new Bool()),
    expected: vectorFromArray(exp, new Float64()),
    expected_low: vectorFromArray(lo, new Float64()),
    expected_high: vectorFromArray(hi, new Float64()),
    ...extra,
    explanation: vectorFromArray(anom.map(explanationOf), EXPLANATION),
  });
}

// ipcParts splits a one-batch IPC stream into its schema message and its
// record batch message (dropping the end-of-stream marker), so one HTTP
// response can carry one schema and then batch after batch.
export function ipcParts(table) {
  const buf = Buffer.from(tableToIPC(table, 'stream'));
  const len = buf.readInt32LE(4);
  const schemaEnd = 8 + len;
  return { schema: buf.subarray(0, schemaEnd), batch: buf.subarray(schemaEnd, buf.length - 8) };
}

const DEMO_SPEC = `name: demo
source:
  generator: {rate: 2000, keys: 20}
  event_time: "r => r.ts"
operators:
  - id: parse
    map: "r => r"
  - id: humans
    filter: "r => !r.user.startsWith('bot-')"
  - id: per-page
    window: {key: "r => r.page", tumbling: 5s, aggregate: {views: count, p95_ms: p95(latency_ms)}}
  - id: spikes
    detect: {value: views}
sinks:
  - {id: board, dashboard: {title: "Views per page"}}
`;

// validate mimics the server's checks closely enough for the editor: a JS
// syntax error in a quoted snippet, or a bad duration, at its line.
export function validate(text) {
  const problems = [];
  const lines = text.split('\n');
  if (!/^name:\s*\S+/m.test(text)) problems.push({ line: 1, column: 1, field: 'name', code: 'missing', message: 'name is required' });
  lines.forEach((l, i) => {
    const js = l.match(/^\s*-?\s*(map|filter|key|event_time):\s*"(.*)"\s*$/);
    if (js) {
      try { new Function('return (' + js[2].replace(/\\"/g, '"') + ')'); } catch (e) {
        problems.push({ line: i + 1, column: l.indexOf('"') + 2, field: js[1], code: 'js_syntax', message: 'JavaScript syntax error: ' + e.message });
      }
    }
    const d = l.match(/^\s*tumbling:\s*(.+?)\s*$/);
    if (d && !/^\d+(ms|s|m|h)$/.test(d[1])) problems.push({ line: i + 1, column: l.indexOf(d[1]) + 1, field: 'tumbling', code: 'invalid_duration', message: `"${d[1]}" is not a duration` });
  });
  return problems;
}

// fakeErrors is a job's error history: two records the map failed on,
// one of them dead-lettered.
function fakeErrors(name) {
  const t = Date.now();
  return [
    { time: new Date(t - 1000).toISOString(), operator: 'parse', shard: 'shardId-000000000001',
      origin: { stream: 'clicks', shard: 'shardId-000000000001', sequence: '49000000000000000017' },
      message: "TypeError: Cannot read property 'startsWith' of undefined", record: { page: '/page/3', user: null, latency_ms: 12 },
      dead_letter: { stream: `${name}-bad`, sequence: '' } },
    { time: new Date(t - 60000).toISOString(), operator: 'parse', shard: 'shardId-000000000000',
      origin: { stream: 'clicks', shard: 'shardId-000000000000', sequence: '49000000000000000005' },
      message: 'SyntaxError: not JSON', record: 'not json at all', dead_letter: null },
  ];
}

// history is a job's metrics history: one point every 5 s for the last
// `n` intervals, with per-shard figures when asked.
export function history(n, ops, shards) {
  const now = Math.floor(Date.now() / 5000) * 5000;
  return {
    interval_ms: 5000,
    points: Array.from({ length: n }, (_, i) => {
      const k = n - 1 - i;
      const wave = Math.sin(i / 9);
      const p = {
        time: new Date(now - k * 5000).toISOString(), watermark_lag_ms: Math.round(1500 + 400 * wave),
        checkpoint_ms: i % 2 ? null : 40 + (i % 7), checkpoint_bytes: i % 2 ? null : 1048576 + i * 4096,
        operators: Object.fromEntries(ops.map((o, j) => [o, { in_per_s: 2000 - j * 100 + 50 * wave, out_per_s: 1900 - j * 100 + 50 * wave,
          backpressure: j === 2 ? 0.3 + 0.2 * wave : 0.02, state_bytes: o === 'per-page' ? 65536 + i * 256 : null }])),
      };
      if (shards) p.shards = { 'shardId-000000000000': { in_per_s: 1000 + 30 * wave, watermark_lag_ms: 1400 }, 'shardId-000000000001': { in_per_s: 1000 - 30 * wave, watermark_lag_ms: 1600 } };
      return p;
    }),
  };
}

// preview answers a preview of a job file: each operator's rows and, for
// the map, one error.
function previewOf(text, n) {
  const ops = [...text.matchAll(/^\s*- id:\s*(\S+)\n\s*(\w+):/gm)].map((m) => ({ id: m[1], kind: m[2] }));
  const rows = (k) => Array.from({ length: Math.min(200, k) }, (_, i) => ({ page: `/page/${i % 8}`, user: `u${i}`, latency_ms: 10 + (i % 30) }));
  return {
    records_read: n, elapsed_ms: 84.2, warnings: ['stream clicks has fewer records than asked for: 412'],
    operators: [
      { id: 'source', kind: 'source', rows: rows(n), row_count: n, errors: [] },
      ...ops.map((o, i) => (o.kind === 'window'
        ? { id: o.id, kind: 'window', flushed: true, row_count: 8, errors: [],
          rows: Array.from({ length: 8 }, (_, k) => ({ window_start: '2026-12-01T10:00:00Z', window_end: '2026-12-01T10:00:01Z', key: `/page/${k}`, views: Math.round(n / 8) })) }
        : { id: o.id, kind: o.kind, rows: rows(n - 1 - i), row_count: n - 1 - i, error_count: i === 0 ? 3 : 0,
          errors: i === 0 ? [{ message: "TypeError: Cannot read property 'startsWith' of null", record: { page: '/page/9', user: null }, origin: { stream: 'generator', shard: '0', sequence: '17' } }] : [] })),
      ...[...text.matchAll(/^\s*- \{id:\s*([^,\s]+),/gm)].map((m) => ({ id: m[1], kind: 'sink', rows: [], row_count: 8, errors: [] })),
    ],
  };
}

// The stream records the fake keeps for put and tail, per stream and shard.
const DEAD = JSON.stringify({ error: "TypeError: Cannot read property 'startsWith' of undefined", job: 'demo-0001', operator: 'parse', origin: 'clicks/shardId-000000000001@49000000000000000017', record: { page: '/page/3', user: null } });

export async function startFake({ distDir, keys = 20, everyMs = 1000, windowMs = 5000, anomalyEvery = 7, historyPoints = 120, structs = false } = {}) {
  const jobs = new Map();
  const anomalous = (i, end) => i === keys - 1 && Math.floor(end / windowMs) % anomalyEvery === 0;
  let seq = 0;
  const savepoints = [];
  const addJob = (name, spec) => {
    const id = `${name}-${(++seq).toString(16).padStart(4, '0')}`;
    jobs.set(id, { id, name, spec, state: 'running', created: new Date().toISOString(), born: Date.now(), subs: new Set(), retained: [], errors: fakeErrors(name) });
    return jobs.get(id);
  };
  addJob('demo', DEMO_SPEC);
  let end = Math.floor(Date.now() / windowMs) * windowMs - 60 * windowMs;
  let schema = null;
  const tick = setInterval(() => {
    end += windowMs;
    const parts = ipcParts(resultTable(keys, end, windowMs, anomalous, { structs }));
    schema = parts.schema;
    for (const j of jobs.values()) {
      if (j.state !== 'running') continue;
      j.retained.push(parts.batch);
      if (j.retained.length > 50) j.retained.shift();
      for (const res of j.subs) res.write(parts.batch);
    }
  }, everyMs);

  // Streams: clicks grows as time goes on (records made when read), the
  // demo's dead-letter stream holds one dead letter, others hold what is put.
  const newStream = (name, n, retention) => ({ name, retention, created: new Date().toISOString(),
    shards: Array.from({ length: n }, (_, i) => ({ id: `shardId-${String(i).padStart(12, '0')}`, records: [] })) });
  const streams = new Map([['clicks', newStream('clicks', 2, 24)], ['demo-bad', newStream('demo-bad', 1, 24)]]);
  streams.get('demo-bad').shards[0].records.push({ sequence_number: '49000000000000000002', position: 1, key: 'u3', arrival: new Date().toISOString(), data: DEAD },
    { sequence_number: '49000000000000000003', position: 2, key: 'u4', arrival: new Date().toISOString(), data: DEAD.replace('/page/3', '/page/4').replace('@49000000000000000017', '@49000000000000000023') });
  const clicksBorn = Date.now() - 20000;
  const fillClicks = (sh) => {
    const want = Math.floor((Date.now() - clicksBorn) / 100);
    while (sh.records.length < want) {
      const n = sh.records.length + 1;
      sh.records.push({ sequence_number: '49' + String(n).padStart(18, '0'), position: n, key: `user-${n}`, arrival: new Date(clicksBorn + n * 100).toISOString(),
        data: JSON.stringify({ page: `/page/${n % 8}`, n, shard: sh.id }) });
    }
  };
  const streamInfo = (st) => {
    if (st.name === 'clicks') st.shards.forEach(fillClicks);
    const records = st.shards.reduce((a, sh) => a + sh.records.length, 0);
    return { name: st.name, status: 'ACTIVE', open_shards: st.shards.length, retention_hours: st.retention, created: st.created,
      records, bytes: st.shards.reduce((a, sh) => a + sh.records.reduce((b, r) => b + (r.data || '').length, 0), 0),
      readers: st.name === 'clicks' ? [...jobs.keys()].slice(0, 1) : [],
      shards: st.shards.map((sh) => ({ id: sh.id, hash_key_start: '0', hash_key_end: '340282366920938463463374607431768211455', open: true,
        trim_position: 1, last_position: sh.records.length })) };
  };

  const info = (j) => {
    const t = (Date.now() - j.born) / 1000;
    const n = Math.round(t * 2000);
    return {
      id: j.id, name: j.name, state: j.state, created: j.created, watermark: end - 2000, parallelism: j.parallelism || 2,
      in_per_s: j.state === 'running' ? 2000 : 0, out_per_s: j.state === 'running' ? keys / (windowMs / 1000) : 0,
      uptime_s: j.state === 'running' ? Math.round(t) : 0, errors: j.errors.length,
      operators: [
        { ID: 'source', Kind: 'source', In: 0, Out: n, Errors: 0, Skipped: 0, Late: 0 },
        { ID: 'parse', Kind: 'operator', In: n, Out: n, Errors: 0, Skipped: 0, Late: 0 },
        { ID: 'humans', Kind: 'operator', In: n, Out: Math.round(n * 0.95), Errors: 0, Skipped: 0, Late: 0 },
        { ID: 'per-page', Kind: 'operator', In: Math.round(n * 0.95), Out: Math.round(t) * keys, Errors: 0, Skipped: 0, Late: Math.round(t / 10) },
        { ID: 'spikes', Kind: 'operator', In: Math.round(t) * keys, Out: Math.round(t) * keys, Errors: 0, Skipped: 0, Late: 0 },
        { ID: 'board', Kind: 'sink', In: Math.round(t) * keys, Out: 0, Errors: 0, Skipped: 0, Late: 0 },
      ],
      graph: [
        { id: 'source', kind: 'source', inputs: [] }, { id: 'parse', kind: 'map', inputs: ['source'] },
        { id: 'humans', kind: 'filter', inputs: ['parse'] }, { id: 'per-page', kind: 'window', inputs: ['humans'] },
        { id: 'spikes', kind: 'detect', inputs: ['per-page'] }, { id: 'board', kind: 'dashboard', inputs: ['spikes'] },
      ],
      sinks: [{ id: 'board', kind: 'dashboard', title: 'Views per page' }],
      spec: j.spec,
      // A checkpoint every 2 s, shaped like the server's history.
      checkpoints: Array.from({ length: Math.min(30, Math.floor(t / 2)) }, (_, i) => {
        const epoch = Math.floor(t / 2) - Math.min(30, Math.floor(t / 2)) + i + 1;
        return { epoch, time: new Date(j.born + epoch * 2000).toISOString(), duration_ms: 40 + (epoch % 7),
          held_ms: 8 + (epoch % 5), size_bytes: 1048576 + epoch * 4096, status: 'complete' };
      }),
    };
  };

  const json = (res, status, body) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const notFound = (res, what) => json(res, 404, { error: { code: 'not_found', message: what + ' not found' } });

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const p = url.pathname;
    let m;
    if (req.method === 'GET' && (p === '/' || p.startsWith('/assets/') || p === '/favicon.ico')) {
      const file = p === '/' ? 'index.html' : p === '/favicon.ico' ? 'assets/favicon.svg' : p.slice(1);
      try {
        const data = await readFile(join(distDir, file));
        res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
        res.end(data);
      } catch { notFound(res, p); }
      return;
    }
    // As runnel serve with auth off (the loopback default).
    if (p === '/api/v1/session' && req.method === 'GET') return json(res, 200, { auth: false, role: 'admin' });
    if (p === '/api/v1/jobs' && req.method === 'GET') return json(res, 200, { jobs: [...jobs.values()].map((j) => { const { operators, graph, sinks, spec, ...rest } = info(j); return rest; }) });
    if (p === '/api/v1/jobs' && req.method === 'POST') {
      let text = '';
      for await (const c of req) text += c;
      const problems = validate(text);
      if (problems.length) return json(res, 400, { error: { code: 'invalid_job', message: problems[0].message, line: problems[0].line, field: problems[0].field, problems } });
      const j = addJob(text.match(/^name:\s*(\S+)/m)[1], text);
      return json(res, 201, { id: j.id, job: info(j) });
    }
    if (p === '/api/v1/jobs/preview' && req.method === 'POST') {
      let text = '';
      for await (const c of req) text += c;
      const problems = validate(text);
      if (problems.length) return json(res, 400, { error: { code: 'invalid_job', message: problems[0].message, line: problems[0].line, field: problems[0].field, problems } });
      return json(res, 200, previewOf(text, Number(url.searchParams.get('records') || 1000)));
    }
    if (p === '/api/v1/savepoints') return json(res, 200, { savepoints: savepoints.slice().reverse() });
    if ((m = p.match(/^\/api\/v1\/jobs\/([^/]+)$/))) {
      const j = jobs.get(decodeURIComponent(m[1]));
      if (!j) return notFound(res, 'job');
      if (req.method === 'DELETE' && url.searchParams.get('purge') === 'true') {
        if (j.state === 'running') return json(res, 409, { error: { code: 'already_exists', message: `job ${j.id} is running: stop it first` } });
        jobs.delete(j.id);
        res.writeHead(204);
        return res.end();
      }
      if (req.method === 'DELETE') { j.state = 'stopped'; for (const s of j.subs) s.end(); j.subs.clear(); }
      if (req.method === 'PUT') {
        let text = '';
        for await (const c of req) text += c;
        const problems = validate(text);
        if (problems.length) return json(res, 400, { error: { code: 'invalid_job', message: problems[0].message, line: problems[0].line, field: problems[0].field, problems } });
        // A file whose window operator changed id cannot take the old state.
        if (url.searchParams.get('from') !== 'none' && !/- id: per-page\b/.test(text) && /- id: per-page\b/.test(j.spec)) {
          return json(res, 409, { error: { code: 'incompatible_savepoint', message: 'the savepoint has state of operator "per-page" (window), which the new file does not have; deploy with from=none to start without state' } });
        }
        j.spec = text;
        const par = parallelismOf(text);
        if (par) j.parallelism = par;
        j.state = 'running';
        j.born = Date.now();
      }
      return json(res, 200, info(j));
    }
    if ((m = p.match(/^\/api\/v1\/jobs\/([^/]+)\/(errors|checkpoints|restart)$/))) {
      const j = jobs.get(decodeURIComponent(m[1]));
      if (!j) return notFound(res, 'job');
      if (m[2] === 'errors') return json(res, 200, { total: j.errors.length, errors: j.errors });
      if (m[2] === 'checkpoints') return json(res, 200, { checkpoints: info(j).checkpoints });
      let body = '';
      for await (const c of req) body += c;
      const want = JSON.parse(body);
      if (j.state === 'running') return json(res, 409, { error: { code: 'already_exists', message: `job ${j.id} is running: stop it first` } });
      if (want.savepoint && !savepoints.some((s) => s.name === want.savepoint)) return notFound(res, 'savepoint');
      j.state = 'running';
      j.restartedFrom = want;
      return json(res, 200, info(j));
    }
    if ((m = p.match(/^\/api\/v1\/jobs\/([^/]+)\/metrics\/history$/))) {
      const j = jobs.get(decodeURIComponent(m[1]));
      if (!j) return notFound(res, 'job');
      return json(res, 200, history(historyPoints, ['source', 'parse', 'humans', 'per-page', 'spikes', 'board'], url.searchParams.get('shards') === 'true'));
    }
    if ((m = p.match(/^\/api\/v1\/jobs\/([^/]+)\/(resume|savepoints)$/)) && req.method === 'POST') {
      const j = jobs.get(decodeURIComponent(m[1]));
      if (!j) return notFound(res, 'job');
      if (m[2] === 'savepoints') {
        const sp = { name: `${j.id}-sp-${++seq}`, job: j.id, epoch: seq, time: new Date().toISOString(), size_bytes: 1048576 };
        savepoints.push(sp);
        return json(res, 201, sp);
      }
      j.state = 'running';
      return json(res, 200, info(j));
    }
    if ((m = p.match(/^\/api\/v1\/jobs\/([^/]+)\/output$/))) {
      // Like the server's output ring: a row every 500 ms, numbered from 1.
      const j = jobs.get(decodeURIComponent(m[1]));
      if (!j) return notFound(res, 'job');
      const sink = url.searchParams.get('sink') || 'board';
      if (sink !== 'board') return notFound(res, 'sink');
      const after = Number(url.searchParams.get('after') || 0);
      const total = () => Math.floor((Date.now() - j.born) / 500);
      if (url.searchParams.get('wait') && url.searchParams.get('wait') !== '0s' && total() <= after) {
        await new Promise((r) => setTimeout(r, 600));
      }
      const rows = [];
      for (let seq = after + 1; seq <= total() && rows.length < 50; seq++) {
        rows.push({ seq, time: new Date(j.born + seq * 500).toISOString(), key: `/page/${seq % keys}`,
          value: { window_start: end - windowMs, window_end: end, key: `/page/${seq % keys}`, views: seq % 17,
            ...(structs ? { explanation: explanationOf(seq % 2 === 0), tags: ['a', 'b'] } : {}) } });
      }
      return json(res, 200, { sink, kind: 'dashboard', rows, next: rows.length ? rows[rows.length - 1].seq : after });
    }
    if ((m = p.match(/^\/api\/v1\/jobs\/([^/]+)\/results\/live$/))) {
      const j = jobs.get(decodeURIComponent(m[1]));
      if (!j) return notFound(res, 'job');
      if (url.searchParams.get('sink') !== 'board') return notFound(res, 'sink');
      res.writeHead(200, { 'Content-Type': 'application/vnd.apache.arrow.stream', 'Cache-Control': 'no-store' });
      res.flushHeaders();
      if (schema) { res.write(schema); for (const b of j.retained) res.write(b); j.subs.add(res); }
      else {
        const wait = setInterval(() => { if (schema) { clearInterval(wait); res.write(schema); j.subs.add(res); } }, 20);
        req.on('close', () => clearInterval(wait));
      }
      req.on('close', () => j.subs.delete(res));
      return;
    }
    if (p === '/api/v1/streams' && req.method === 'POST') {
      let body = '';
      for await (const c of req) body += c;
      const want = JSON.parse(body);
      if (streams.has(want.name)) return json(res, 409, { error: { code: 'already_exists', message: `stream ${want.name} exists` } });
      streams.set(want.name, newStream(want.name, want.shards || 1, want.retention_hours || 24));
      return json(res, 201, streamInfo(streams.get(want.name)));
    }
    if (p === '/api/v1/streams') {
      return json(res, 200, { streams: [...streams.values()].map((st) => { const { shards, ...rest } = streamInfo(st); return rest; }) });
    }
    if ((m = p.match(/^\/api\/v1\/streams\/([^/]+)$/))) {
      const st = streams.get(decodeURIComponent(m[1]));
      if (!st) return notFound(res, 'stream');
      if (req.method === 'DELETE') { streams.delete(st.name); res.writeHead(204); return res.end(); }
      return json(res, 200, streamInfo(st));
    }
    if ((m = p.match(/^\/api\/v1\/streams\/([^/]+)\/records$/))) {
      const st = streams.get(decodeURIComponent(m[1]));
      if (!st) return notFound(res, 'stream');
      if (req.method === 'POST') {
        let body = '';
        for await (const c of req) body += c;
        const out = JSON.parse(body).records.map((r) => {
          const sh = st.shards[[...r.key].reduce((a, c) => a + c.charCodeAt(0), 0) % st.shards.length];
          sh.records.push({ sequence_number: '49' + String(sh.records.length + 1).padStart(18, '0'), position: sh.records.length + 1, key: r.key,
            arrival: new Date().toISOString(), data: r.json !== undefined ? JSON.stringify(r.json) : r.data });
          return { shard: sh.id, sequence_number: sh.records.at(-1).sequence_number, position: sh.records.length };
        });
        return json(res, 200, { records: out });
      }
      const sh = st.shards.find((x) => x.id === url.searchParams.get('shard'));
      if (!sh) return notFound(res, 'shard');
      if (st.name === 'clicks') fillClicks(sh);
      const pos = Math.max(1, Number(url.searchParams.get('position') || 1));
      const recs = sh.records.slice(pos - 1, pos - 1 + Number(url.searchParams.get('limit') || 10000));
      return json(res, 200, { shard: sh.id, records: recs, next_position: pos + recs.length, millis_behind_latest: 0 });
    }
    notFound(res, p);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    async close() {
      clearInterval(tick);
      for (const j of jobs.values()) for (const s of j.subs) s.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
