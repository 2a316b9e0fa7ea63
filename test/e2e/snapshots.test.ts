/**
 * Alert snapshots end to end, on the real stack (issue #19 item 4): two cameras each show red for
 * exactly 11 frames, so the `red` rule (forMs 400 at 25 fps) fires at the episode's last red
 * frame and the frame after it is green. One camera is x264 with B-frames (pyramid, GOP 12) at
 * 800×600, so the snapshot is decoded past reordering and scaled to the 640 px cap.
 *  - each firing alert gets one `snapshot` record on the snapshots topic, keyed by its id, with
 *    `frame` = the alert's `atFrame`; its JPEG decodes, at the expected size, and shows red (a
 *    frame late would be green);
 *  - a webhook with `includeSnapshot: true` gets the firing alert with the same snapshot, its
 *    resolved record without; a webhook without it gets neither;
 *  - metrics count the snapshots made, and the time and CPU they took are printed;
 *  - stopped, the processor exits 0 and its read-back consumer group is gone.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import type { AlertRecord, SnapshotRecord } from '../../src/core/events.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack, freePort } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';
import { encodeFile, referenceOf } from '../helpers/reference.js';

type Posted = AlertRecord & { receivedAt?: number; snapshot?: { contentType: string; width: number; height: number; frame: number; jpeg: string }; snapshotMissing?: string };

/** Keeps every POSTed alert body. */
class Receiver {
  readonly got: Posted[] = [];
  private server: http.Server | undefined;
  constructor(readonly port: number) {}

