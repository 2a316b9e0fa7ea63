/**
 * Capabilities a component declares (core/sink.ts, core/source.ts) and the topology asking for
 * them by member: the Kafka source's lag, the monitor's alert restore and dashboard wiring.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupLag } from '../../src/sources/kafka/lag.js';
import { Monitor } from '../../src/topology/monitor.js';
import { OutputStage } from '../../src/sinks/output.js';
import { AlertEngine } from '../../src/alerts/engine.js';
import { alertsSchema } from '../../src/alerts/config.js';
import { parseTopology } from '../../src/config/load.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { HttpEndpoint } from '../../src/telemetry/http.js';
import type { AlertHistory, ClientSend, DashboardClients, EventBatch, LabelBatch, Sink } from '../../src/core/sink.js';
import type { ConsumerLag, Source } from '../../src/core/source.js';
import type { AlertRecord } from '../../src/core/events.js';
import type { LabelRecord } from '../../src/core/frame.js';

/** An admin that answers offset requests from fixed tables and records what it was asked. */
function fakeAdmin(committed: Record<number, string>, ends: Record<number, [low: string, high: string]>) {
  const asked: string[] = [];
  return {
    asked,
    async fetchOffsets({ groupId, topics }: { groupId: string; topics: string[] }) {
      asked.push(`offsets ${groupId} ${topics.join(',')}`);
      return [{ topic: topics[0]!, partitions: Object.entries(committed).map(([p, offset]) => ({ partition: Number(p), offset, metadata: null })) }];
    },
    async fetchTopicOffsets(topic: string) {
      asked.push(`ends ${topic}`);
      return Object.entries(ends).map(([p, [low, high]]) => ({ partition: Number(p), low, high, offset: high }));
    },
  };
}

test("the Kafka source's lag: committed offsets against the ends; an uncommitted partition counts all it holds", async () => {
  // p0: committed 40 of 100 → 60; p1: never committed (-1), holds 10..30 → 20; p2: committed past the end → 0.
  const admin = fakeAdmin({ 0: '40', 1: '-1', 2: '55' }, { 0: ['0', '100'], 1: ['10', '30'], 2: ['0', '50'] });
  assert.equal(await groupLag(admin as never, 'g1', 'video.chunks'), 80);
  assert.deepEqual(admin.asked.sort(), ['ends video.chunks', 'offsets g1 video.chunks']);
  // A partition missing from the group's commit counts all it holds too.
  assert.equal(await groupLag(fakeAdmin({}, { 0: ['5', '9'] }) as never, 'g1', 't'), 4);
});

test('the lag rejects when the broker cannot be asked (the dashboard then keeps it unknown)', async () => {
  const down = { fetchOffsets: () => Promise.reject(new Error('broker down')), fetchTopicOffsets: () => Promise.resolve([]) };
  await assert.rejects(groupLag(down as never, 'g', 't'), /broker down/);
});

// ---- the monitor asks for capabilities, not for component types

const RULES = '  - { name: red-on-air, label: red, forMs: 400 }\n';
/** The configured sinks name none of the fakes' capabilities: the monitor must go by the built sinks. */
const topology = (alerts: string) => parseTopology(`sources: [{ type: kafka }]\nmodels: [{ name: m }]\nsinks: [{ type: kafka }, { type: websocket }]\n${alerts ? `alerts:\n${alerts}` : ''}`, 't.yaml');

/** The records of an episode left open by a previous run: red long enough to fire, then nothing. */
function openEpisode(stream: string): AlertRecord[] {
  const engine = new AlertEngine(alertsSchema.parse([{ name: 'red-on-air', label: 'red', forMs: 400 }]));
  const reds: LabelRecord[] = Array.from({ length: 20 }, (_, i) => ({
    type: 'label',
    stream,
    session: 's1',
    frame: i,
    ptsMs: i * 40,
    captureTs: 1_764_120_000_000 + i * 40,
    model: 'm',
    modelVersion: '1',
    labels: [{ label: 'red', score: 0.9 }],
    publishedTs: 1_764_120_000_000 + i * 40 + 20,
  }));
  const out = reds.flatMap((r) => engine.labels([r]));
  assert.deepEqual(out.map((a) => a.state), ['firing']);
  return out;
}

class PlainSink implements Sink {
  constructor(readonly name: string) {}
  async publishLabels(_b: LabelBatch): Promise<void> {}
  async publishEvents(_b: EventBatch): Promise<void> {}
  async close(): Promise<void> {}
}

