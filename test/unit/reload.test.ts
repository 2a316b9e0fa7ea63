/**
 * Topology reload decisions (src/topology/reload.ts) with a fake Triton: which changes switch a
 * lane, which are refused, and that a refused reload changes nothing, not even the lanes that
 * could have switched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTopology } from '../../src/config/load.js';
import { FramewireError } from '../../src/core/errors.js';
import type { ModelSpec } from '../../src/infer/triton/model.js';
import type { ModelRef, TritonPool } from '../../src/infer/triton/pool.js';
import type { InferStage } from '../../src/infer/stage.js';
import { ModelReloader, type ReloadableLane } from '../../src/topology/reload.js';

/** What the fake Triton serves: name → versions loaded, input size. */
const SERVED: Record<string, { versions: string[]; size: number }> = {
  open_nsfw: { versions: ['1'], size: 224 },
  open_nsfw_int8: { versions: ['1'], size: 224 },
  colour_probe: { versions: ['1', '2'], size: 224 },
  colour_clip: { versions: ['1'], size: 64 },
};

function fakePool(): { pool: TritonPool; setModels: ModelRef[][] } {
  const setModels: ModelRef[][] = [];
  const client = {
    url: 'fake:8001',
    modelReady: async (name: string, version = '') => !!SERVED[name] && (version === '' || SERVED[name]!.versions.includes(version)),
    modelMetadata: async (name: string) => {
      const s = SERVED[name]!;
      return { name, versions: s.versions, platform: 'python', inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [-1, s.size, s.size, 3] }], outputs: [{ name: 'SCORES', datatype: 'FP32', shape: [-1, 2] }] };
    },
    modelConfig: async () => ({ max_batch_size: 32, output: [{ name: 'SCORES', label_filename: 'labels.txt' }] }),
  };
  const pool = { primary: client, setModels: (m: ModelRef[]) => setModels.push(m) } as unknown as TritonPool;
  return { pool, setModels };
}

function spec(name: string, version = '1', size = 224): ModelSpec {
  return { name, version, requestVersion: '', inputName: 'FRAME', inputDatatype: 'UINT8', elementBytes: 1, height: size, width: size, clipFrames: 0, maxBatchSize: 32, outputName: 'SCORES', classes: 2 };
}

/** A lane whose stage records what it was switched to. */
function lane(initial: ModelSpec): ReloadableLane & { switches: string[] } {
  let current = initial;
  const switches: string[] = [];
  const stage = {
    get spec() {
      return current;
    },
    switchModel(s: ModelSpec, topK: number) {
      current = s;
      switches.push(`${s.name}@${s.requestVersion || 'latest'}/${s.version} top${topK}`);
    },
  } as unknown as InferStage;
  const setShadow = (_primary: ModelSpec, spec: ModelSpec | undefined) => {
    switches.push(`shadow ${spec ? spec.name : 'none'}`);
  };
  return { stage, switches, setShadow };
}

function topo(models: string, extra = ''): ReturnType<typeof parseTopology> {
  return parseTopology(`sources: [{ type: kafka }]\nsinks: [{ type: kafka }]\nmodels: ${models}\n${extra}`, 'topo.yaml');
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FramewireError);
    assert.equal(err.code, 'TOPOLOGY_INVALID');
    return err.message;
  }
  assert.fail('expected the reload to be refused');
}

test('a new name or version switches the lane, and the health checks ask for the new model', async () => {
  const { pool, setModels } = fakePool();
  const l = lane(spec('open_nsfw'));
  const r = new ModelReloader(topo('[{ name: open_nsfw }]'), [l], pool);
  const res = await r.reload(topo('[{ name: open_nsfw_int8, version: 1 }]'));
  assert.deepEqual(res, { switched: ['open_nsfw v1 -> open_nsfw_int8 v1'], ignored: [] });
  assert.deepEqual(l.switches, ['open_nsfw_int8@1/1 top3']);
  assert.deepEqual(setModels, [[{ name: 'open_nsfw_int8', version: '1' }]]);
  // Unpinned: Triton's latest; then pinned to an older version of the same model.
  const l2 = lane(spec('colour_probe', '2'));
  const r2 = new ModelReloader(topo('[{ name: colour_probe }]'), [l2], pool);
  assert.deepEqual((await r2.reload(topo('[{ name: colour_probe, version: 1 }]'))).switched, ['colour_probe v2 -> colour_probe v1']);
  assert.deepEqual(l2.switches, ['colour_probe@1/1 top3']);
});

test('nothing changed: no lane switches; another section changed: reported as needing a restart', async () => {
  const { pool, setModels } = fakePool();
  const l = lane(spec('open_nsfw'));
  const r = new ModelReloader(topo('[{ name: open_nsfw }]'), [l], pool);
  assert.deepEqual(await r.reload(topo('[{ name: open_nsfw }]')), { switched: [], ignored: [] });
  const res = await r.reload(topo('[{ name: open_nsfw, topK: 1 }]', 'latency: { budgetMs: 900 }'));
  assert.deepEqual(res.ignored, ['latency']);
  assert.deepEqual(l.switches, ['open_nsfw@latest/1 top1'], 'topK alone is applied');
  assert.equal(setModels.length, 2);
});

