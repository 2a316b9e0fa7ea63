/** System shared memory with the real local Triton: round trip, fallback, cleanup after a killed run. */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TritonClient } from '../../src/infer/triton/client.js';
import { describeModel, parseClassification, frameTensorBytes, type ModelSpec } from '../../src/infer/triton/model.js';
import { ShmRing, cleanStaleRegions, SHM_DIR } from '../../src/infer/triton/shm.js';
import { TritonPool } from '../../src/infer/triton/pool.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { FramewireError } from '../../src/core/errors.js';
import { ensureStack, TRITON_URL, ROOT } from '../helpers/stack.js';
import { solidFrames } from '../helpers/frames.js';

let client: TritonClient;
let spec: ModelSpec;
before(async () => {
  ensureStack();
  client = new TritonClient({ url: TRITON_URL });
  spec = await describeModel(client, 'colour_probe');
});
after(() => client.close());

const ours = () => fs.readdirSync(SHM_DIR).filter((n) => n.startsWith(`framewire-${process.pid}-`));

test('round trip through shared memory: input from a ring slot, raw output written into the ring', async () => {
  const colours = ['blue', 'yellow', 'black'];
  const ring = new ShmRing({ tag: 'roundtrip', slots: 2, inputSlotBytes: 4 * frameTensorBytes(spec), outputSlotBytes: 4 * 8 * 4 });
  try {
    await ring.register(client);
    assert.equal(await ring.isRegistered(client), true);
    const slot = ring.acquire()!;
    assert.equal(slot, 0);
    const tensor = solidFrames(spec, colours);
    ring.writeInput(1, tensor); // the other slot too, so offsets matter
    ring.writeInput(slot, solidFrames(spec, ['white', 'white', 'white']));
    const res = await client.modelInfer(
      {
        model_name: 'colour_probe',
        id: 'shm',
        inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [3, 224, 224, 3], parameters: ring.inputParameters(1, tensor.length) }],
        outputs: [{ name: 'SCORES', parameters: ring.outputParameters(1) }],
        raw_input_contents: [],
      },
      10_000,
    );
    assert.deepEqual(res.outputs[0]!.shape, [3, 8]);
    assert.equal(res.raw_output_contents.length === 0 || res.raw_output_contents[0]!.length === 0, true, 'the output is in shared memory, not in the message');
    const scores = ring.readOutput(1, Buffer.alloc(3 * 8 * 4), 3 * 8 * 4);
    const labels = ['black', 'white', 'red', 'green', 'blue', 'yellow', 'cyan', 'magenta'];
    for (let i = 0; i < 3; i++) {
      let best = 0;
      for (let c = 1; c < 8; c++) if (scores.readFloatLE((i * 8 + c) * 4) > scores.readFloatLE((i * 8 + best) * 4)) best = c;
      assert.equal(labels[best], colours[i]);
    }
    // Classification outputs cannot use shared memory (Triton refuses both at once): inputs via
    // shm, labels in the message, which is what the pipeline does.
    const cls = await client.modelInfer(
      {
        model_name: 'colour_probe',
        inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [3, 224, 224, 3], parameters: ring.inputParameters(1, tensor.length) }],
        outputs: [{ name: 'SCORES', parameters: { ...ring.outputParameters(1), classification: { int64_param: 1 } } }],
        raw_input_contents: [],
      },
      10_000,
    ).catch((e: FramewireError) => e);
    assert.ok(cls instanceof FramewireError && cls.code === 'INFER_INVALID_ARGUMENT', 'shm + classification is refused');
    ring.release(slot);
  } finally {
    await ring.unregister(client);
    ring.close();
  }
  assert.equal(await ring.isRegistered(client), false);
  assert.deepEqual(ours(), [], 'ring files deleted');
});

