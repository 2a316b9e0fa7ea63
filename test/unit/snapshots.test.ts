/**
 * Alert snapshots, the pure parts: which chunks and which decoded frame a snapshot needs, the
 * alert records' keyframe lineage it reads, the JPEG's size, the ffmpeg CPU line, and the
 * webhook body with (or without) the snapshot, POSTed by the real sink to a local server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SNAPSHOT_TAIL_CHUNKS, benchCpuSeconds, jpegSize, planSnapshot, snapshotArgs } from '../../src/clip/snapshot.js';
import { Snapshotter } from '../../src/clip/snapshots.js';
import { snapshotsSchema } from '../../src/clip/config.js';
import { AlertEngine } from '../../src/alerts/engine.js';
import { alertsSchema } from '../../src/alerts/config.js';
import { JpegEncoder } from '../../src/dashboard/jpeg.js';
import { WebhookSink, signature, withSnapshot } from '../../src/sinks/webhook/sink.js';
import { webhookSinkSchema } from '../../src/sinks/webhook/config.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { RecordBatch } from '../../src/core/sink.js';
import type { AlertRecord, SnapshotRecord } from '../../src/core/events.js';
import type { LabelRecord } from '../../src/core/frame.js';
import { waitUntil } from '../helpers/wait.js';

const base: AlertRecord = {
  type: 'alert', id: 'red:cam-1:1000', rule: 'red', stream: 'cam-1', session: 's1', state: 'firing', severity: 'warning', label: 'red', score: 0.9,
  fromFrame: 30, atFrame: 40, captureTs: 2600, publishedTs: 0, partition: 2, offset: 57, fromOffset: 51, clipFrame: 25, clipOffset: 49, keyFrame: 36, keyOffset: 54,
};

test("a snapshot is decoded from atFrame's own keyframe: its chunk through atFrame's (+1), frame atFrame - keyFrame", () => {
  assert.deepEqual(planSnapshot(base), {
    query: { stream: 'cam-1', session: 's1', partition: 2, fromOffset: '54', toOffset: '57', tailChunks: SNAPSHOT_TAIL_CHUNKS },
    keyFrame: 36,
    index: 4,
  });
  // A record without it (published before keyFrame was added): from the clip's keyframe, further back.
  const old = planSnapshot({ ...base, keyFrame: undefined, keyOffset: undefined });
  assert.ok(typeof old !== 'string');
  assert.deepEqual([old.query.fromOffset, old.keyFrame, old.index], ['49', 25, 15]);
  // atFrame is its own keyframe: the first decoded frame.
  const onKey = planSnapshot({ ...base, keyFrame: 40, keyOffset: 57 });
  assert.ok(typeof onKey !== 'string');
  assert.equal(onKey.index, 0);
});

test('no snapshot plan: resolved records, stale alerts with no frame, records without lineage or keyframe', () => {
  assert.match(String(planSnapshot({ ...base, state: 'resolved' })), /not a firing record/);
  assert.match(String(planSnapshot({ ...base, fromFrame: -1, atFrame: -1 })), /no frame was labelled/);
  assert.match(String(planSnapshot({ ...base, partition: undefined, offset: undefined })), /no lineage/);
  assert.match(String(planSnapshot({ ...base, keyFrame: undefined, keyOffset: undefined, clipFrame: undefined, clipOffset: undefined })), /names no keyframe/);
  // A keyframe after the frame cannot decode it (a damaged record): the clip's start is used, if sane.
  const later = planSnapshot({ ...base, keyFrame: 44, keyOffset: 60 });
  assert.ok(typeof later !== 'string');
  assert.equal(later.keyFrame, 25);
});

test("alert records carry atFrame's keyframe lineage (keyFrame, keyOffset) beside fromFrame's (clipFrame, clipOffset)", () => {
  const engine = new AlertEngine(alertsSchema.parse([{ name: 'red', label: 'red', forMs: 400 }]));
  const label = (frame: number, colour: string): LabelRecord => ({
    type: 'label', stream: 'cam-1', session: 's1', frame, ptsMs: frame * 40, captureTs: 1000 + frame * 40, model: 'm', modelVersion: '1', labels: [{ label: colour, score: 0.9 }], publishedTs: 0,
    // GOP 12: keyframes 24 and 36, their chunks 48 and 54; frame n began in chunk 2 + n * 1.4 (a few frames a chunk).
    partition: 2, offset: Math.floor(frame * 1.4), keyFrame: frame - (frame % 12), keyOffset: frame - (frame % 12) === 24 ? 48 : 54,
  });
  const out = Array.from({ length: 50 }, (_, n) => label(n, n >= 30 ? 'red' : 'blue')).flatMap((r) => engine.labels([r]));
  const firing = out.find((a) => a.state === 'firing')!;
  assert.equal(firing.fromFrame, 30);
  assert.equal(firing.atFrame, 40);
  assert.deepEqual([firing.clipFrame, firing.clipOffset, firing.keyFrame, firing.keyOffset], [24, 48, 36, 54]);
  // Restored after a restart, an open episode keeps them (the records it was read back from have them).
  const again = new AlertEngine(alertsSchema.parse([{ name: 'red', label: 'red', forMs: 400 }]));
  again.restore([firing]);
  assert.deepEqual(again.active().map((a) => [a.keyFrame, a.keyOffset]), [[36, 54]]);
});

test("a JPEG's size comes from its frame header; anything else is not a JPEG", () => {
  const enc = new JpegEncoder(80);
  const jpeg = Buffer.from(enc.encode(Buffer.alloc(33 * 17 * 3, 200), 33, 17));
  assert.deepEqual(jpegSize(jpeg), { width: 33, height: 17 });
  assert.equal(jpegSize(Buffer.from('not a jpeg')), undefined);
  assert.equal(jpegSize(jpeg.subarray(0, 20)), undefined, 'cut before the frame header');
  assert.equal(jpegSize(Buffer.alloc(0)), undefined);
});

test("ffmpeg's arguments pick the frame by its decoded index and cap the width; its bench line gives the CPU time", () => {
  const args = snapshotArgs(7, 640, 4);
  assert.equal(args[args.indexOf('-vf') + 1], "select=eq(n\\,7),scale=w='min(640\\,iw)':h=-2");
  assert.deepEqual(args.slice(args.indexOf('-frames:v'), args.indexOf('-frames:v') + 2), ['-frames:v', '1']);
  assert.equal(args[args.indexOf('-threads') + 1], '1');
  assert.equal(benchCpuSeconds('[info] bench: utime=0.084s stime=0.008s rtime=0.095s'), 0.092);
  assert.equal(benchCpuSeconds('[info] bench: maxrss=68776kB'), undefined);
});

test('the webhook body: the record with `snapshot` added, or `snapshotMissing` saying why', () => {
  const json = JSON.stringify(base);
  const snap: SnapshotRecord = { type: 'snapshot', id: base.id, rule: 'red', stream: 'cam-1', session: 's1', frame: 40, captureTs: 2600, width: 320, height: 240, contentType: 'image/jpeg', jpeg: 'AAEC', publishedTs: 1 };
  assert.deepEqual(JSON.parse(withSnapshot(json, { snapshot: snap })), { ...base, snapshot: { contentType: 'image/jpeg', width: 320, height: 240, frame: 40, jpeg: 'AAEC' } });
  assert.deepEqual(JSON.parse(withSnapshot(json, { missing: 'timeout' })), { ...base, snapshotMissing: 'timeout' });
});

async function server(): Promise<{ url: string; got: { body: string; sig: string }[]; close: () => Promise<void> }> {
  const got: { body: string; sig: string }[] = [];
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ body, sig: String(req.headers['x-framewire-signature']) });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`, got, close: () => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))) };
}

test('with includeSnapshot, a firing POST without a snapshot coming says why at once (signed as sent); resolved records and sinks without it are unchanged', async () => {
  const srv = await server();
  const metrics = new Metrics();
  // A real Snapshotter with no source that can read chunks back: nothing is made, so nothing is waited for.
  const snapshots = new Snapshotter({ config: snapshotsSchema.parse({}), metrics, ffmpegPath: 'ffmpeg', publish: () => undefined });
  const withSnap = new WebhookSink(webhookSinkSchema.parse({ type: 'webhook', url: srv.url, secret: 'k', includeSnapshot: true, snapshotWaitMs: 60_000 }), metrics, snapshots);
  const plain = new WebhookSink(webhookSinkSchema.parse({ type: 'webhook', url: srv.url }), metrics, snapshots);
  try {
    const resolved: AlertRecord = { ...base, state: 'resolved', reason: 'cleared' };
    const t0 = Date.now();
    snapshots.offer([base]);
    await withSnap.publishAlerts(new RecordBatch([base, resolved]));
    assert.ok(await waitUntil(() => srv.got.length === 2, 5000, 10));
    assert.ok(Date.now() - t0 < 5000, 'no snapshot is coming: the POST does not wait snapshotWaitMs');
    const [f, r] = srv.got.map((g) => JSON.parse(g.body) as AlertRecord & { snapshotMissing?: string });
    assert.equal(f!.snapshotMissing, 'none');
    assert.equal(r!.snapshotMissing, undefined);
    assert.deepEqual(r, resolved);
    for (const g of srv.got) assert.equal(g.sig, signature('k', g.body), 'the signature covers the body as sent');
    await plain.publishAlerts(new RecordBatch([base]));
    assert.ok(await waitUntil(() => srv.got.length === 3, 5000, 10));
    assert.equal(srv.got[2]!.body, JSON.stringify(base));
  } finally {
    await withSnap.close();
    await plain.close();
    await srv.close();
  }
});

test('no sink carries or sends snapshots: none are made (the chunks are not even read)', async () => {
  const reads: string[] = [];
  const snapper = new Snapshotter({ config: snapshotsSchema.parse({}), metrics: new Metrics(), ffmpegPath: 'ffmpeg', publish: () => undefined });
  snapper.history = { readSession: async (q) => (reads.push(q.fromOffset), 'unreachable') };
  snapper.wanted = false;
  snapper.offer([base]);
  assert.deepEqual(await snapper.snapshotOf(base.id, Date.now() + 1000), { missing: 'none' });
  assert.deepEqual(reads, []);
  // Disabled in the topology: the same.
  const off = new Snapshotter({ config: snapshotsSchema.parse({ enabled: false }), metrics: new Metrics(), ffmpegPath: 'ffmpeg', publish: () => undefined });
  off.history = snapper.history;
  off.offer([base]);
  assert.deepEqual(await off.snapshotOf(base.id, Date.now() + 1000), { missing: 'none' });
  assert.deepEqual(reads, []);
  // Which webhooks count as sending them.
  const hook = (fields: Record<string, unknown>) => new WebhookSink(webhookSinkSchema.parse({ type: 'webhook', url: 'http://127.0.0.1:9/x', ...fields }), new Metrics(), snapper);
  const [yes, no] = [hook({ includeSnapshot: true }), hook({})];
  assert.deepEqual([yes.sendsSnapshots, no.sendsSnapshots], [true, false]);
  await Promise.all([yes.close(), no.close()]);
});
