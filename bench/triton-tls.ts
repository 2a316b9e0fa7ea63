/**
 * What TLS costs on framewire's Triton client: ModelInfer (the node:http2 path) to a plaintext
 * and to a TLS tritonserver (mutual, certificates made here), same model, batch and concurrency,
 * cells run alternately so the machine's load drifts over both alike. Prints a table; not a test.
 *
 *   node dist/bench/triton-tls.js [--seconds 2] [--rounds 2]
 *
 * Private servers: plaintext on ports 18390-18392, TLS on 8120-8122 (the security helper's ports
 * in COORDINATION.md; override with FW_BENCH_PLAIN_PORT / FW_BENCH_TLS_PORT, the first of three).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { readTls } from '../src/config/tls.js';
import { TritonClient } from '../src/infer/triton/client.js';
import { describeModel, type ModelSpec } from '../src/infer/triton/model.js';
import type { InferRequest } from '../src/infer/triton/types.js';
import { makeCerts } from '../test/helpers/secure.js';
import { startTriton, type TritonProcess } from '../test/helpers/triton.js';
import { solidFrames } from '../test/helpers/frames.js';
import { removeDir } from '../test/helpers/topics.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, rounds: { type: 'string', default: '2' } } });
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const PLAIN = Number(process.env.FW_BENCH_PLAIN_PORT ?? 18390);
const TLS = Number(process.env.FW_BENCH_TLS_PORT ?? 8120);

interface Sample {
  frames: number;
  requests: number;
  elapsed: number;
  latencies: number[];
  cpuS: number;
}

async function run(client: TritonClient, spec: ModelSpec, batch: number, concurrency: number, seconds: number): Promise<Sample> {
  const data = solidFrames(spec, new Array(batch).fill('red'));
  const req: InferRequest = {
    model_name: spec.name,
    inputs: [{ name: spec.inputName, datatype: spec.inputDatatype, shape: [batch, spec.height, spec.width, 3] }],
    outputs: [{ name: spec.outputName, parameters: { classification: { int64_param: 1 } } }],
    raw_input_contents: [data],
  };
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        await client.modelInfer(req, 10_000);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return { frames: latencies.length * batch, requests: latencies.length, elapsed: (performance.now() - t0) / 1000, latencies, cpuS: (c.user + c.system) / 1e6 };
}

function merge(a: Sample | undefined, b: Sample): Sample {
  if (!a) return b;
  return { frames: a.frames + b.frames, requests: a.requests + b.requests, elapsed: a.elapsed + b.elapsed, latencies: a.latencies.concat(b.latencies), cpuS: a.cpuS + b.cpuS };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  const certs = makeCerts('framewire-bench-tls-');
  const servers: TritonProcess[] = [];
  const clients: TritonClient[] = [];
  try {
    const [plain, secure] = await Promise.all([
      startTriton({ httpPort: PLAIN, grpcPort: PLAIN + 1, metricsPort: PLAIN + 2, models: ['colour_probe'] }),
      startTriton({
        httpPort: TLS,
        grpcPort: TLS + 1,
        metricsPort: TLS + 2,
        models: ['colour_probe'],
        extraArgs: ['--grpc-use-ssl=true', '--grpc-use-ssl-mutual=true', `--grpc-server-cert=${certs.serverCert}`, `--grpc-server-key=${certs.serverKey}`, `--grpc-root-cert=${certs.ca}`],
      }),
    ]);
    servers.push(plain, secure);
    const sides = {
      plaintext: new TritonClient({ url: plain.url }),
      tls: new TritonClient({ url: secure.url, tls: readTls({ ca: certs.ca, cert: certs.clientCert, key: certs.clientKey }, 'triton.tls') }),
    };
    clients.push(sides.plaintext, sides.tls);
    const spec = await describeModel(sides.plaintext, 'colour_probe');
    const load0 = os.loadavg()[0]!;
    console.log(`ModelInfer, colour_probe UINT8 224x224x3, tensors in the message; ${ROUNDS} x ${SECONDS} s per cell and side, alternating; load average ${load0.toFixed(1)}`);
    console.log('| batch | concurrency | plaintext frames/s | TLS frames/s | plaintext p50 / p99 ms | TLS p50 / p99 ms | client CPU per request, plaintext → TLS |');
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const batch of [1, 8, 32]) {
      for (const concurrency of [1, 4]) {
        const acc: Record<keyof typeof sides, Sample | undefined> = { plaintext: undefined, tls: undefined };
        for (const side of Object.keys(sides) as (keyof typeof sides)[]) await run(sides[side], spec, batch, concurrency, 0.3); // warm-up, connections open
        for (let r = 0; r < ROUNDS; r++) {
          for (const side of (r % 2 ? ['tls', 'plaintext'] : ['plaintext', 'tls']) as (keyof typeof sides)[]) acc[side] = merge(acc[side], await run(sides[side], spec, batch, concurrency, SECONDS));
        }
        const p = acc.plaintext!;
        const t = acc.tls!;
        const us = (s: Sample) => ((s.cpuS / s.requests) * 1e6).toFixed(0);
        console.log(
          `| ${batch} | ${concurrency} | ${(p.frames / p.elapsed).toFixed(0)} | ${(t.frames / t.elapsed).toFixed(0)} | ${pct(p.latencies, 50).toFixed(1)} / ${pct(p.latencies, 99).toFixed(1)} | ${pct(t.latencies, 50).toFixed(1)} / ${pct(t.latencies, 99).toFixed(1)} | ${us(p)} → ${us(t)} µs |`,
        );
      }
    }
    console.log(`load average at the end ${os.loadavg()[0]!.toFixed(1)}`);
  } finally {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
    removeDir(certs.dir);
  }
}

await main();
