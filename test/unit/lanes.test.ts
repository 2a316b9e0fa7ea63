/** A lane's parts get the topology's batch and triton settings as configured (topology/lanes.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLane } from '../../src/topology/lanes.js';
import { parseTopology } from '../../src/config/load.js';
import { OutputStage } from '../../src/sinks/output.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { BatcherOptions } from '../../src/batch/batcher.js';
import type { InferStageOptions } from '../../src/infer/stage.js';
import type { ModelSpec } from '../../src/infer/triton/model.js';
import type { TritonPool } from '../../src/infer/triton/pool.js';

const spec: ModelSpec = { name: 'm', version: '1', requestVersion: '', inputName: 'FRAME', inputDatatype: 'UINT8', elementBytes: 1, height: 8, width: 8, clipFrames: 0, maxBatchSize: 16, outputName: 'SCORES', classes: 2 };

/** A lane of `m` under these `batch` and `triton` sections; the options its batcher and stage were built with. */
function lane(batch: string, triton: string): { batcher: BatcherOptions; stage: InferStageOptions } {
  const t = parseTopology(`sources: [{ type: kafka }]\nmodels: [{ name: m }]\nsinks: [{ type: websocket }]\nbatch: ${batch}\ntriton: ${triton}\n`, 't.yaml');
  const metrics = new Metrics();
  const l = buildLane({ spec, model: t.models[0]!, topology: t, pool: {} as TritonPool, ring: undefined, output: new OutputStage([], metrics), drops: { drop() {} }, metrics, published() {} });
  // The options are private to each part; reading them is the point of this test.
  return { batcher: (l.batcher as unknown as { o: BatcherOptions }).o, stage: (l.stage as unknown as { o: InferStageOptions }).o };
}

test('every batch and triton setting reaches the batcher and the infer stage (none left at its default)', () => {
  const { batcher, stage } = lane(
    '{ maxBatchSize: 4, maxWaitMs: 7, mode: replay, streamQueueFrames: 5, queueFrames: 50, marginMs: 3, fairShares: false, maxInflight: 3, publishBacklogBatches: 1 }',
    '{ timeoutMs: 1234, retries: 5, priority: 2, deadlineTimeout: true }',
  );
  const { maxBatch, maxWaitMs, mode, streamQueueFrames, queueFrames, marginMs, fairShares } = batcher;
  assert.deepEqual({ maxBatch, maxWaitMs, mode, streamQueueFrames, queueFrames, marginMs, fairShares }, { maxBatch: 4, maxWaitMs: 7, mode: 'replay', streamQueueFrames: 5, queueFrames: 50, marginMs: 3, fairShares: false });
  const { maxInflight, publishBacklogBatches, timeoutMs, retries, priority, deadlineTimeout } = stage;
  // Replay has no deadlines: no Triton timeout from them, whatever triton.deadlineTimeout says.
  assert.deepEqual({ maxInflight, publishBacklogBatches, timeoutMs, retries, priority, deadlineTimeout }, { maxInflight: 3, publishBacklogBatches: 1, timeoutMs: 1234, retries: 5, priority: 2, deadlineTimeout: false });
});

test("the batch size is the model's when the topology sets none or a larger one; deadline timeouts in live mode", () => {
  assert.equal(lane('{ mode: live }', '{ deadlineTimeout: true }').batcher.maxBatch, 16);
  assert.equal(lane('{ maxBatchSize: 64 }', '{}').batcher.maxBatch, 16);
  assert.equal(lane('{ mode: live }', '{ deadlineTimeout: true }').stage.deadlineTimeout, true);
  assert.equal(lane('{ mode: live }', '{ deadlineTimeout: false }').stage.deadlineTimeout, false);
});
