/**
 * What the dashboard costs the processor, and how late alerts are (prints tables; not a test).
 *
 *   node dist/bench/dashboard.js [--streams 16] [--phase-seconds 10] [--rounds 2] [--mode replay]
 *
 * One processor (`framewire run`, colour_probe, a `label: red, forMs: 400` rule) and N paced
 * cameras (320×240 H.264 at 25 fps, a colour cycle with 2 s of red every 8 s). Phases alternate:
 * no dashboard, then one dashboard client subscribed as the page subscribes (`/ws?stats=1&thumbs=1`,
 * labels included: stats and pipeline messages each second, a thumbnail a second per stream),
 * repeated `--rounds` times. Per phase: the processor's node CPU (its own process, not the ffmpeg
 * decoders), frames labelled per second, thumbnails made and their encode time. Then alert
 * latency: capture of the frame at which each alert fired → its record read from the alerts topic.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import WebSocket from 'ws';
import {
  cpuSeconds,
  createChunkTopic,
  encodeVideo,
  fetchMetrics,
  machineMeter,
  metricSum,
  pacedCameras,
  quantile,
  removeRunTopics,
  requireStack,
  runPrefix,
  sleep,
  spawnFramewire,
  stopGroup,
  waitReady,
  type PacedCamera,
} from './lib.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '16' },
    'phase-seconds': { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'replay' },
    port: { type: 'string', default: '18110' },
  },
});
const N = Number(values.streams);
const PHASE_S = Number(values['phase-seconds']);
const ROUNDS = Number(values.rounds);
const PORT = Number(values.port);
const WARMUP_S = 5;

async function main(): Promise<void> {
  await requireStack();
  const prefix = runPrefix('bench-dash');
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-bench-dash-'));
  const colours = ['blue', 'red', '0x00FF00', 'yellow'].map((c, i) => `color=c=${c}:s=320x240:r=25:d=2[c${i}]`).join(';');
  const seconds = WARMUP_S + 2 * PHASE_S * ROUNDS + 3;
  const loops = Math.ceil(seconds / 8);
  const graph = `${colours};[c0][c1][c2][c3]concat=n=4:v=1:a=0,loop=loop=${loops - 1}:size=200`;
  const video = encodeVideo(path.join(dir, 'cycle.ts'), { lavfi: graph, gop: 50, pesLength: true });
  const topology = path.join(dir, 'topology.yaml');
  writeFileSync(
    topology,
    `name: ${prefix}
kafka: { brokers: ["127.0.0.1:9092"], clientId: ${prefix} }
http: { listen: "127.0.0.1:${PORT}" }
sources: [{ type: kafka, topic: ${prefix}.chunks, group: ${prefix}, partitions: 4, dlqTopic: ${prefix}.dlq }]
decode: { idleTimeoutMs: 10000 }
batch: { mode: ${values.mode}, maxWaitMs: 15, queueFrames: 512, maxInflight: 2 }
triton: { url: "127.0.0.1:8001", timeoutMs: 5000 }
models: [{ name: colour_probe, topK: 3 }]
alerts: [{ name: red-on-air, label: red, forMs: 400, clearMs: 400 }]
sinks:
  - { type: kafka, topic: ${prefix}.labels, eventsTopic: ${prefix}.events, alertsTopic: ${prefix}.alerts, partitions: 4 }
  - { type: websocket }
`,
  );
  await createChunkTopic(`${prefix}.chunks`, 4);
  const proc = spawnFramewire(['run', '--topology', topology]);
  const kafka = new kafkajs.Kafka({ clientId: `${prefix}-bench`, brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const reader = kafka.consumer({ groupId: `${prefix}-reader`, maxWaitTimeInMs: 50 });
  const alerts: { captureTs: number; state: string; publishedTs: number; receivedAt: number; atFrame: number; fromFrame: number }[] = [];
  try {
    await waitReady(PORT);
    await producer.connect();
    await reader.connect();
    await reader.subscribe({ topic: `${prefix}.alerts`, fromBeginning: true });
    await reader.run({ eachMessage: async ({ message }) => void alerts.push({ ...JSON.parse(message.value!.toString()), receivedAt: Date.now() }) });
    const epochMs = Date.now() + 500;
    const cams: PacedCamera[] = Array.from({ length: N }, (_, i) => ({ stream: `${prefix}-cam-${i}`, session: `s${i}`, video, epochMs, fromPacket: 0, seq: 0, sent: 0, untilPtsMs: seconds * 1000 }));
    let stop = false;
    const sending = pacedCameras(cams, `${prefix}.chunks`, producer, () => stop);
    await sleep(epochMs - Date.now() + WARMUP_S * 1000);

    const meter = machineMeter();
    const rows: string[] = [];
    const totals = { off: { cpu: 0, s: 0, frames: 0 }, on: { cpu: 0, s: 0, frames: 0 } };
    for (let round = 0; round < ROUNDS; round++) {
      for (const phase of ['off', 'on'] as const) {
        let ws: WebSocket | undefined;
        let bytes = 0;
        let messages = 0;
        if (phase === 'on') {
          ws = new WebSocket(`ws://127.0.0.1:${PORT}/ws?stats=1&thumbs=1`);
          ws.on('message', (d: Buffer) => ((bytes += d.length), messages++));
          await new Promise((r) => ws!.once('open', r));
        }
        const m0 = await fetchMetrics(PORT);
        const c0 = cpuSeconds(proc.pid);
        const t0 = Date.now();
        await sleep(PHASE_S * 1000);
        const c1 = cpuSeconds(proc.pid);
        const t1 = Date.now();
        const m1 = await fetchMetrics(PORT);
        ws?.close();
        const s = (t1 - t0) / 1000;
        const delta = (name: string) => metricSum(m1, name) - metricSum(m0, name);
        const thumbs = delta('framewire_thumbnails_total');
        const thumbMs = thumbs ? (delta('framewire_thumbnail_encode_seconds_total') * 1000) / thumbs : 0;
        totals[phase].cpu += c1 - c0;
        totals[phase].s += s;
        totals[phase].frames += delta('framewire_frames_published_total');
        const load = (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
        rows.push(
          `| ${round + 1} | ${phase === 'on' ? 'one dashboard' : 'none'} | ${((100 * (c1 - c0)) / s).toFixed(1)} % | ${(delta('framewire_frames_published_total') / s).toFixed(0)} | ${((1000 * (c1 - c0)) / Math.max(1, delta('framewire_frames_published_total'))).toFixed(2)} | ${thumbs} (${thumbMs.toFixed(2)} ms each) | ${phase === 'on' ? `${(messages / s).toFixed(0)} msg/s, ${(bytes / s / 1024).toFixed(0)} KiB/s` : '–'} | ${load} |`,
        );
      }
    }
    stop = true;
    await sending;
    console.log(`\nDashboard cost: ${N} streams at 25 fps (320×240, colour_probe, ${values.mode} mode), phases of ${PHASE_S} s; CPU is the processor's node process (% of one core)\n`);
    console.log('| round | dashboards | processor CPU | labelled frames/s | CPU ms / labelled frame | thumbnails | to the dashboard | load average |');
    console.log('| --: | --- | --: | --: | --: | --- | --- | --- |');
    for (const r of rows) console.log(r);
    const off = (100 * totals.off.cpu) / totals.off.s;
    const on = (100 * totals.on.cpu) / totals.on.s;
    const perFrame = (t: { cpu: number; frames: number }) => ((1000 * t.cpu) / Math.max(1, t.frames)).toFixed(2);
    console.log(`\nmean: none ${off.toFixed(1)} %, one dashboard ${on.toFixed(1)} % (+${(on - off).toFixed(1)} points of one core); CPU per labelled frame ${perFrame(totals.off)} → ${perFrame(totals.on)} ms`);
    console.log(meter.report());

    await sleep(1500);
    const firing = alerts.filter((a) => a.state === 'firing');
    const lat = firing.map((a) => a.receivedAt - a.captureTs).sort((a, b) => a - b);
    const pub = firing.map((a) => a.publishedTs - a.captureTs).sort((a, b) => a - b);
    console.log(`\nAlert latency (${firing.length} firings, ${alerts.length - firing.length} resolved): capture of the firing frame → record read from the alerts topic p50 ${quantile(lat, 0.5)} ms, p99 ${quantile(lat, 0.99)} ms, max ${lat.at(-1)} ms; → alert published p50 ${quantile(pub, 0.5)} ms; the first matching frame is forMs (400 ms) earlier`);
  } finally {
    await reader.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await stopGroup(proc);
    await removeRunTopics(prefix, [prefix, `${prefix}-reader`]);
    const k = kafka.admin();
    await k.connect().then(() => k.deleteTopics({ topics: [`${prefix}.alerts`] })).catch(() => {});
    await k.disconnect().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
