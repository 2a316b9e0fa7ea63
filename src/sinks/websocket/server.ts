/**
 * WebSocket fan-out at /ws (docs/contracts.md). Subscriptions by `?streams=a,b` or a
 * `{"type":"subscribe","streams":[…]}` message; none means all streams. Sending never waits:
 * a client whose unsent bytes pass the limit is skipped, past 4× it is disconnected, so a slow
 * client never slows the pipeline or the others.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Metrics } from '../../telemetry/metrics.js';
import type { EventBatch, LabelBatch, Sink } from '../types.js';
import type { WebsocketSinkConfig } from './config.js';

interface Client {
  ws: WebSocket;
  streams: Set<string> | undefined;
}

export class WebSocketSink implements Sink {
  readonly name = 'websocket';
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly clients = new Set<Client>();

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
    const client: Client = { ws, streams: q ? new Set(q.split(',').filter(Boolean)) : undefined };
    this.clients.add(client);
    this.metrics.wsClients.set(this.clients.size);
    ws.on('message', (data) => {
      try {
        const msg = JSON.parse(String(data)) as { type?: string; streams?: unknown };
        if (msg.type === 'subscribe' && Array.isArray(msg.streams)) {
          client.streams = msg.streams.length ? new Set(msg.streams.map(String)) : undefined;
          ws.send(JSON.stringify({ type: 'subscribed', streams: client.streams ? [...client.streams] : 'all' }));
        }
      } catch {
        ws.send(JSON.stringify({ type: 'error', error: 'messages must be JSON, e.g. {"type":"subscribe","streams":["cam-1"]}' }));
      }
    });
    ws.on('close', () => {
      this.clients.delete(client);
      this.metrics.wsClients.set(this.clients.size);
    });
    ws.on('error', () => ws.terminate());
  }

  private broadcast(stream: string, text: string): void {
    for (const c of this.clients) {
      if (c.streams && !c.streams.has(stream)) continue;
      if (c.ws.readyState !== 1) continue;
      const buffered = c.ws.bufferedAmount;
      if (buffered > this.config.maxBufferedBytes) {
        this.metrics.wsSkipped.inc();
        if (buffered > 4 * this.config.maxBufferedBytes) c.ws.terminate();
        continue;
      }
      c.ws.send(text);
    }
  }

  async publishLabels(batch: LabelBatch): Promise<void> {
    this.publish(batch);
  }

  async publishEvents(batch: EventBatch): Promise<void> {
    this.publish(batch);
  }

  /** The batch's shared JSON text, serialised only when someone is listening. */
  private publish(batch: LabelBatch | EventBatch): void {
    if (this.clients.size === 0) return;
    const json = batch.json;
    for (let i = 0; i < json.length; i++) this.broadcast(batch.records[i]!.stream, json[i]!);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.ws.close(1001, 'shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
