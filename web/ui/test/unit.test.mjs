// Unit tests of the UI's logic that needs no browser: the bounded results
// store and how validation problems are read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Table, vectorFromArray, Utf8, Int64, Float64, Bool, TimestampMillisecond } from 'apache-arrow';
import { Store, MAX_POINTS, MAX_KEYS, TABLE_ROWS, orderColumns } from '../src/store.js';
import { problemsOf } from '../src/problems.js';
import { cellText } from '../src/cells.js';
import { fmtCount, restartingText } from '../src/api.js';
import { resultTable } from './fake.mjs';

function batch(rows) {
  return new Table({
    views: vectorFromArray(rows.map((r) => BigInt(r.views)), new Int64()),
    key: vectorFromArray(rows.map((r) => r.key), new Utf8()),
    window_end: vectorFromArray(rows.map((r) => r.end), new TimestampMillisecond('UTC')),
    p95_ms: vectorFromArray(rows.map((r) => r.p95 ?? null), new Float64()),
    is_anomaly: vectorFromArray(rows.map((r) => !!r.anomaly), new Bool()),
  }).batches[0];
}

test('rows become per-key series in window order, numbers as numbers', () => {
  const s = new Store();
  s.ingest(batch([{ key: 'a', end: 5000, views: 3, p95: 1.5 }, { key: 'b', end: 5000, views: 7 }]));
  s.ingest(batch([{ key: 'a', end: 10000, views: 4, anomaly: true }]));
  assert.deepEqual(s.numeric, ['views', 'p95_ms']);
  assert.deepEqual(s.columns, ['window_end', 'key', 'views', 'p95_ms', 'is_anomaly']);
  const { data, marks } = s.series(['a', 'b'], 'views');
  assert.deepEqual(data, [[5, 10], [3, 4], [7, null]]);
  assert.deepEqual(marks, [[1, 1]]);
  assert.equal(s.anomalies, 1);
  assert.deepEqual(s.rows.at(-1), { views: 4, key: 'a', window_end: 10000, p95_ms: null, is_anomaly: true });
});

test('memory is bounded: points per key, keys, table rows', () => {
  const s = new Store();
  for (let w = 1; w <= MAX_POINTS * 3; w++) s.ingest(batch([{ key: 'k', end: w * 1000, views: w }]));
  const k = s.keys.get('k');
  assert.ok(k.t.length <= MAX_POINTS * 1.25, `${k.t.length} points kept`);
  assert.equal(k.t.at(-1), MAX_POINTS * 3 * 1000, 'the newest window is kept');
  assert.equal(k.v.get('views').length, k.t.length);
  assert.ok(s.rows.length <= TABLE_ROWS * 2);
  const many = [];
  for (let i = 0; i < MAX_KEYS + 50; i++) many.push({ key: `k${i}`, end: 1e6, views: i });
  s.ingest(batch(many));
  assert.equal(s.keys.size, MAX_KEYS);
  assert.ok(!s.keys.has('k'), 'the least recently updated key is evicted first');
  assert.ok(s.keys.has(`k${MAX_KEYS + 49}`));
});

test('top keys: highest recent mean, among keys still updating, sorted by name', () => {
  const s = new Store();
  for (let w = 1; w <= 5; w++) {
    s.ingest(batch([
      { key: 'low', end: w * 1000, views: 1 }, { key: 'mid', end: w * 1000, views: 50 },
      { key: 'high', end: w * 1000, views: 100 }, { key: 'spiky', end: w * 1000, views: w === 5 ? 90 : 2 },
    ]));
  }
  s.ingest(batch([{ key: 'gone', end: 1000, views: 1000 }]));
  assert.deepEqual(s.topKeys('views', 2), ['high', 'mid']);
  assert.deepEqual(s.topKeys('views', 3), ['high', 'mid', 'spiky']);
});

test('the dashboard schema: timestamps in ms, detect columns last', () => {
  const s = new Store();
  s.ingest(resultTable(4, 60000, 5000, (i) => i === 2).batches[0]);
  assert.deepEqual(s.columns.slice(0, 3), ['window_start', 'window_end', 'key']);
  assert.deepEqual(s.columns.slice(-6), ['is_anomaly', 'anomaly_score', 'expected', 'expected_low', 'expected_high', 'explanation']);
  assert.equal(s.detectField, 'views', 'the scored aggregate is read from the explanation');
  const { data } = s.series(['/page/1', '/page/2'], 'views', '/page/2');
  assert.equal(data.length, 5, 'x, two keys, and the expected low and high of the band key');
  assert.deepEqual([data[3][0], data[4][0]], [(100 + 14) * 0.8, (100 + 14) * 1.2]);
  assert.deepEqual(s.numeric, ['views', 'p95_ms']);
  assert.equal(s.rows[0].window_start, 55000);
  assert.equal(s.anomalies, 1);
  assert.deepEqual(orderColumns(['explanation', 'x', 'key', 'window_end', 'y']), ['window_end', 'key', 'x', 'y', 'explanation']);
});

