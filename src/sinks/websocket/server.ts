/**
 * WebSocket fan-out at /ws (docs/contracts.md). Subscriptions by `?streams=a,b` or a
 * `{"type":"subscribe","streams":[…]}` message; none means all streams. Dashboards also ask for
 * `stats`/`pipeline` messages (`stats: true`), thumbnails (`thumbs: true`) and may leave out
 * label messages (`labels: false`), by query or in the subscribe message. Sending never waits:
 * a client whose unsent bytes pass the limit is skipped, past 4× it is disconnected, so a slow
 * client never slows the pipeline or the others.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Metrics } from '../../telemetry/metrics.js';
import type { AlertBatch, EventBatch, LabelBatch, Sink } from '../types.js';
import type { WebsocketSinkConfig } from './config.js';

export interface Client {
  ws: WebSocket;
  streams: Set<string> | undefined;
  /** Label messages (default on). */
  labels: boolean;
  /** `stats` and `pipeline` messages (default off). */
  stats: boolean;
  /** `thumb` messages (default off). */
  thumbs: boolean;
}

const flag = (v: string | null, dflt: boolean): boolean => (v === null ? dflt : v === '1' || v === 'true');

export class WebSocketSink implements Sink {
  readonly name = 'websocket';
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly clients = new Set<Client>();
  private thumbClients = 0;
  /** Told when a client starts wanting stats (a dashboard connected): it sends the current state. */
  onStatsClient: ((send: (text: string) => void) => void) | undefined;

  constructor(private readonly config: WebsocketSinkConfig, private readonly metrics: Metrics) {
    this.wss.on('connection', (ws: WebSocket, req: IncomingMessage) => this.onConnection(ws, req));
  }

  /** An upgrade request for this sink's path (routed here by the HTTP endpoint). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams.get('streams');
    const p = url.searchParams;
    const client: Client = { ws, streams: q ? new Set(q.split(',').filter(Boolean)) : undefined, labels: flag(p.get('labels'), true), stats: flag(p.get('stats'), false), thumbs: flag(p.get('thumbs'), false) };
    this.clients.add(client);
    if (client.thumbs) this.thumbClients++;
    this.metrics.wsClients.set(this.clients.size);
    if (client.stats) this.onStatsClient?.((text) => this.sendTo(client, text));
    ws.on('message', (data) => {
      try {
        const msg = JSON.parse(String(data)) as { type?: string; streams?: unknown; labels?: unknown; stats?: unknown; thumbs?: unknown };
        if (msg.type === 'subscribe') {
          if (Array.isArray(msg.streams)) client.streams = msg.streams.length ? new Set(msg.streams.map(String)) : undefined;
          if (typeof msg.labels === 'boolean') client.labels = msg.labels;
          const wantedStats = client.stats;
          if (typeof msg.stats === 'boolean') client.stats = msg.stats;
          if (typeof msg.thumbs === 'boolean' && msg.thumbs !== client.thumbs) {
            client.thumbs = msg.thumbs;
            this.thumbClients += msg.thumbs ? 1 : -1;
          }
          ws.send(JSON.stringify({ type: 'subscribed', streams: client.streams ? [...client.streams] : 'all', labels: client.labels, stats: client.stats, thumbs: client.thumbs }));
          if (client.stats && !wantedStats) this.onStatsClient?.((text) => this.sendTo(client, text));
        }
      } catch {
        ws.send(JSON.stringify({ type: 'error', error: 'messages must be JSON, e.g. {"type":"subscribe","streams":["cam-1"]}' }));
      }
    });
    ws.on('close', () => {
      if (this.clients.delete(client) && client.thumbs) this.thumbClients--;
      this.metrics.wsClients.set(this.clients.size);
    });
    ws.on('error', () => ws.terminate());
  }

  /** Sends to clients subscribed to the stream (undefined: to all) that pass `want`. */
  private broadcast(stream: string | undefined, text: string, want?: (c: Client) => boolean): void {
    for (const c of this.clients) {
      if (stream !== undefined && c.streams && !c.streams.has(stream)) continue;
      if (want && !want(c)) continue;
      this.sendTo(c, text);
    }
  }

  private sendTo(c: Client, text: string): void {
    if (c.ws.readyState !== 1) return;
    const buffered = c.ws.bufferedAmount;
    if (buffered > this.config.maxBufferedBytes) {
      this.metrics.wsSkipped.inc();
      if (buffered > 4 * this.config.maxBufferedBytes) c.ws.terminate();
      return;
    }
    c.ws.send(text);
  }

  /** Some client wants stats (a dashboard is open). */
  get hasStatsClients(): boolean {
    for (const c of this.clients) if (c.stats) return true;
    return false;
  }

  /** Some client wants thumbnails of this stream (cheap when none wants any: one comparison). */
  wantsThumb(stream: string): boolean {
    if (this.thumbClients === 0) return false;
    for (const c of this.clients) if (c.thumbs && (!c.streams || c.streams.has(stream))) return true;
    return false;
  }

  /** A `stats` message of a stream, or (stream undefined) a `pipeline` message. */
  sendStats(stream: string | undefined, text: string): void {
    this.broadcast(stream, text, isStats);
  }

  sendThumb(stream: string, text: string): void {
    this.broadcast(stream, text, isThumbs);
  }

  async publishLabels(batch: LabelBatch): Promise<void> {
    if (this.clients.size === 0) return;
    for (const c of this.clients) if (c.labels) return this.publish(batch, wantsLabels);
  }

  async publishEvents(batch: EventBatch): Promise<void> {
    this.publish(batch);
  }

  async publishAlerts(batch: AlertBatch): Promise<void> {
    this.publish(batch);
  }

  /** The batch's shared JSON text, serialised only when someone is listening. */
  private publish(batch: LabelBatch | EventBatch | AlertBatch, want?: (c: Client) => boolean): void {
    if (this.clients.size === 0) return;
    const json = batch.json;
    for (let i = 0; i < json.length; i++) this.broadcast(batch.records[i]!.stream, json[i]!, want);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.ws.close(1001, 'shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const isStats = (c: Client): boolean => c.stats;
const isThumbs = (c: Client): boolean => c.thumbs;
const wantsLabels = (c: Client): boolean => c.labels;
