// Unit tests of how the job graph reads the server's operator counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statsByNode, nodesOf, operatorsOf } from '../src/graph.js';

test('a fused chain gives each stage its own counters', () => {
  const ops = [
    { ID: 'source', Kind: 'source', In: 0, Out: 100 },
    { ID: 'parse', Kind: 'operator', In: 100, Out: 90, Errors: 1, Skipped: 2, Stages: [
      { Operator: 'parse', Errors: 1, Skipped: 0, DeadLettered: 0 },
      { Operator: 'humans', Errors: 0, Skipped: 2, DeadLettered: 3 }] },
    { ID: 'per-page', Kind: 'operator', In: 90, Out: 4, Stages: null },
  ];
  const m = statsByNode(ops);
  assert.deepEqual([...m.keys()], ['source', 'parse', 'humans', 'per-page']);
  assert.equal(m.get('parse').In, 100);
  assert.equal(m.get('parse').Out, undefined, 'the first stage output is inside the task');
  assert.equal(m.get('humans').In, undefined);
  assert.equal(m.get('humans').Out, 90);
  assert.equal(m.get('humans').Skipped, 2);
  assert.equal(m.get('humans').DeadLettered, 3);
  assert.deepEqual(m.get('humans').fusedWith, ['parse', 'humans']);
  assert.equal(m.get('per-page'), ops[2]);
});

test('without a graph from the server, the operators form a chain', () => {
  assert.deepEqual(nodesOf({ operators: [{ ID: 'a', Kind: 'source' }, { ID: 'b', Kind: 'operator' }] }),
    [{ id: 'a', kind: 'source', inputs: [] }, { id: 'b', kind: 'operator', inputs: ['a'] }]);
  assert.deepEqual(nodesOf({ graph: [{ id: 's', kind: 'generator' }, { id: 'm', kind: 'map', inputs: ['s'] }] }),
    [{ id: 's', kind: 'generator', inputs: [] }, { id: 'm', kind: 'map', inputs: ['s'] }]);
});

test('operator counters are read in snake_case or Go field names alike', () => {
  const snake = { operators: [{ id: 'parse', kind: 'operator', in: 10, out: 9, errors: 1, skipped: 2, dead_lettered: 3, late: 4,
    stages: [{ operator: 'parse', errors: 1, skipped: 0, dead_lettered: 0 }, { operator: 'humans', errors: 0, skipped: 2, dead_lettered: 3 }] }] };
  const goNames = { operators: [{ ID: 'parse', Kind: 'operator', In: 10, Out: 9, Errors: 1, Skipped: 2, DeadLettered: 3, Late: 4,
    Stages: [{ Operator: 'parse', Errors: 1, Skipped: 0, DeadLettered: 0 }, { Operator: 'humans', Errors: 0, Skipped: 2, DeadLettered: 3 }] }] };
  assert.deepEqual(operatorsOf(snake), operatorsOf(goNames));
  const [o] = operatorsOf(snake);
  assert.equal(o.DeadLettered, 3);
  assert.equal(o.Stages[1].Operator, 'humans');
  assert.deepEqual([...statsByNode(operatorsOf(snake)).keys()], ['parse', 'humans']);
});
