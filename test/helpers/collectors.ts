/** What a test reads back: a Kafka topic from its start, or a WebSocket subscription. */
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import WebSocket from 'ws';
import type { LabelRecord } from '../../src/core/frame.js';
import { deleteGroups, kafka } from './topics.js';
import { withTimeout } from './wait.js';
import { randomId } from './stack.js';

export interface TopicRecord {
  partition: number;
  offset: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  /** Date.now() when the collector received it. */
  receivedAt: number;
}

export function headersToStrings(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    const one = Array.isArray(v) ? v[0] : v;
    out[k] = Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
  }
  return out;
}

/**
 * Reads a topic from the beginning with a fresh consumer group and keeps every record (in
 * arrival order, so per-partition order is kept) until stopped. A record is kept once per
 * (partition, offset): when the broker dies before the reader's own offset commit lands, kafkajs
 * restarts the reader from its last commit and hands it records it already has. Those re-reads
 * are the reader's, not the service's; a record the service really wrote twice has its own offset
 * and is kept twice.
 */
export class TopicCollector {
  readonly records: TopicRecord[] = [];
  private readonly parsed: unknown[] = [];
  private consumer: Consumer | undefined;
  private client: Kafka = kafka;
  readonly group = `fw-e2e-reader-${randomId()}`;
  /** Per partition, the offsets already kept. */
  private readonly seen = new Map<number, Set<string>>();
  /** Records handed over again after a restart of the reader (not kept). */
  reread = 0;

  private constructor(readonly topic: string) {}

  static async start(topic: string, client: Kafka = kafka): Promise<TopicCollector> {
    const c = new TopicCollector(topic);
    c.client = client;
    const consumer = client.consumer({ groupId: c.group, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    c.consumer = consumer;
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        let offsets = c.seen.get(partition);
        if (!offsets) c.seen.set(partition, (offsets = new Set()));
        if (offsets.has(message.offset)) {
          c.reread++;
          return;
        }
        offsets.add(message.offset);
        c.records.push({
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? '',
          value: message.value ?? Buffer.alloc(0),
          headers: headersToStrings(message.headers),
          receivedAt: Date.now(),
        });
      },
    });
    await withTimeout(joined, 20_000, `reader of ${topic} joining its group`);
    return c;
  }

  /** Values parsed as JSON (label records, events). */
  json<T = Record<string, unknown>>(): T[] {
    while (this.parsed.length < this.records.length) {
      const r = this.records[this.parsed.length]!;
      let v: unknown;
      try {
        v = JSON.parse(r.value.toString('utf8'));
      } catch {
        v = { '<not json>': r.value.toString('utf8').slice(0, 200) };
      }
      this.parsed.push(v);
    }
    return this.parsed.slice() as T[];
  }

  /** Disconnects and deletes the reader's consumer group. */
  async stop(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    if (!c) return;
    await c.disconnect().catch(() => undefined);
    await deleteGroups([this.group], this.client);
  }
}

/** A WebSocket client of /ws that keeps every JSON message it receives, in order. */
export class WsCollector {
  readonly messages: Record<string, unknown>[] = [];
  closed = false;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      try {
        this.messages.push(JSON.parse(String(data)) as Record<string, unknown>);
      } catch {
        this.messages.push({ type: '<not json>', raw: String(data) });
      }
    });
    ws.on('close', () => (this.closed = true));
    ws.on('error', () => undefined);
  }

  /** Connects to `wsUrl` (optionally `?streams=a,b`) and resolves once open. */
  static async connect(wsUrl: string, streams?: string[]): Promise<WsCollector> {
    const url = streams?.length ? `${wsUrl}?streams=${streams.map(encodeURIComponent).join(',')}` : wsUrl;
    const ws = new WebSocket(url);
    const c = new WsCollector(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      10_000,
      `WebSocket ${url} opening`,
    );
    return c;
  }

  labels(): LabelRecord[] {
    return this.messages.filter((m) => m.type === 'label') as unknown as LabelRecord[];
  }

  events(type?: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type !== 'label' && (type === undefined || m.type === type));
  }

  close(): void {
    if (!this.closed) this.ws.terminate();
    this.closed = true;
  }
}
