// An in-process fake of Runnel's REST API (the parts the UI reads), for
// browser tests that must not depend on the job runtime being landed, and
// for the performance script, whose load (keys, batches per second) it sets.
// It serves the built UI too. Results are real Arrow IPC streams written
// with apache-arrow, shaped as the dashboard sink's: window_start,
// window_end (timestamp[ms, UTC]), key, aggregates, then the detect columns.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, extname } from 'node:path';
import {
  Table, vectorFromArray, tableToIPC, Utf8, Int64, Float64, Bool, TimestampMillisecond, Struct, Field,
} from 'apache-arrow';

const EXPLANATION = new Struct([new Field('direction', new Utf8(), true), new Field('field', new Utf8(), true)]);

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

// resultTable builds one batch: a row per key for the window ending at end.
export function resultTable(keys, end, sizeMs, anomalous) {
  const ks = [], starts = [], ends = [], views = [], p95 = [], score = [], anom = [], exp = [], lo = [], hi = [];
  for (let i = 0; i < keys; i++) {
    const base = 100 + i * 7;
    const spike = anomalous(i, end);
    const v = Math.round(base * (spike ? 3 : 1) + ((end / sizeMs + i) % 5));
    ks.push(`/page/${i}`); starts.push(end - sizeMs); ends.push(end);
    views.push(BigInt(v)); p95.push(20 + ((i * 13 + end / sizeMs) % 17));
    score.push(spike ? 0.97 : 0.1); anom.push(spike); exp.push(base); lo.push(base * 0.8); hi.push(base * 1.2);
  }
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
    explanation: vectorFromArray(ks.map((_, i) => ({ direction: anom[i] ? 'high' : '', field: 'views' })), EXPLANATION),
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

export async function startFake({ distDir, keys = 20, everyMs = 1000, windowMs = 5000, anomalyEvery = 7 } = {}) {
  const jobs = new Map();
  const anomalous = (i, end) => i === keys - 1 && Math.floor(end / windowMs) % anomalyEvery === 0;
  let seq = 0;
  const addJob = (name, spec) => {
    const id = `${name}-${(++seq).toString(16).padStart(4, '0')}`;
    jobs.set(id, { id, name, spec, state: 'running', created: new Date().toISOString(), born: Date.now(), subs: new Set(), retained: [] });
    return jobs.get(id);
  };
  addJob('demo', DEMO_SPEC);
  let end = Math.floor(Date.now() / windowMs) * windowMs - 60 * windowMs;
  let schema = null;
  const tick = setInterval(() => {
    end += windowMs;
    const parts = ipcParts(resultTable(keys, end, windowMs, anomalous));
    schema = parts.schema;
    for (const j of jobs.values()) {
      if (j.state !== 'running') continue;
      j.retained.push(parts.batch);
      if (j.retained.length > 50) j.retained.shift();
      for (const res of j.subs) res.write(parts.batch);
    }
  }, everyMs);

  const info = (j) => {
    const t = (Date.now() - j.born) / 1000;
    const n = Math.round(t * 2000);
    return {
      id: j.id, name: j.name, state: j.state, created: j.created, watermark: end - 2000,
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
    if ((m = p.match(/^\/api\/v1\/jobs\/([^/]+)$/))) {
      const j = jobs.get(decodeURIComponent(m[1]));
      if (!j) return notFound(res, 'job');
      if (req.method === 'DELETE') { j.state = 'stopped'; for (const s of j.subs) s.end(); j.subs.clear(); }
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
          value: { window_start: end - windowMs, window_end: end, key: `/page/${seq % keys}`, views: seq % 17 } });
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
    if (p === '/api/v1/streams') return json(res, 200, { streams: [{ name: 'clicks', status: 'ACTIVE', open_shards: 2, retention_hours: 24, created: new Date().toISOString() }] });
    if (p === '/api/v1/streams/clicks') {
      const n = Math.round(Date.now() / 10) % 1e9;
      return json(res, 200, { name: 'clicks', status: 'ACTIVE', open_shards: 2, retention_hours: 24, created: new Date().toISOString(), shards: [
        { id: 'shardId-000000000000', hash_key_start: '0', hash_key_end: '340282366920938463463374607431768211455', open: false, children: ['shardId-000000000001', 'shardId-000000000002'], trim_position: 1, last_position: 500 },
        { id: 'shardId-000000000001', parent: 'shardId-000000000000', hash_key_start: '0', hash_key_end: '170141183460469231731687303715884105727', open: true, trim_position: 1, last_position: n },
        { id: 'shardId-000000000002', parent: 'shardId-000000000000', hash_key_start: '170141183460469231731687303715884105728', hash_key_end: '340282366920938463463374607431768211455', open: true, trim_position: 1, last_position: n },
      ] });
    }
    if (p === '/api/v1/streams/clicks/records') {
      const pos = Number(url.searchParams.get('position') || 1);
      const recs = Array.from({ length: 5 }, (_, i) => ({ sequence_number: String(49e9 + pos + i), position: pos + i, key: `user-${pos + i}`, arrival: new Date().toISOString(), data: JSON.stringify({ page: '/page/1', n: pos + i }) }));
      return json(res, 200, { shard: url.searchParams.get('shard'), records: recs, next_position: pos + 5, millis_behind_latest: 0 });
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