  async up(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        this.got.push({ ...(JSON.parse(Buffer.concat(parts).toString('utf8')) as Posted), receivedAt: Date.now() });
        res.writeHead(204);
        res.end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

describe('alert snapshots', { timeout: 180_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let withSnap: Receiver;
  let without: Receiver;
  let alerts: TopicCollector | undefined;
  let snapshots: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    withSnap = new Receiver(await freePort());
    without = new Receiver(await freePort());
    await Promise.all([withSnap.up(), without.up()]);
    topo = await newTopology({
      mode: 'replay',
      extra: `alerts:\n  - { name: red, label: red, forMs: 400, clearMs: 200 }`,
      extraSinks: [
        `  - { type: webhook, url: "http://127.0.0.1:${withSnap.port}/hook", includeSnapshot: true, snapshotWaitMs: 15000 }`,
        `  - { type: webhook, url: "http://127.0.0.1:${without.port}/hook" }`,
      ].join('\n'),
    });
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    [alerts, snapshots] = await Promise.all([TopicCollector.start(topo.alerts), TopicCollector.start(topo.snapshots)]);
  });

  after(async () => {
    await Promise.all([withSnap?.down(), without?.down()]);
    await Promise.all([alerts?.stop(), snapshots?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test("a firing alert's snapshot is its atFrame, on the snapshots topic and in the webhook that asks for it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fw-snapshots-'));
    try {
      await withLogs(() => [proc], async () => {
        // Red for exactly 11 frames: forMs 400 = 10 frame intervals, so the alert fires at the
        // last red frame (atFrame), and a snapshot one frame late is green.
        const segments = [
          { colour: 'blue', frames: 30 },
          { colour: 'red', frames: 11 },
          { colour: 'green', frames: 25 },
        ] as const;
        const firstRed = 30;
        const small = colourVideo(320, 240, 25, [...segments]);
        const large = colourVideo(800, 600, 25, [...segments]);
        const pStream = `${topo.name}-p`;
        const bStream = `${topo.name}-b`;
        const bfile = path.join(dir, 'bframes.ts');
        await encodeFile(large.graph, bfile, ['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '3', '-b-pyramid', 'normal', '-g', '12']);
        const [p, b] = await Promise.all([
          runIngest({ stream: pStream, input: small.input, brokers: BROKERS, topic: topo.chunks, gop: 25, chunkBytes: 4000 }),
          runIngest({ stream: bStream, input: bfile, brokers: BROKERS, topic: topo.chunks, codec: 'copy', chunkBytes: 4000 }),
        ]);
        const cases = [
          { stream: pStream, session: p.session, width: 320, height: 240 },
          { stream: bStream, session: b.session, width: 640, height: 480 },
        ];

        const firingOf = (stream: string) => alerts!.json<AlertRecord>().find((a) => a.stream === stream && a.state === 'firing');
        const resolvedOf = (stream: string) => alerts!.json<AlertRecord>().find((a) => a.stream === stream && a.state === 'resolved');
        const snapsOf = (id: string) => snapshots!.json<SnapshotRecord>().filter((s) => s.id === id);
        const posted = (r: Receiver, id: string, state: string) => r.got.filter((g) => g.id === id && g.state === state);
        const ok = await waitUntil(
          () =>
            cases.every(({ stream }) => {
              const f = firingOf(stream);
              return f && resolvedOf(stream) && snapsOf(f.id).length > 0 && [withSnap, without].every((r) => posted(r, f.id, 'firing').length && posted(r, f.id, 'resolved').length);
            }),
          90_000,
        );
        assert.ok(ok, `not everything arrived: alerts ${alerts!.records.length}, snapshots ${snapshots!.records.length}, posts ${withSnap.got.length}/${without.got.length}`);

        for (const c of cases) {
          const firing = firingOf(c.stream)!;
          assert.equal(firing.session, c.session);
          assert.equal(firing.fromFrame, firstRed, `${c.stream}: the episode starts at the first red frame`);
          assert.equal(firing.atFrame, firstRed + 10, `${c.stream}: it fires 400 ms (10 frames) later, at the last red frame`);
          assert.equal(small.expected[firing.atFrame + 1], 'green', 'the frame after atFrame is green (the test would see an off-by-one)');
          assert.ok(firing.keyFrame !== undefined && firing.keyFrame <= firing.atFrame && firing.keyOffset !== undefined, `${c.stream}: the alert names atFrame's keyframe (${firing.keyFrame}@${firing.keyOffset})`);

          // One snapshot record, keyed by the alert id.
          const recs = snapshots!.records.filter((r) => r.key === firing.id);
          assert.equal(recs.length, 1, `${c.stream}: one snapshot record keyed by ${firing.id}`);
          const snap = snapsOf(firing.id)[0]!;
          assert.equal(snap.type, 'snapshot');
          assert.equal(snap.frame, firing.atFrame, `${c.stream}: the snapshot is of atFrame`);
          assert.deepEqual([snap.stream, snap.session, snap.rule, snap.captureTs, snap.contentType], [c.stream, c.session, 'red', firing.captureTs, 'image/jpeg']);
          assert.deepEqual([snap.width, snap.height], [c.width, c.height], `${c.stream}: the stream's size, capped at 640 px wide`);
          // The JPEG decodes (ffmpeg) and shows the alert's colour.
          const file = path.join(dir, `${c.stream}.jpg`);
          await writeFile(file, Buffer.from(snap.jpeg, 'base64'));
          const ref = await referenceOf(file);
          assert.deepEqual(ref.classes, ['red'], `${c.stream}: the snapshot shows red (mean ${ref.means[0]?.map((v) => v.toFixed(0)).join(',')})`);
          console.log(`${c.stream}: snapshot of frame ${snap.frame} (keyframe ${firing.keyFrame}), ${snap.width}x${snap.height}, ${Buffer.from(snap.jpeg, 'base64').length} B, published ${snap.publishedTs - firing.publishedTs} ms after its firing record`);

          // The webhook that asks for it: the firing POST carries the same JPEG; the resolved one none.
          const [f] = posted(withSnap, firing.id, 'firing');
          assert.ok(f!.snapshot, `${c.stream}: the firing POST carries the snapshot (snapshotMissing: ${f!.snapshotMissing})`);
          console.log(`${c.stream}: the firing POST with its snapshot arrived ${f!.receivedAt! - firing.publishedTs} ms after the alert was published`);
          assert.deepEqual(f!.snapshot, { contentType: 'image/jpeg', width: snap.width, height: snap.height, frame: snap.frame, jpeg: snap.jpeg });
          const [r] = posted(withSnap, firing.id, 'resolved');
          assert.equal(r!.snapshot, undefined);
          assert.equal(r!.snapshotMissing, undefined);
          // The webhook that does not: the alert as on Kafka.
          for (const g of posted(without, firing.id, 'firing').concat(posted(without, firing.id, 'resolved'))) {
            assert.equal(g.snapshot, undefined);
            assert.equal(g.snapshotMissing, undefined);
          }
          const { receivedAt: _at, ...plainBody } = posted(without, firing.id, 'firing')[0]!;
          assert.deepEqual(plainBody, { ...firing });
        }

        // With FRAMEWIRE_LOG_LEVEL=debug, where each snapshot's time went (queue, Kafka read, ffmpeg).
        for (const line of proc!.stderr.split('\n')) if (line.includes('alert snapshot made')) console.log(line);
        const m = await scrapeMetrics(topo.httpBase);
        assert.equal(metricValue(m, 'framewire_snapshots_total', { outcome: 'made' }), 2);
        assert.equal(metricValue(m, 'framewire_snapshots_total', { outcome: 'failed' }), 0);
        const count = metricValue(m, 'framewire_snapshot_seconds_count');
        const sum = metricValue(m, 'framewire_snapshot_seconds_sum');
        const cpu = metricValue(m, 'framewire_snapshot_cpu_seconds_total');
        assert.equal(count, 2);
        console.log(`SNAPSHOTS: ${count} made, mean ${((sum / count) * 1000).toFixed(0)} ms from firing record to snapshot record, ffmpeg CPU ${((cpu / count) * 1000).toFixed(0)} ms per snapshot`);

        // Stopped, it exits 0 and leaves no consumer group behind for its chunk read-backs.
        const t0 = Date.now();
        const st = await proc!.stop();
        assert.equal(st.code, 0, `exit ${st.code} ${st.signal}`);
        const admin = kafka.admin();
        await admin.connect();
        try {
          const left = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${topo.group}-readback`));
          assert.deepEqual(left, [], 'the read-back group is deleted at shutdown');
        } finally {
          await admin.disconnect();
        }
        console.log(`stopped in ${Date.now() - t0} ms`);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
