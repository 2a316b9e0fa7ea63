/**
 * Alerts end to end on the real stack: a camera shows red for 2 s inside other colours; the rule
 * `label: red, forMs: 400, clearMs: 400` gives exactly one `firing` and one `resolved` record for
 * it on the alerts topic (and the WebSocket), with their frames inside the red segment, and
 * nothing for a second camera without red. A third camera stops sending for 3 s without ending
 * its session: `stalled`/`resumed` stream events, and a stale rule fires and then resolves.
 * Prints the alert latency (capture of the frame that fired → record read from Kafka).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector, WsCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ROOT, ensureStack } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';
import type { AlertRecord, StreamEvent } from '../../src/core/events.js';

const FPS = 25;

describe('alerts: label and stale rules, end to end', { timeout: 120_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let alerts: TopicCollector | undefined;
  let ws: WsCollector | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology({
      mode: 'replay',
      idleTimeoutMs: 20_000,
      extra: `health: { staleMs: 1000 }
alerts:
  - { name: red-on-air, label: red, forMs: 400, clearMs: 400 }
  - { name: camera-offline, streams: "-stale$", stale: 1000, severity: critical }`,
    });
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    [labels, events, alerts] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events), TopicCollector.start(topo.alerts)]);
    ws = await WsCollector.connect(topo.wsUrl);
  });

  after(async () => {
    ws?.close();
    await Promise.all([labels?.stop(), events?.stop(), alerts?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('one firing and one resolved inside the red segment; none without red; a stale rule fires and resolves', async () => {
    await withLogs(() => [proc], async () => {
      const red = `${topo.name}-red`;
      const plain = `${topo.name}-plain`;
      const stale = `${topo.name}-stale`;
      // Red from frame 25 to 74 (2 s) inside blue, green and yellow.
      const redVideo = colourVideo(320, 240, FPS, [{ colour: 'blue', frames: 25 }, { colour: 'red', frames: 50 }, { colour: 'green', frames: 25 }, { colour: 'yellow', frames: 25 }]);
      const plainVideo = colourVideo(320, 240, FPS, [{ colour: 'green', frames: 30 }, { colour: 'blue', frames: 30 }, { colour: 'yellow', frames: 30 }, { colour: 'cyan', frames: 35 }]);
      const staleVideo = colourVideo(320, 240, FPS, [{ colour: 'white', frames: 50 }, { colour: 'cyan', frames: 50 }]);
      const [redTs, plainTs, staleTs] = [redVideo, plainVideo, staleVideo].map((v) => encodeVideo(v.graph, FPS));
      const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const session = (s: string) => `${s.slice(-5)}-${randomBytes(3).toString('hex')}`;
      const sessions = { red: session(red), plain: session(plain), stale: session(stale) };
      // `framewire tail --alerts` as an operator would run it, on a pipe (no colours).
      const tail = spawn(process.execPath, [path.join(ROOT, 'bin/framewire.js'), 'tail', '--alerts', '--streams', `${red},${plain}`, '--url', topo.wsUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
      let tailOut = '';
      let tailErr = '';
      tail.stdout.setEncoding('utf8').on('data', (d: string) => (tailOut += d));
      tail.stderr.setEncoding('utf8').on('data', (d: string) => (tailErr += d));
      const tailExited = new Promise((r) => tail.once('exit', r));
      // Whatever happens below, the tail goes (a child left running would hold the test runner).
      const stopTail = async () => {
        if (tail.exitCode === null && tail.signalCode === null) tail.kill('SIGTERM');
        await tailExited;
      };
      try {
        assert.ok(await waitUntil(() => tailErr.includes('connected'), 10_000), `tail did not connect: ${tailErr}`);
        const epochMs = Date.now() + 300;
        try {
          await Promise.all([
            sendVideo(producer, redTs!, { topic: topo.chunks, stream: red, session: sessions.red, epochMs, paced: true, eos: true }),
            sendVideo(producer, plainTs!, { topic: topo.chunks, stream: plain, session: sessions.plain, epochMs, paced: true, eos: true }),
            // Stops after frame 40 for 3 s, without fw-eos; then goes on and ends.
            sendVideo(producer, staleTs!, { topic: topo.chunks, stream: stale, session: sessions.stale, epochMs, paced: true, eos: true, pause: { afterFrame: 40, ms: 3000 } }),
          ]);
        } finally {
          await producer.disconnect();
        }
        const ofStream = (s: string) => alerts!.json<AlertRecord>().filter((a) => a.stream === s);
        await waitUntil(() => ofStream(red).length >= 2 && ofStream(stale).length >= 2, 30_000);
        // Late duplicates or a second episode would show up by now.
        await waitUntil(() => false, 1500);

        const redAlerts = ofStream(red);
        console.log(`alerts of ${red}: ${JSON.stringify(redAlerts)}`);
        assert.deepEqual(redAlerts.map((a) => a.state), ['firing', 'resolved'], 'exactly one firing and one resolved');
        const [firing, resolved] = redAlerts as [AlertRecord, AlertRecord];
        assert.equal(firing.id, resolved.id);
        assert.equal(firing.rule, 'red-on-air');
        assert.equal(firing.session, sessions.red);
        for (const [what, frame] of [['fromFrame', firing.fromFrame], ['firing atFrame', firing.atFrame], ['resolved atFrame', resolved.atFrame]] as const) {
          assert.ok(frame >= 25 && frame <= 74, `${what} ${frame} outside the red segment 25..74`);
        }
        assert.ok(firing.atFrame - firing.fromFrame >= 10, `fired at ${firing.atFrame}, less than 400 ms after ${firing.fromFrame}`);
        assert.ok(resolved.clearedFrame! >= 75, 'resolved by a frame after the red segment');
        assert.equal(firing.label, 'red');
        assert.deepEqual(ofStream(plain), [], 'nothing for the camera without red');

        // The WebSocket carried the same records.
        const wsAlerts = ws!.events('alert').filter((a) => a.stream === red) as unknown as AlertRecord[];
        assert.deepEqual(wsAlerts.map((a) => `${a.id}:${a.state}`), redAlerts.map((a) => `${a.id}:${a.state}`));

        // Stale camera: stalled → resumed on the events topic; the stale rule fired and resolved.
        const streamEvents = (s: string) => events!.json<StreamEvent>().filter((e) => e.type === 'stream' && e.stream === s).map((e) => e.state);
        await waitUntil(() => streamEvents(stale).includes('ended') && streamEvents(red).includes('ended'), 10_000);
        // The pause is seen as one stall. (A loaded machine may delay a paced camera's chunks by a
        // second now and then, which is a stall too; only the order is asserted beyond that.)
        const staleStates = streamEvents(stale);
        assert.equal(staleStates[0], 'started');
        assert.equal(staleStates.at(-1), 'ended');
        assert.ok(staleStates.includes('stalled') && staleStates.indexOf('resumed') > staleStates.indexOf('stalled'), `stale camera: ${staleStates.join(', ')}`);
        assert.deepEqual([streamEvents(red)[0], streamEvents(red).at(-1)], ['started', 'ended']);
        const staleAlerts = ofStream(stale);
        assert.deepEqual(staleAlerts.map((a) => `${a.rule}:${a.state}`), ['camera-offline:firing', 'camera-offline:resolved']);
        assert.equal(staleAlerts[0]!.severity, 'critical');
        assert.equal(staleAlerts[1]!.reason, 'resumed');
        assert.equal(staleAlerts[0]!.label, undefined);
        assert.ok(staleAlerts[0]!.fromFrame >= 30 && staleAlerts[0]!.fromFrame <= 40, `stale alert from frame ${staleAlerts[0]!.fromFrame}: the last frame before the pause`);
        assert.deepEqual(ofStream(red).filter((a) => a.rule === 'camera-offline'), []);

        // The tail printed one line per alert record of the streams it asked for, nothing else.
        await stopTail();
        const lines = tailOut.trim().split('\n');
        assert.equal(lines.length, 2, `tail stdout:\n${tailOut}\nstderr:\n${tailErr}`);
        assert.match(lines[0]!, new RegExp(`${red} ALERT FIRING red-on-air \\[warning\\] red 1\\.00 frames #${firing.fromFrame}\\.\\.#${firing.atFrame} id ${firing.id}`));
        assert.match(lines[1]!, /ALERT RESOLVED red-on-air/);
        assert.doesNotMatch(tailOut, /\x1b\[/, 'no colour codes on a pipe');

        // Alert latency: capture of the frame that fired → the record read from Kafka.
        const rec = alerts!.records.find((r) => r.key === red)!;
        const labelOf = (frame: number) => labels!.json<LabelRecord>().find((l) => l.stream === red && l.frame === frame);
        const firstMatch = labelOf(firing.fromFrame)!;
        console.log(
          `ALERT LATENCY: capture of the firing frame #${firing.atFrame} → alert on Kafka ${rec.receivedAt - firing.captureTs} ms ` +
            `(label published ${labelOf(firing.atFrame)!.publishedTs - firing.captureTs} ms after capture, alert published ${firing.publishedTs - firing.captureTs} ms); ` +
            `first matching frame #${firing.fromFrame} → alert ${rec.receivedAt - firstMatch.captureTs} ms (includes forMs 400)`,
        );
      } finally {
        await stopTail();
      }
    });
  });
});