/** A sink that can read back alerts: `records`, and each lookback it was asked for. */
class HistorySink extends PlainSink {
  readonly asked: number[] = [];
  readonly alertHistory: AlertHistory;
  constructor(name: string, records: AlertRecord[]) {
    super(name);
    this.alertHistory = { recentAlerts: async (lookbackMs) => (this.asked.push(lookbackMs), records) };
  }
}

/** A sink with dashboard clients, one of which always wants stats; what it is sent. */
class DashboardSink extends PlainSink implements DashboardClients {
  readonly dashboard: DashboardClients = this;
  readonly hasStatsClients = true;
  onStatsClient: ((send: ClientSend) => void) | undefined;
  readonly stats: Record<string, unknown>[] = [];
  sendStats(_stream: string | undefined, text: string): void {
    this.stats.push(JSON.parse(text) as Record<string, unknown>);
  }
  wantsThumb(): boolean {
    return false;
  }
  sendThumb(): void {}
}

function source(name: string, lag?: ConsumerLag): Source {
  return { name, isConsuming: true, start: async () => {}, stopIntake: async () => {}, close: async () => {}, consumerLag: lag };
}

function monitor(alerts: string, sinks: Sink[]): Monitor {
  const metrics = new Metrics();
  return new Monitor({ topology: topology(alerts), output: new OutputStage(sinks, metrics), metrics, sinks, models: ['m'], decoding: () => undefined });
}

test('open episodes are restored from the first sink that declares an alert history, read an hour back', async (t) => {
  const history = new HistorySink('history', openEpisode('cam-1'));
  const later = new HistorySink('later', openEpisode('cam-2'));
  const m = monitor(RULES, [new PlainSink('plain'), history, later]);
  t.after(() => m.close());
  await m.start([]);
  assert.deepEqual(history.asked, [60 * 60 * 1000]);
  assert.deepEqual(later.asked, [], 'one history is read');
  const active = m.engine.active();
  assert.deepEqual(active.map((a) => `${a.stream}:${a.id}`), [`cam-1:${openEpisode('cam-1')[0]!.id}`], 'the episode goes on with its id');
});

test('no sink with an alert history: nothing is restored (a kafka sink in the config is not asked for)', async (t) => {
  const m = monitor(RULES, [new PlainSink('plain')]);
  t.after(() => m.close());
  await m.start([]);
  assert.equal(m.engine.enabled, true);
  assert.deepEqual(m.engine.active(), []);
});

test('no alert rules: the alert history is not read', async (t) => {
  const history = new HistorySink('history', openEpisode('cam-1'));
  const m = monitor('', [history]);
  t.after(() => m.close());
  await m.start([]);
  assert.deepEqual(history.asked, []);
});

test("the dashboard goes to the sink that declares dashboard clients, with the lag of the first source that can say it", async (t) => {
  const dash = new DashboardSink('dash');
  const m = monitor('', [new PlainSink('plain'), dash]);
  t.after(() => m.close());
  const routes: string[] = [];
  m.addRoutes({ route: (path: string) => routes.push(path) } as unknown as HttpEndpoint);
  assert.ok(routes.includes('/'), `dashboard page served: ${routes.join(' ')}`);
  let asked = 0;
  await m.start([source('no-lag'), source('lagging', { lag: async () => (asked++, 7) }), source('other', { lag: async () => 99 })]);
  // A client that starts asking for stats is greeted.
  const hello: string[] = [];
  dash.onStatsClient!((_stream, text) => hello.push(text));
  assert.equal((JSON.parse(hello[0]!) as { type: string }).type, 'hello');
  // The first pipeline message asks for the lag; the next carries it (beats are 1 s apart).
  const deadline = Date.now() + 5000;
  while (!dash.stats.some((s) => s.type === 'pipeline' && s.lag === 7) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(dash.stats.some((s) => s.type === 'pipeline' && s.lag === 7), JSON.stringify(dash.stats));
  assert.equal(asked, 1, 'asked once: at most every 5 s');
});

test('no sink declares dashboard clients: no dashboard page', () => {
  const routes: string[] = [];
  monitor('', [new PlainSink('plain'), new HistorySink('history', [])]).addRoutes({ route: (path: string) => routes.push(path) } as unknown as HttpEndpoint);
  assert.deepEqual(routes, []);
});
