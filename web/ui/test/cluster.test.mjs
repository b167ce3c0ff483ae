// Unit tests of the cluster panel's rows (src/cluster.js), from a status
// shaped as GET /api/v1/jobs/{id}/cluster answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterRows } from '../src/cluster.js';

const status = {
  job: 'page-views', group: 'runnel-job.page-views', state: 'Stable', lag: 3,
  workers: [
    { id: 's1', host: '10.0.0.1', tasks: [{ stage: 0, topic: 'clicks', partition: 0 }, { stage: 1, topic: 'page-views.per-page.repartition', partition: 1 }] },
    { id: 'w2', host: '10.0.0.2', tasks: [{ stage: 0, topic: 'clicks', partition: 1 }], failures: [
      { kind: 'snapshot_upload', at: '2026-12-06T10:00:01.000Z', task: 'pv.per-page.repartition/1', text: 'snapshot upload to bucket snaps key k failed: connection refused' },
      { kind: 'local_state', at: '2026-12-06T10:00:03.000Z', text: 'local state in /d does not open: corrupt' },
    ] },
  ],
  partitions: [
    { stage: 0, topic: 'clicks', partition: 0, worker: 's1', committed: 10, end: 13, lag: 3 },
    { stage: 0, topic: 'clicks', partition: 1, worker: '', committed: -1, end: -1, lag: -1, error: 'no offsets known yet' },
  ],
  rebalances: [
    { generation: 1, at: '2026-12-06T10:00:00Z', before: [], after: ['s1'] },
    { generation: 2, at: '2026-12-06T10:00:05Z', before: ['s1'], after: ['s1', 'w2'] },
  ],
};

test('workers list their tasks by stage and partition', () => {
  const r = clusterRows(status);
  assert.deepEqual(r.workers.map((w) => w.id), ['s1', 'w2']);
  assert.deepEqual(r.workers[0].tasks, ['stage 0: clicks/0', 'stage 1: page-views.per-page.repartition/1']);
});

test('partitions show lag, and unknown offsets as unknown, not 0', () => {
  const r = clusterRows(status);
  assert.equal(r.partitions[0].lag, '3');
  assert.equal(r.partitions[1].lag, '?');
  assert.equal(r.partitions[1].committed, '–');
  assert.equal(r.partitions[1].worker, '(none)');
  assert.equal(r.partitions[1].error, 'no offsets known yet');
});

test('rebalances are newest first with the workers before and after', () => {
  const r = clusterRows(status);
  assert.deepEqual(r.rebalances.map((b) => b.generation), [2, 1]);
  assert.equal(r.rebalances[0].before, 's1');
  assert.equal(r.rebalances[0].after, 's1, w2');
  assert.equal(r.rebalances[1].before, '–');
});

test('failures are counted per worker and listed newest first with their worker, kind, task and text', () => {
  const r = clusterRows(status);
  assert.deepEqual(r.workers.map((w) => w.failures), [0, 2]);
  assert.deepEqual(r.failures.map((f) => [f.worker, f.kind, f.task]), [['w2', 'local_state', '–'], ['w2', 'snapshot_upload', 'pv.per-page.repartition/1']]);
  assert.match(r.failures[1].text, /bucket snaps/);
});

test('an empty status gives empty tables', () => {
  const r = clusterRows({});
  assert.deepEqual([r.workers, r.partitions, r.rebalances, r.failures], [[], [], [], []]);
});