test('validation problems keep their line and say where in a snippet', () => {
  const err = { message: 'bad', detail: { code: 'invalid_job', message: 'two problems', problems: [
    { line: 8, column: 13, field: 'operators[0].filter', code: 'js_syntax', message: 'JS syntax error', hint: 'check brackets', operator: 'humans', js_line: 1, js_column: 31 },
    { line: 12, field: 'operators[1].window.tumbling', code: 'invalid_duration', message: 'operators[1].window.tumbling: "5x" is not a duration' },
  ] } };
  assert.deepEqual(problemsOf(err), [
    { line: 8, column: 13, code: 'js_syntax', message: 'operators[0].filter: JS syntax error (operator humans, snippet line 1:31) — check brackets' },
    { line: 12, column: 0, code: 'invalid_duration', message: 'operators[1].window.tumbling: "5x" is not a duration' },
  ]);
  assert.deepEqual(problemsOf({ message: 'HTTP 500', detail: {} }), [{ line: 0, column: 0, code: undefined, message: 'HTTP 500' }]);
});

test('a job file\'s parallelism is its source\'s shards: read, replaced, or added', async () => {
  const { parallelismOf, withParallelism } = await import('../src/jobfile.js');
  const block = 'name: a\nsource:\n  stream: clicks\n  shards: 3 # created with\n  start: latest\noperators: []\n';
  assert.equal(parallelismOf(block), 3);
  assert.equal(withParallelism(block, 8), block.replace('shards: 3', 'shards: 8'));
  const none = 'name: a\nsource:\n  # the input\n  generator: {rate: 5}\n  event_time: "r => r.ts"\nsinks: []\n';
  assert.equal(parallelismOf(none), null);
  assert.equal(withParallelism(none, 2), 'name: a\nsource:\n  shards: 2\n  # the input\n  generator: {rate: 5}\n  event_time: "r => r.ts"\nsinks: []\n');
  assert.equal(parallelismOf('name: a\nsource:\n  generator: {rate: 5, shards: 9}\n'), null, 'a nested shards is not the source\'s');
  assert.equal(withParallelism('name: a\nsource: {stream: s}\n', 4), 'name: a\nsource: {stream: s, shards: 4}\n');
  assert.equal(withParallelism('name: a\nsource: {stream: s, shards: 2}\n', 4), 'name: a\nsource: {stream: s, shards: 4}\n');
  assert.equal(parallelismOf('name: a\nsource: {stream: s, shards: 2}\n'), 2);
  assert.equal(withParallelism('name: a\n', 4), 'name: a\n', 'no source, no change');
});

test('history points become one line per operator, shard, or one line', async () => {
  const { seriesOf } = await import('../src/history.js');
  const { history } = await import('./fake.mjs');
  const points = history(3, ['source', 'per-page'], true).points;
  const xs = points.map((p) => Date.parse(p.time) / 1000);
  const ins = seriesOf(points, { each: 'ops', get: (o) => o.in_per_s });
  assert.deepEqual(ins.labels, ['source', 'per-page']);
  assert.deepEqual(ins.data[0], xs);
  assert.deepEqual(ins.data[1], points.map((p) => p.operators.source.in_per_s));
  // State size: only operators that keep state get a line.
  const state = seriesOf(points, { each: 'ops', get: (o) => o.state_bytes, stateful: true });
  assert.deepEqual(state.labels, ['per-page']);
  const lag = seriesOf(points, { each: 'one', title: 'Watermark lag', get: (p) => p.watermark_lag_ms });
  assert.deepEqual(lag.data.slice(1), [points.map((p) => p.watermark_lag_ms)]);
  const shards = seriesOf(points, { each: 'shards', get: (s) => s.in_per_s });
  assert.deepEqual(shards.labels, ['shardId-000000000000', 'shardId-000000000001']);
  // An operator that appears later has nulls before it, not zeros.
  const late = seriesOf([{ time: points[0].time, operators: {} }, points[1]], { each: 'ops', get: (o) => o.in_per_s });
  assert.deepEqual(late.data[1], [null, points[1].operators.source.in_per_s]);
});

// A chart's time axis reads like every other time of the UI: UTC, 24-hour
// (uPlot's own tick labels are 12-hour, `1:34pm`).
test('units: chart time axes are labelled in UTC, 24-hour, and span a minute at least', async () => {
  const { axisClock } = await import('../src/api.js');
  const t = Date.UTC(2026, 11, 7, 13, 34, 5) / 1000;
  assert.deepEqual(axisClock(null, [t, t + 5, null]), ['13:34:05', '13:34:10', '']);
  assert.deepEqual(axisClock(null, [t - 5, t + 55]), ['13:34', '13:35'], 'ticks on whole minutes drop the seconds');
  // One point (a job that failed at once) spans a minute, not years.
  const { spanAtLeast } = await import('../src/api.js');
  // (uPlot passes one point's range as 1000 days from it)
  assert.deepEqual(spanAtLeast(60)({ data: [[t]] }, t, t + 86400000), [t - 60, t]);
  assert.deepEqual(spanAtLeast(60)({ data: [[t - 600, t - 300, t]] }, t - 600, t), [t - 600, t]);
  assert.deepEqual(spanAtLeast(60)({ data: [[]] }, null, null), [null, null]);
});

