/**
 * End-to-end pipeline benchmark on the real local stack (prints a table; not a test).
 *
 *   node dist/bench/pipeline.js [--streams 3] [--seconds 20] [--fps 25] [--size 640x360]
 *
 * Two runs, each with a fresh processor (`framewire run`) and fresh topics:
 *  - fast:     N streams ingested as fast as possible, replay mode (nothing dropped) → labelled
 *              frames/s for the whole run;
 *  - realtime: N streams paced at --fps → capture→publish p50/p99 (from the label records'
 *              captureTs and publishedTs) and the processor's CPU% and peak RSS.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { runIngest } from '../src/ingest/ingest.js';
import { ROOT, cpuSeconds, quantile, removeRunTopics, rssMb, waitReady } from './lib.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '20' },
    fps: { type: 'string', default: '25' },
    size: { type: 'string', default: '640x360' },
    port: { type: 'string', default: '18080' },
  },
});
const STREAMS = Number(values.streams);
const SECONDS = Number(values.seconds);
const FPS = Number(values.fps);
const SIZE = values.size!;
const PORT = Number(values.port);

interface LabelRec {
  stream: string;
  frame: number;
  captureTs: number;
  publishedTs: number;
}

function topology(prefix: string, mode: 'live' | 'replay'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fw-bench-'));
  const file = path.join(dir, 'topology.yaml');
  writeFileSync(
    file,
    `name: bench
kafka: { brokers: ["127.0.0.1:9092"], clientId: bench }
http: { listen: "127.0.0.1:${PORT}" }
latency: { budgetMs: 250 }
sources: [{ type: kafka, topic: ${prefix}.chunks, group: ${prefix}, partitions: 3, dlqTopic: ${prefix}.dlq, commitIntervalMs: 500 }]
decode: { idleTimeoutMs: 1000 }
batch: { maxWaitMs: 10, queueFrames: 256, maxInflight: 2, mode: ${mode} }
triton: { url: "127.0.0.1:8001", timeoutMs: 5000 }
models: [{ name: colour_probe, topK: 3 }]
sinks: [{ type: kafka, topic: ${prefix}.labels, eventsTopic: ${prefix}.events }]
`,
  );
  return file;
}

async function run(mode: 'fast' | 'realtime'): Promise<Record<string, string | number>> {
  const prefix = `bench-${mode}-${Date.now().toString(36)}`;
  const proc: ChildProcess = spawn('node', [path.join(ROOT, 'bin/framewire.js'), 'run', '--topology', topology(prefix, mode === 'fast' ? 'replay' : 'live')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  try {
    await waitReady(PORT);
    const frames = SECONDS * FPS;
    const kafka = new kafkajs.Kafka({ clientId: 'bench', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `${prefix}-reader` });
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}.labels`, fromBeginning: true });
    const labels: LabelRec[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void labels.push(JSON.parse(message.value!.toString()) as LabelRec) });

    const cpu0 = cpuSeconds(proc.pid!);
    let peakRss = rssMb(proc.pid!);
    const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, rssMb(proc.pid!))), 500);
    const t0 = Date.now();
    const colours = ['red', '0x00FF00', 'blue', 'yellow', 'cyan', 'magenta'];
    await Promise.all(
      Array.from({ length: STREAMS }, (_, i) =>
        runIngest({
          stream: `bench-${i}`,
          input: `lavfi:color=c=${colours[i % colours.length]}:s=${SIZE}:r=${FPS}:d=${SECONDS},format=yuv420p`,
          brokers: ['127.0.0.1:9092'],
          topic: `${prefix}.chunks`,
          realtime: mode === 'realtime',
          gop: FPS,
        }),
      ),
    );
    const ingestDone = Date.now();
    const expected = frames * STREAMS;
    while (labels.length < expected && Date.now() - ingestDone < 60_000) await new Promise((r) => setTimeout(r, 200));
    clearInterval(rssTimer);
    const wall = (Math.max(...labels.map((l) => l.publishedTs)) - t0) / 1000;
    const cpuUsed = cpuSeconds(proc.pid!) - cpu0;
    await consumer.disconnect();
    // In realtime mode, the last ~idleTimeout of each stream waits for the decoder flush; measure steady state.
    const steady = labels.filter((l) => l.frame < frames - FPS);
    const lat = steady.map((l) => l.publishedTs - l.captureTs).sort((a, b) => a - b);
    return {
      mode,
      streams: STREAMS,
      'frames labelled': `${new Set(labels.map((l) => `${l.stream}/${l.frame}`)).size}/${expected}`,
      'frames/s': (labels.length / wall).toFixed(1),
      // As-fast-as-possible input has capture times in the future: latency only means something in realtime.
      'capture→publish p50 ms': mode === 'realtime' ? quantile(lat, 0.5) : 'n/a',
      'p99 ms': mode === 'realtime' ? quantile(lat, 0.99) : 'n/a',
      'node CPU %': ((100 * cpuUsed) / wall).toFixed(0),
      'peak RSS MB': peakRss.toFixed(0),
    };
  } catch (err) {
    console.error(stderr);
    throw err;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await removeRunTopics(prefix, [prefix, `${prefix}-reader`]);
  }
}

execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up'], { stdio: 'inherit' });
const rows = [await run('fast'), await run('realtime')];
console.log(`\npipeline benchmark: ${STREAMS} streams × ${SECONDS} s × ${FPS} fps, ${SIZE} H.264, colour_probe 224×224, 2 cores`);
console.table(rows);
