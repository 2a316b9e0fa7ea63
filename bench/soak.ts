/**
 * Soak benchmark on the real local stack (prints a table; not a test): 8 live cameras
 * (`framewire ingest --realtime --loop --codec copy` of a pre-encoded 320x240 25 fps H.264 clip,
 * one continuous session each) into one processor (live mode, colour_probe) for --minutes
 * (default 30). Every --every seconds (default 30) it samples the processor: RSS, V8 heap used,
 * open file descriptors, ffmpeg children, its /dev/shm regions, frames published and dropped,
 * and the machine's load average. At the end: RSS growth after the first 5 minutes (target
 * < 10 %), and growth in fds, children and regions (target none).
 *
 *   node dist/bench/soak.js [--minutes 30] [--every 30] [--cameras 8] [--port 18250]
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeVideo, fetchMetrics, metricSum, removeRunTopics, requireStack, rssMb, runPrefix, sleep, spawnFramewire, stopGroup, waitReadyAt, type Group } from './lib.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    every: { type: 'string', default: '30' },
    cameras: { type: 'string', default: '8' },
    port: { type: 'string', default: '18250' },
  },
});
const MINUTES = Number(values.minutes);
const EVERY_S = Number(values.every);
const CAMERAS = Number(values.cameras);
const PORT = Number(values.port);

interface Sample {
  atMin: number;
  rssMb: number;
  heapMb: number;
  fds: number;
  ffmpeg: number;
  shm: number;
  published: number;
  dropped: number;
  load: number;
}

function fds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function ffmpegChildren(pid: number): number {
  let n = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && comm === 'ffmpeg') n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

function shmRegions(pid: number): number {
  try {
    return readdirSync('/dev/shm').filter((f) => f.startsWith(`framewire-${pid}-`)).length;
  } catch {
    return -1;
  }
}

async function main(): Promise<void> {
  await requireStack();
  const prefix = runPrefix('soak');
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-soak-'));
  const clip = path.join(dir, 'clip.ts');
  encodeVideo(clip, { lavfi: 'testsrc2=s=320x240:r=25:d=20', gop: 25, pesLength: true });
  const topo = path.join(dir, 'soak.yaml');
  writeFileSync(
    topo,
    `name: soak
kafka: { brokers: ["127.0.0.1:9092"], clientId: soak }
http: { listen: "127.0.0.1:${PORT}" }
latency: { budgetMs: 1000 }
sources: [{ type: kafka, topic: ${prefix}.chunks, group: ${prefix}, partitions: 4, dlqTopic: ${prefix}.dlq, fromBeginning: false }]
decode: { idleTimeoutMs: 5000 }
batch: { maxWaitMs: 10, mode: live, maxInflight: 2 }
models: [{ name: colour_probe, topK: 2 }]
sinks: [{ type: kafka, topic: ${prefix}.labels, eventsTopic: ${prefix}.events }]
shutdown: { drainTimeoutMs: 5000 }
`,
  );
  const proc = spawnFramewire(['run', '--topology', topo]);
  const cams: Group[] = [];
  const samples: Sample[] = [];
  try {
    await waitReadyAt(PORT, 90_000);
    for (let i = 0; i < CAMERAS; i++) {
      cams.push(spawnFramewire(['ingest', '--stream', `${prefix}-cam${i}`, '--input', clip, '--brokers', '127.0.0.1:9092', '--topic', `${prefix}.chunks`, '--realtime', '--loop', '--codec', 'copy']));
    }
    const t0 = Date.now();
    console.log(`soak: ${CAMERAS} cameras, ${MINUTES} min, sampling every ${EVERY_S} s (processor pid ${proc.pid})`);
    console.log('| min | RSS MB | heap MB | fds | ffmpeg | /dev/shm | published | dropped | load 1m |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (;;) {
      const m = await fetchMetrics(PORT).catch(() => '');
      const s: Sample = {
        atMin: (Date.now() - t0) / 60_000,
        rssMb: rssMb(proc.pid),
        heapMb: metricSum(m, 'framewire_nodejs_heap_size_used_bytes') / 2 ** 20,
        fds: fds(proc.pid),
        ffmpeg: ffmpegChildren(proc.pid),
        shm: shmRegions(proc.pid),
        published: metricSum(m, 'framewire_frames_published_total'),
        dropped: metricSum(m, 'framewire_frames_dropped_total'),
        load: loadavg()[0]!,
      };
      samples.push(s);
      console.log(`| ${s.atMin.toFixed(1)} | ${s.rssMb.toFixed(0)} | ${s.heapMb.toFixed(1)} | ${s.fds} | ${s.ffmpeg} | ${s.shm} | ${s.published} | ${s.dropped} | ${s.load.toFixed(2)} |`);
      const exitedCams = cams.filter((c) => c.child.exitCode !== null).length;
      if (proc.child.exitCode !== null) throw new Error(`the processor exited (${proc.child.exitCode}): ${proc.stderr().slice(-1500)}`);
      if (exitedCams > 0) console.log(`warning: ${exitedCams} camera(s) exited`);
      if (s.atMin >= MINUTES) break;
      await sleep(EVERY_S * 1000);
    }
  } finally {
    await Promise.all(cams.map((c) => stopGroup(c, 5000)));
    await stopGroup(proc, 15_000);
    await removeRunTopics(prefix, [prefix]);
    rmSync(dir, { recursive: true, force: true });
  }
  // Growth is measured from the 5-minute sample: before it the decoders and spares are still starting.
  const base = samples.find((s) => s.atMin >= 5) ?? samples[0]!;
  const last = samples[samples.length - 1]!;
  const first = base;
  // RSS saws with the V8 heap (±15 MB here): medians of 5 samples each side say more than two points.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const after5 = samples.filter((s) => s.atMin >= 5);
  const early = median(after5.slice(0, 5).map((s) => s.rssMb));
  const late = median(after5.slice(-5).map((s) => s.rssMb));
  console.log(`\nRSS median of 5 samples from 5 min: ${early.toFixed(0)} MB, of the last 5: ${late.toFixed(0)} MB: ${(((late - early) / early) * 100).toFixed(1)} %`);
  console.log(
    `RSS ${base.rssMb.toFixed(0)} MB at ${base.atMin.toFixed(1)} min → ${last.rssMb.toFixed(0)} MB at ${last.atMin.toFixed(1)} min: ` +
      `${(((last.rssMb - base.rssMb) / base.rssMb) * 100).toFixed(1)} % (target < 10 %); ` +
      `fds ${first.fds} → ${last.fds}, ffmpeg children ${first.ffmpeg} → ${last.ffmpeg}, /dev/shm regions ${first.shm} → ${last.shm} (target: no growth); ` +
      `${last.published} frames published, ${last.dropped} dropped`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
