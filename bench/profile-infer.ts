/**
 * Where framewire's client spends its time at a given batch and concurrency (issue 4: the
 * concurrency-4 cells trail the reference client). Closed-loop ModelInfer against the stack's
 * Triton; prints throughput, the node process's CPU use, and — when run with --cpu-prof — the
 * top functions by self time from the profile it wrote.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/fwprof dist/bench/profile-infer.js [--batch 8] [--concurrency 4] [--seconds 5]
 *        [--model colour_probe] [--path unary|grpcjs|stream|rawstream|all, or several: unary,stream] [--rounds 1]
 *
 * --path: `unary` is TritonClient.modelInfer (the pipeline's call: our HTTP/2 unary path, tensor
 * not copied), `grpcjs` the same request through grpc-js's generic unary call (protobufjs message
 * + framed copy; what modelInfer was), `stream` ModelStreamInfer on one stream (grpc-js duplex,
 * requests matched by id), `rawstream` ModelStreamInfer on one HTTP/2 stream written like the unary
 * path (cached header + the tensor buffer, no copy; a measurement prototype, not used by the
 * pipeline), `all` each in turn, repeated --rounds times, alternating the order.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TritonClient } from '../src/infer/triton/client.js';
import { describeModel, classificationRequest } from '../src/infer/triton/model.js';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { InferRequestEncoder } from '../src/infer/triton/unary.js';
import type { InferRequest, StreamInferResponse } from '../src/infer/triton/types.js';
import { cpuSeconds } from './lib.js';

/**
 * ModelStreamInfer without the copies: one HTTP/2 stream, each request written as a cached
 * header plus the caller's tensor (the unary path's encoder), responses parsed from the
 * length-prefixed response stream and matched by id. Enough for a measurement.
 */
class RawStream {
  private readonly pending = new Map<string, (r: StreamInferResponse) => void>();
  private readonly h2: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private readonly encoder: InferRequestEncoder;
  private readonly decode: (b: Buffer) => StreamInferResponse;
  private buf = Buffer.alloc(0);

  constructor(url: string) {
    const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');
    const def = protoLoader.loadSync(path.join(dir, 'grpc_service.proto'), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [dir] });
    const m = (def['inference.GRPCInferenceService'] as protoLoader.ServiceDefinition).ModelStreamInfer!;
    this.encoder = new InferRequestEncoder((x) => m.requestSerialize(x as object));
    this.decode = (b) => m.responseDeserialize(b) as StreamInferResponse;
    const [host, port] = url.split(':');
    this.h2 = http2.connect(`http://${url}`, { createConnection: () => net.connect({ host: host!, port: Number(port), noDelay: true }), settings: { initialWindowSize: 1 << 24 }, maxSessionMemory: Number.MAX_SAFE_INTEGER });
    this.h2.once('remoteSettings', () => this.h2.setLocalWindowSize(1 << 24));
    this.stream = this.h2.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelStreamInfer', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
    this.stream.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      while (this.buf.length >= 5) {
        const len = this.buf.readUInt32BE(1);
        if (this.buf.length < 5 + len) break;
        const msg = this.decode(this.buf.subarray(5, 5 + len));
        this.buf = this.buf.subarray(5 + len);
        const id = msg.infer_response?.id ?? '';
        const p = this.pending.get(id);
        this.pending.delete(id);
        p?.(msg);
      }
    });
  }

  infer(req: InferRequest): Promise<StreamInferResponse> {
    return new Promise((resolve, reject) => {
      this.pending.set(req.id!, (r) => (r.error_message ? reject(new Error(r.error_message)) : resolve(r)));
      this.stream.cork();
      for (const c of this.encoder.encode(req)) this.stream.write(c);
      this.stream.uncork();
    });
  }

  close(): void {
    this.stream.end();
    this.h2.close();
  }
}

const { values } = parseArgs({ options: { batch: { type: 'string', default: '8' }, concurrency: { type: 'string', default: '4' }, seconds: { type: 'string', default: '5' }, url: { type: 'string', default: '127.0.0.1:8001' }, profile: { type: 'string' }, model: { type: 'string', default: 'colour_probe' }, path: { type: 'string', default: 'unary' }, rounds: { type: 'string', default: '1' } } });

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
  const spec = await describeModel(client, values.model!);
  const pixels = Buffer.alloc(batch * spec.height * spec.width * 3 * spec.elementBytes, 0);
  const paths = values.path === 'all' ? ['unary', 'grpcjs', 'stream', 'rawstream'] : values.path!.split(',');
  const seconds = Number(values.seconds);
  const run = async (p: string) => {
    const stream = p === 'stream' ? client.modelStreamInfer() : undefined;
    const raw = p === 'rawstream' ? new RawStream(values.url!) : undefined;
    let seq = 0;
    const call = (w: number) => {
      const req = classificationRequest(spec, pixels, batch, 1, `w${w}-${++seq}`);
      if (p === 'unary') return client.modelInfer(req, 10_000);
      if (p === 'grpcjs') return client.modelInferGrpcJs(req, 10_000);
      if (raw) return raw.infer(req);
      return stream!.infer(req, 10_000);
    };
    // Warm-up, then the measured window.
    const loop = async (until: number, count: boolean) => {
      let frames = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async (_, w) => {
          while (performance.now() < until) {
            await call(w);
            if (count) frames += batch;
          }
        }),
      );
      return frames;
    };
    await loop(performance.now() + 300, false);
    const cpu0 = cpuSeconds(process.pid);
    const t0 = performance.now();
    const frames = await loop(t0 + seconds * 1000, true);
    const wall = (performance.now() - t0) / 1000;
    stream?.end();
    raw?.close();
    const cpu = cpuSeconds(process.pid) - cpu0;
    console.log(`${p.padEnd(9)} ${spec.name} batch ${batch}, concurrency ${concurrency}: ${(frames / wall).toFixed(0)} frames/s; node CPU ${((100 * cpu) / wall).toFixed(0)}% of one core, ${((1000 * cpu) / (frames / batch)).toFixed(2)} ms CPU per request`);
  };
  for (let r = 0; r < Number(values.rounds); r++) for (const p of r % 2 ? [...paths].reverse() : paths) await run(p);
  client.close();
}
