/**
 * Where framewire's client spends its time at a given batch and concurrency (issue 4: the
 * concurrency-4 cells trail the reference client). Closed-loop ModelInfer against the stack's
 * Triton; prints throughput, the node process's CPU use, and — when run with --cpu-prof — the
 * top functions by self time from the profile it wrote.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/fwprof dist/bench/profile-infer.js [--batch 8] [--concurrency 4] [--seconds 5]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TritonClient } from '../src/infer/triton/client.js';
import { describeModel, classificationRequest } from '../src/infer/triton/model.js';
import { cpuSeconds } from './lib.js';

const { values } = parseArgs({ options: { batch: { type: 'string', default: '8' }, concurrency: { type: 'string', default: '4' }, seconds: { type: 'string', default: '5' }, url: { type: 'string', default: '127.0.0.1:8001' }, profile: { type: 'string' } } });

if (values.profile) {
  // Summarise a .cpuprofile (or the newest in a directory): self time per function.
  let file = values.profile;
  try {
    const files = readdirSync(file).filter((f) => f.endsWith('.cpuprofile')).sort();
    file = path.join(file, files[files.length - 1]!);
  } catch {
    /* a file */
  }
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const dt = prof.timeDeltas[i] ?? 0;
    total += dt;
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '')}:${n.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
  for (const [k, v] of rows) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
} else {
  const batch = Number(values.batch);
  const concurrency = Number(values.concurrency);
  const client = new TritonClient({ url: values.url! });
  const spec = await describeModel(client, 'colour_probe');
  const pixels = Buffer.alloc(batch * spec.height * spec.width * 3, 128);
  const req = classificationRequest(spec, pixels, batch, 1, 'p');
  let frames = 0;
  const until = performance.now() + Number(values.seconds) * 1000;
  const cpu0 = cpuSeconds(process.pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await client.modelInfer(req, 10_000);
        frames += batch;
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  console.log(`batch ${batch}, concurrency ${concurrency}: ${(frames / wall).toFixed(0)} frames/s; node CPU ${((100 * (cpuSeconds(process.pid) - cpu0)) / wall).toFixed(0)}% of one core`);
  client.close();
}