test('pool with transport auto uses shared memory where Triton registers it and reports it', async () => {
  const metrics = new Metrics();
  const pool = new TritonPool({ endpoints: [TRITON_URL], models: ['colour_probe'], transport: 'auto', metrics });
  const ring = new ShmRing({ tag: 'pool', slots: 1, inputSlotBytes: 2 * frameTensorBytes(spec) });
  try {
    await pool.start();
    await pool.addRing(ring);
    assert.equal(pool.endpoints[0]!.transport, 'shm');
    const slot = ring.acquire()!;
    const data = solidFrames(spec, ['green', 'magenta']);
    ring.writeInput(slot, data);
    // `data` deliberately zeroed: only the ring holds the frames, so a correct answer proves shm was used.
    const res = await pool.infer(
      { model: 'colour_probe', id: 'p', inputName: 'FRAME', datatype: 'UINT8', shape: [2, 224, 224, 3], data: Buffer.alloc(data.length), ring, slot, outputs: [{ name: 'SCORES', parameters: { classification: { int64_param: 1 } } }] },
      10_000,
      Date.now() + 1000,
    );
    assert.deepEqual(parseClassification(res.raw_output_contents[0]!, 2, 1).map((l) => l[0]!.label), ['green', 'magenta']);
    assert.match(await metrics.registry.metrics(), /framewire_triton_transport\{endpoint="[^"]+",transport="shm"\} 1/);
  } finally {
    await pool.close();
  }
  assert.equal(await ring.isRegistered(client), false, 'unregistered on close');
  assert.deepEqual(ours(), []);
});

test('transport auto falls back to in-message tensors when Triton refuses the region; shm fails loudly', async () => {
  // Files outside /dev/shm: the key names a region Triton cannot open.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-shm-'));
  try {
    for (const transport of ['auto', 'shm'] as const) {
      const metrics = new Metrics();
      const pool = new TritonPool({ endpoints: [TRITON_URL], models: ['colour_probe'], transport, metrics });
      const ring = new ShmRing({ tag: `refused-${transport}`, slots: 1, inputSlotBytes: frameTensorBytes(spec), dir });
      try {
        await pool.start();
        if (transport === 'shm') {
          await assert.rejects(pool.addRing(ring), (err: FramewireError) => err.code === 'INFER_SHM_FAILED' && !err.retriable);
          continue;
        }
        await pool.addRing(ring);
        assert.equal(pool.endpoints[0]!.transport, 'grpc');
        assert.match(await metrics.registry.metrics(), /framewire_triton_transport\{endpoint="[^"]+",transport="grpc"\} 1/);
        const slot = ring.acquire()!;
        const data = solidFrames(spec, ['red']);
        ring.writeInput(slot, data);
        const res = await pool.infer({ model: 'colour_probe', id: 'f', inputName: 'FRAME', datatype: 'UINT8', shape: [1, 224, 224, 3], data, ring, slot, outputs: [{ name: 'SCORES', parameters: { classification: { int64_param: 1 } } }] }, 10_000, Date.now() + 1000);
        assert.equal(parseClassification(res.raw_output_contents[0]!, 1, 1)[0]![0]!.label, 'red');
      } finally {
        await pool.close();
        ring.close();
      }
    }
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('regions of a killed run are removed on the next start: files and Triton registrations', async () => {
  // A child registers a ring with Triton, reports its names, and is SIGKILLed.
  const script = path.join(os.tmpdir(), `fw-shm-child-${process.pid}.mjs`);
  fs.writeFileSync(
    script,
    `import { TritonClient } from ${JSON.stringify(path.join(ROOT, 'dist/src/infer/triton/client.js'))};
import { ShmRing } from ${JSON.stringify(path.join(ROOT, 'dist/src/infer/triton/shm.js'))};
const client = new TritonClient({ url: ${JSON.stringify(TRITON_URL)} });
const ring = new ShmRing({ tag: 'killed', slots: 2, inputSlotBytes: 1024, outputSlotBytes: 256 });
await ring.register(client);
console.log(JSON.stringify(ring.regionNames));
setInterval(() => {}, 1000);
`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const names: string[] = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out));
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(names.length, 2);
    for (const n of names) assert.ok(fs.existsSync(path.join(SHM_DIR, n)), `${n} left behind by the killed run`);
    const registered = new Set((await client.systemSharedMemoryStatus()).map((r) => r.name));
    for (const n of names) assert.ok(registered.has(n), `${n} still registered in Triton`);

    const cleaned = await cleanStaleRegions([client]);
    for (const n of names) {
      assert.ok(cleaned.files.includes(n));
      assert.ok(cleaned.registrations.includes(`${client.url}/${n}`));
      assert.equal(fs.existsSync(path.join(SHM_DIR, n)), false);
    }
    const after = new Set((await client.systemSharedMemoryStatus()).map((r) => r.name));
    for (const n of names) assert.equal(after.has(n), false);
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(script, { force: true });
  }
});

test('live regions of this run are never treated as stale', async () => {
  const ring = new ShmRing({ tag: 'live', slots: 1, inputSlotBytes: 64 });
  try {
    await ring.register(client);
    const cleaned = await cleanStaleRegions([client]);
    assert.ok(!cleaned.files.some((f) => ring.regionNames.includes(f)));
    assert.equal(await ring.isRegistered(client), true);
  } finally {
    await ring.unregister(client);
    ring.close();
  }
});

/** One classification through a ring slot; the answer shows which file Triton actually maps. */
async function classifyThroughRing(ring: ShmRing, colours: string[]): Promise<string[]> {
  const data = solidFrames(spec, colours);
  const slot = ring.acquire()!;
  try {
    ring.writeInput(slot, data);
    const res = await client.modelInfer(
      {
        model_name: 'colour_probe',
        inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [colours.length, 224, 224, 3], parameters: ring.inputParameters(slot, data.length) }],
        outputs: [{ name: 'SCORES', parameters: { classification: { int64_param: 1 } } }],
        raw_input_contents: [],
      },
      10_000,
    );
    return parseClassification(res.raw_output_contents[0]!, colours.length, 1).map((l) => l[0]!.label);
  } finally {
    ring.release(slot);
  }
}

test('a region name Triton already has (a leftover registration) is unregistered and registered again', async () => {
  // A ring whose unregistration never happened: its file is gone, Triton still maps the old pages.
  const old = new ShmRing({ tag: 'again', slots: 1, inputSlotBytes: 2 * frameTensorBytes(spec) });
  const again = () => new ShmRing({ tag: 'again', slots: 1, inputSlotBytes: 2 * frameTensorBytes(spec) });
  let ring: ShmRing | undefined;
  try {
    await old.register(client);
    assert.deepEqual(await classifyThroughRing(old, ['cyan', 'cyan']), ['cyan', 'cyan']);
    old.close();
    const name = old.input.name;
    assert.ok((await client.systemSharedMemoryStatus(name)).some((r) => r.name === name), 'the leftover registration is there');
    // Triton refuses the same name outright...
    await assert.rejects(client.systemSharedMemoryRegister(name, old.input.key, old.input.byteSize), /ALREADY_EXISTS|already in manager/);

    // ...and a new ring under it recovers: same name, new file, and Triton reads the new file.
    ring = again();
    assert.equal(ring.input.name, name);
    await ring.register(client);
    assert.equal(await ring.isRegistered(client), true);
    assert.deepEqual(await classifyThroughRing(ring, ['magenta', 'green']), ['magenta', 'green']);
    assert.equal(await ring.unregister(client), true, 'unregistered right after its last request');
    ring.close();

    // The same through the pool (the processor's path): a restarted lane meets the leftover.
    const leftover = again();
    await leftover.register(client);
    leftover.close();
    const pool = new TritonPool({ endpoints: [TRITON_URL], models: ['colour_probe'], transport: 'shm' });
    ring = again();
    try {
      await pool.start();
      await pool.addRing(ring);
      assert.equal(pool.endpoints[0]!.transport, 'shm');
      assert.ok(pool.endpoints[0]!.rings.has(ring));
      const slot = ring.acquire()!;
      const data = solidFrames(spec, ['yellow']);
      ring.writeInput(slot, data);
      const res = await pool.infer(
        { model: 'colour_probe', id: 'again', inputName: 'FRAME', datatype: 'UINT8', shape: [1, 224, 224, 3], data: Buffer.alloc(data.length), ring, slot, outputs: [{ name: 'SCORES', parameters: { classification: { int64_param: 1 } } }] },
        10_000,
        Date.now() + 1000,
      );
      assert.equal(parseClassification(res.raw_output_contents[0]!, 1, 1)[0]![0]!.label, 'yellow', 'read from the new file');
    } finally {
      await pool.close();
    }
    assert.equal(await ring.isRegistered(client), false);
  } finally {
    for (const r of [old, ring]) {
      if (!r) continue;
      await r.unregister(client);
      r.close();
    }
  }
  assert.deepEqual(ours(), [], 'no files left');
});