test('units: rates, durations, pretty JSON, dead letters', async () => {
  const { fmtRate, fmtDuration, pretty } = await import('../src/api.js');
  const { deadLetterOf } = await import('../src/streams.js');
  assert.equal(fmtRate(2000), '2000 rec/s');
  assert.equal(fmtRate(12500), '12.5k rec/s');
  assert.equal(fmtRate(0.333), '0.33 rec/s');
  assert.equal(fmtRate(null), '–');
  assert.equal(fmtDuration(59), '59s');
  assert.equal(fmtDuration(3725), '1h02m');
  assert.equal(fmtDuration(2 * 86400 + 4 * 3600), '2d04h');
  assert.equal(pretty('{"a":1}'), '{\n  "a": 1\n}');
  assert.equal(pretty('not json'), 'not json');
  const dl = { error: 'TypeError: x', job: 'j', operator: 'parse', origin: 'clicks/shardId-000000000000@49', record: { a: 1 } };
  assert.deepEqual(deadLetterOf(JSON.stringify(dl)), dl);
  assert.equal(deadLetterOf('{"error": "x"}'), null, 'an object with an error field only is not a dead letter');
  assert.equal(deadLetterOf('plain'), null);
});

test('cells: structs as k: v pairs, lists in brackets, explanations as field direction z', () => {
  const cases = [
    [null, ''],
    [3, '3'],
    [2.5, '2.500'],
    [7n, '7'],
    [true, 'true'],
    ['plain text', 'plain text'],
    [{ field: 'views', direction: 'high', z: 18.9 }, 'views high z 18.9'],
    [{ field: 'p95_ms', direction: 'low', z: -3.25 }, 'p95_ms low z -3.25'],
    [{ field: 'views', direction: '', z: 0 }, 'views z 0'],
    [{ field: 'views', direction: 'high' }, 'views high'],
    // What servers sent before the struct column: a JSON string.
    ['{"field":"views","direction":"high","z":4.123456}', 'views high z 4.123'],
    // A struct that merely has a field and a direction is a struct.
    [{ field: 'a', direction: 'b', other: 1 }, 'field: a, direction: b, other: 1'],
    [{ a: 1, b: null, c: [1, 2.25], d: { e: 'x' } }, 'a: 1, b: null, c: [1, 2.25], d: {e: x}'],
    [[], '[]'],
    [['a', 'b'], '[a, b]'],
    [new Int32Array([1, 2]), '[1, 2]'],
    [{ a: { b: { c: { d: { e: 1 } } } } }, 'a: {b: {c: {d: …}}}'],
  ];
  for (const [v, want] of cases) assert.equal(cellText(v), want, JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? String(x) : x)));
});

test('cells: arrow struct and list values from a record batch', () => {
  const s = new Store();
  s.ingest(resultTable(2, 60000, 5000, (i) => i === 1, { structs: true }).batches[0]);
  assert.deepEqual(s.numeric, ['views', 'p95_ms'], 'struct and list columns are not aggregates');
  const [a, b] = s.rows;
  assert.equal(cellText(a.explanation), 'views low z -0.4');
  assert.equal(cellText(b.explanation), 'views high z 18.9');
  assert.equal(cellText(b.source), 'shard: shardId-000000000001, lag_ms: 1, pos: {x: 1.5, y: 1}, hops: [edge, core]');
  assert.equal(cellText(a.tags), '[]');
  assert.equal(cellText(b.tags), '[odd, k1]');
});

test('counts are said in the singular for one: 1 open shard, 2 open shards', () => {
  assert.equal(fmtCount(1, 'open shard'), '1 open shard');
  assert.equal(fmtCount(2, 'open shard'), '2 open shards');
  assert.equal(fmtCount(0, 'error'), '0 errors');
  assert.equal(fmtCount(1, 'anomaly', 'anomalies'), '1 anomaly');
  assert.equal(fmtCount(3, 'anomaly', 'anomalies'), '3 anomalies');
  assert.equal(fmtCount(12500, 'record'), '12.5k records');
});

test('restartingText says the attempt and its time in UTC, nothing without a restart', () => {
  assert.equal(restartingText(undefined), '');
  assert.equal(restartingText(null), '');
  assert.equal(restartingText({ attempt: 2, attempts: 10, next_attempt_at: '2026-12-07T17:01:02.345Z' }),
    ' — restarting: attempt 2 of 10 at 2026-12-07 17:01:02Z');
});