test('refused reloads name the field and change nothing, not even the lanes that could switch', async () => {
  const { pool, setModels } = fakePool();
  const a = lane(spec('open_nsfw'));
  const b = lane(spec('colour_probe', '2'));
  const running = topo('[{ name: open_nsfw, streams: "^a" }, { name: colour_probe }]');
  const r = new ModelReloader(running, [a, b], pool);
  assert.match(await refusal(r.reload(topo('[{ name: open_nsfw_int8, streams: "^a" }, { name: no_such_model }]'))), /models\[1\]: model 'no_such_model' is not ready/);
  assert.match(await refusal(r.reload(topo('[{ name: open_nsfw_int8, streams: "^a" }, { name: colour_probe, version: 7 }]'))), /models\[1\]: model 'colour_probe' version 7 is not ready/);
  assert.match(await refusal(r.reload(topo('[{ name: open_nsfw_int8, streams: "^a" }, { name: colour_clip }]'))), /models\[1\]: model 'colour_clip' takes UINT8 64x64, the running lane feeds UINT8 224x224/);
  assert.match(await refusal(r.reload(topo('[{ name: open_nsfw_int8, streams: "^b" }, { name: colour_probe }]'))), /models\[0\]\.streams changed/);
  assert.match(await refusal(r.reload(topo('[{ name: open_nsfw_int8 }]'))), /1 models, the running pipeline has 2/);
  assert.deepEqual([a.switches, b.switches, setModels], [[], [], []], 'no lane moved, the health checks unchanged');
  // The refusals left the running state as it was: a valid reload afterwards still applies.
  assert.deepEqual((await r.reload(topo('[{ name: open_nsfw_int8, streams: "^a" }, { name: colour_probe }]'))).switched, ['open_nsfw v1 -> open_nsfw_int8 v1']);
});

test('promotion: swapping a model and its shadow switches the lane and gives it the former primary as its shadow', async () => {
  const { pool } = fakePool();
  const l = lane(spec('open_nsfw'));
  const r = new ModelReloader(topo('[{ name: open_nsfw, shadow: { name: open_nsfw_int8 } }]'), [l], pool);
  const res = await r.reload(topo('[{ name: open_nsfw_int8, shadow: { name: open_nsfw } }]'));
  assert.deepEqual(res.switched, ['open_nsfw v1 -> open_nsfw_int8 v1', 'shadow of open_nsfw_int8 -> open_nsfw v1']);
  assert.deepEqual(l.switches, ['open_nsfw_int8@latest/1 top3', 'shadow open_nsfw'], 'the primary first, then its shadow');
  // A shadow that does not take the primary's input is refused, and nothing changes.
  const msg = await refusal(r.reload(topo('[{ name: open_nsfw_int8, shadow: { name: colour_clip } }]')));
  assert.match(msg, /models\[0\]\.shadow\.name: .*colour_clip/);
  assert.equal(l.switches.length, 2);
  assert.deepEqual((await r.reload(topo('[{ name: open_nsfw_int8 }]'))).switched, ['shadow of open_nsfw_int8 removed']);
});

test('automatic promotion (promoteWhen) is the same swap, the old primary shadowing without the condition, so it never swaps back by itself', async () => {
  const { pool } = fakePool();
  const l = lane(spec('open_nsfw'));
  const shadows: unknown[] = [];
  const setShadow = l.setShadow;
  l.setShadow = (p, s, c) => {
    shadows.push(c);
    setShadow(p, s, c);
  };
  const applied: string[] = [];
  const running = topo('[{ name: open_nsfw, topK: 2, shadow: { name: open_nsfw_int8, sample: 0.5, promoteWhen: { agreement: 0.99, frames: 100 } } }]');
  const r = new ModelReloader(running, [l], pool, (now) => applied.push(JSON.stringify(now.models)));
  const res = await r.promote(0);
  assert.deepEqual(res.switched, ['open_nsfw v1 -> open_nsfw_int8 v1', 'shadow of open_nsfw_int8 -> open_nsfw v1']);
  assert.deepEqual(l.switches, ['open_nsfw_int8@latest/1 top2', 'shadow open_nsfw'], 'topK kept');
  assert.deepEqual(shadows, [{ name: 'open_nsfw', version: undefined, sample: 0.5, window: 5000, reportIntervalMs: 10_000 }], 'the same sampling, no promoteWhen');
  assert.equal(applied.length, 1, 'the running topology (and so the records\' hash) is the promoted one');
  // Promoting again swaps back only because it was asked to; a reload of the file as it was does too.
  assert.deepEqual((await r.reload(running)).switched, ['open_nsfw_int8 v1 -> open_nsfw v1', 'shadow of open_nsfw -> open_nsfw_int8 v1']);
  // A promotion asked for by a report of models the lane no longer runs (a reload came first): refused.
  const before = l.switches.length;
  assert.match(await refusal(r.promote(0, { model: 'open_nsfw_int8', shadow: 'open_nsfw' })), /models\[0\]: the lane runs open_nsfw with shadow open_nsfw_int8 since a reload/);
  assert.equal(l.switches.length, before);
  // A lane without a shadow has nothing to promote: refused, nothing changes.
  const bare = lane(spec('open_nsfw'));
  const r2 = new ModelReloader(topo('[{ name: open_nsfw }]'), [bare], pool);
  assert.match(await refusal(r2.promote(0)), /models\[0\]\.shadow: the lane has no shadow/);
  assert.deepEqual(bare.switches, []);
});
