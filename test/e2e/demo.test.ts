/**
 * The README's `npm start`: scripts/demo.sh's colour camera, cam-1 (its command line read from the
 * script, so the test follows the demo), into a processor on topology/local.yaml, the demo's own
 * topology, moved onto random topics, group and HTTP port through its FRAMEWIRE_* variables.
 * cam-1 loops 8 s of colours; it must still be labelled 30 s after it started, in one session
 * with pts continuing, its colours coming round loop after loop and red-on-air firing each time
 * (issue #20: --loop did nothing for lavfi, the camera ended after one pass).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import type { LabelRecord } from '../../src/core/frame.js';
import type { AlertRecord } from '../../src/core/events.js';
import { TopicCollector } from '../helpers/collectors.js';
import { COLOURS } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ROOT, TRITON_URL, ensureStack, freePort, randomId } from '../helpers/stack.js';
import { deleteGroups, deleteTopics } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';

/** Labels with a capture time this long after the camera started must arrive. */
const STILL_LABELLED_AFTER_MS = 30_000;

/** Processes of a process group, with their command lines. */
function groupMembers(pgid: number): string[] {
  try {
    return execFileSync('pgrep', ['-a', '-g', String(pgid)], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** cam-1's `framewire ingest` arguments and its colour cycle, as scripts/demo.sh has them. */
function demoCamera(): { args: string[]; segments: { label: string; frames: number }[] } {
  const script = readFileSync(path.join(ROOT, 'scripts/demo.sh'), 'utf8');
  const colours = /^colours="([^"]+)"$/m.exec(script)?.[1];
  const line = script.split('\n').find((l) => l.includes('ingest --stream cam-1 '));
  assert.ok(colours && line, 'scripts/demo.sh no longer has colours="…" and an `ingest --stream cam-1` line: update this test');
  const words = [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => (m[1] ?? m[2]!).replaceAll('$colours', colours));
  const end = words.findIndex((w) => /^\d*>/.test(w) || w === '&');
  const args = words.slice(words.indexOf('ingest'), end < 0 ? undefined : end);
  // color=c=red:s=640x360:r=25:d=2 …: each segment's colour (a name or hex) as colour_probe calls it.
  const byHex = new Map(Object.entries(COLOURS).map(([name, hex]) => [hex.toLowerCase(), name]));
  const segments = [...colours.matchAll(/color=c=([^:]+):s=\d+x\d+:r=(\d+):d=(\d+)/g)].map((m) => ({
    label: byHex.get(m[1]!.toLowerCase()) ?? m[1]!,
    frames: Number(m[2]) * Number(m[3]),
  }));
  assert.ok(segments.some((s) => s.label === 'red'), `no red in the demo's colours: ${colours}`);
  return { args, segments };
}

describe('npm start: the colour camera keeps looping', { timeout: 150_000 }, () => {
  const id = randomId();
  const env: NodeJS.ProcessEnv = {
    FRAMEWIRE_BROKERS: BROKERS.join(','),
    FRAMEWIRE_TRITON_URL: TRITON_URL,
    FRAMEWIRE_GROUP: `fw-e2e-demo-${id}`,
    FRAMEWIRE_CHUNKS_TOPIC: `e2e.demo.${id}.chunks`,
    FRAMEWIRE_LABELS_TOPIC: `e2e.demo.${id}.labels`,
    FRAMEWIRE_EVENTS_TOPIC: `e2e.demo.${id}.events`,
    FRAMEWIRE_ALERTS_TOPIC: `e2e.demo.${id}.alerts`,
    FRAMEWIRE_SNAPSHOTS_TOPIC: `e2e.demo.${id}.snapshots`,
    FRAMEWIRE_DLQ_TOPIC: `e2e.demo.${id}.dlq`,
  };
  let proc: Processor | undefined;
  let camera: ChildProcess | undefined;
  let cameraExit: Promise<number | null> | undefined;
  let labels: TopicCollector | undefined;
  let alerts: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    env.FRAMEWIRE_HTTP = `127.0.0.1:${await freePort()}`;
    proc = Processor.run(path.join(ROOT, 'topology/local.yaml'), 'processor', env);
    await proc.waitReady(`http://${env.FRAMEWIRE_HTTP}`);
    [labels, alerts] = await Promise.all([TopicCollector.start(env.FRAMEWIRE_LABELS_TOPIC!), TopicCollector.start(env.FRAMEWIRE_ALERTS_TOPIC!)]);
  });

  after(async () => {
    // The camera runs in its own process group (ingest and its ffmpeg): nothing of it may outlive the test.
    if (camera?.pid && camera.exitCode === null && camera.signalCode === null) process.kill(-camera.pid, 'SIGKILL');
    await cameraExit;
    await Promise.all([labels?.stop(), alerts?.stop()]);
    await stopAllProcessors();
    await deleteTopics(['CHUNKS', 'LABELS', 'EVENTS', 'ALERTS', 'SNAPSHOTS', 'DLQ'].map((t) => env[`FRAMEWIRE_${t}_TOPIC`]!));
    await deleteGroups([env.FRAMEWIRE_GROUP!]);
  });

  test(`cam-1 is labelled ${STILL_LABELLED_AFTER_MS / 1000} s on, red comes back every loop, one session`, async () => {
    await withLogs(() => [proc], async () => {
      const { args, segments } = demoCamera();
      assert.ok(args.includes('--loop') && args.includes('--realtime'), `demo.sh's cam-1: ${args.join(' ')}`);
      const period = segments.reduce((n, s) => n + s.frames, 0);

      const startedAt = Date.now();
      camera = spawn(process.execPath, [path.join(ROOT, 'bin/framewire.js'), ...args], {
        cwd: ROOT,
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, ...env },
      });
      let cameraErr = '';
      camera.stderr!.setEncoding('utf8').on('data', (d: string) => (cameraErr += d));
      cameraExit = new Promise((resolve) => camera!.once('exit', (code) => resolve(code)));

      const cam = (): LabelRecord[] => labels!.json<LabelRecord>().filter((l) => l.stream === 'cam-1');
      const late = await waitUntil(() => cam().some((l) => l.captureTs > startedAt + STILL_LABELLED_AFTER_MS), STILL_LABELLED_AFTER_MS + 30_000, 250);
      const got = cam().sort((a, b) => a.frame - b.frame);
      const last = got.at(-1);
      assert.ok(late, `no cam-1 label captured ${STILL_LABELLED_AFTER_MS} ms after start: ${got.length} labels, the last captured ${last ? last.captureTs - startedAt : '-'} ms after start, frame ${last?.frame}\n${cameraErr}`);

      // One session, pts continuing across loops (40 ms a frame), capture times increasing.
      assert.deepEqual([...new Set(got.map((l) => l.session))].length, 1, 'cam-1 is one session');
      for (let i = 1; i < got.length; i++) {
        const [a, b] = [got[i - 1]!, got[i]!];
        assert.ok(Math.abs(b.ptsMs - a.ptsMs - (b.frame - a.frame) * 40) <= 1, `pts of frames ${a.frame} → ${b.frame}: ${a.ptsMs} → ${b.ptsMs}`);
        assert.ok(b.captureTs > a.captureTs, `capture time of frame ${b.frame} not after frame ${a.frame}'s`);
      }
      // Every frame shows its colour of the cycle (a frame's slack at each change of colour).
      const expected = (frame: number): string | undefined => {
        let p = frame % period;
        for (const s of segments) {
          if (p >= 1 && p < s.frames - 1) return s.label;
          p -= s.frames;
        }
        return undefined;
      };
      const wrong = got.filter((l) => expected(l.frame) !== undefined && l.labels[0]?.label !== expected(l.frame));
      assert.deepEqual(wrong.slice(0, 5).map((l) => `${l.frame}:${l.labels[0]?.label}`), [], `${wrong.length} of ${got.length} frames not their colour`);
      const redLoops = new Set(got.filter((l) => l.labels[0]?.label === 'red').map((l) => Math.floor(l.frame / period)));
      assert.ok(redLoops.size >= 3, `red in loops ${[...redLoops].join(', ')} only`);

      // red-on-air (topology/local.yaml) fires once a loop, as the README says: in every loop whose
      // labelled red frames span its forMs (a loaded machine may drop most of a loop's red, e.g. while
      // the decoder starts; dropped frames do not count).
      const rule = (parse(readFileSync(path.join(ROOT, 'topology/local.yaml'), 'utf8')) as { alerts: { name: string; forMs: number }[] }).alerts.find((r) => r.name === 'red-on-air')!;
      const redFrames = (loop: number) => got.filter((l) => Math.floor(l.frame / period) === loop && l.labels[0]?.label === 'red');
      const holds = [...redLoops].filter((n) => redFrames(n).at(-1)!.captureTs - redFrames(n)[0]!.captureTs >= rule.forMs);
      const firingIn = (loop: number) => alerts!.json<AlertRecord>().filter((a) => a.stream === 'cam-1' && a.rule === rule.name && a.state === 'firing' && Math.floor(a.fromFrame / period) === loop);
      await waitUntil(() => holds.every((n) => firingIn(n).length > 0), 5000);
      const firing = alerts!.json<AlertRecord>().filter((a) => a.stream === 'cam-1' && a.rule === rule.name && a.state === 'firing');
      const byLoop = [...redLoops].map((n) => `loop ${n}: red frames ${redFrames(n).length} (${redFrames(n)[0]!.frame}..${redFrames(n).at(-1)!.frame}), fired ${firingIn(n).length}`).join('; ');
      assert.ok(holds.length >= 2, `red held for ${rule.forMs} ms in ${holds.length} loops only: ${byLoop}`);
      assert.deepEqual(holds.map((n) => firingIn(n).length), holds.map(() => 1), `one firing per loop: ${byLoop}`);
      console.log(`cam-1: ${got.length} labels up to frame ${last!.frame} (captured ${last!.captureTs - startedAt} ms after start); red-on-air fired ${firing.length} times; ${byLoop}`);

      // Ctrl-C: the camera's whole group gets SIGINT; ingest ends its session and exits 0, leaving nothing behind.
      process.kill(-camera.pid!, 'SIGINT');
      const code = await Promise.race([cameraExit, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      assert.equal(code, 0, `ingest after SIGINT: ${String(code)}\n${cameraErr}`);
      assert.match(cameraErr, / in 1 session\(s\)/, cameraErr);
      assert.deepEqual(groupMembers(camera.pid!), [], 'processes left in the camera group');
    });
  });
});
