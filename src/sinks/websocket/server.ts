/**
 * WebSocket fan-out at /ws (docs/contracts.md). Subscriptions by `?streams=a,b` or a
 * `{"type":"subscribe","streams":[…]}` message; none means all streams. Dashboards also ask for
 * `stats`/`pipeline` messages (`stats: true`), thumbnails (`thumbs: true`) and may leave out
 * label messages (`labels: false`), by query or in the subscribe message. Sending never waits:
 * a client whose unsent bytes pass the limit is skipped, and disconnected when it stays behind
 * for `slowClientTimeoutMs` (or passes 4× the limit), so a slow client never slows the pipeline or
 * the others, and one that never reads holds neither memory nor a place for long.
 *
 * Access control: the HTTP endpoint checks the bearer token and hands over its Principal;
 * admission.ts applies the Origin allow-list and the client limit; the token's stream pattern
 * filters every message on send (a message of no stream, such as `pipeline`, goes only to
 * unrestricted tokens) and refuses subscriptions outside it.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Metrics } from '../../telemetry/metrics.js';
import type { AlertBatch, ClientSend, DashboardClients, EventBatch, LabelBatch, Sink } from '../../core/sink.js';
import type { WebsocketSinkConfig } from './config.js';
import { ANONYMOUS, BEARER_PROTOCOL_PREFIX, WS_PROTOCOL, rawHttpResponse, type Principal } from '../../telemetry/auth/auth.js';
import { admit, forbiddenStreams, RateLimit, type Admitted } from './admission.js';

export interface Client {
  ws: WebSocket;
  streams: Set<string> | undefined;
  /** Whose token; its stream pattern applies to every message. */
  principal: Principal;
  subscribes: RateLimit;
  /** performance.now() of the first message skipped in a row; 0 while it keeps up. */
  skippingSince: number;
  /** Label messages (default on). */
  labels: boolean;
  /** `stats` and `pipeline` messages (default off). */
  stats: boolean;
  /** `thumb` messages (default off). */
  thumbs: boolean;
}

const flag = (v: string | null, dflt: boolean): boolean => (v === null ? dflt : v === '1' || v === 'true');

/** Picks our subprotocol; the one carrying a token is never echoed back. */
function handleProtocols(offered: Set<string>): string | false {
  if (offered.has(WS_PROTOCOL)) return WS_PROTOCOL;
  for (const p of offered) if (!p.startsWith(BEARER_PROTOCOL_PREFIX)) return p;
  return false;
}

export class WebSocketSink implements Sink, DashboardClients {
  readonly name = 'websocket';
  /** Its clients are the dashboard's. */
  readonly dashboard: DashboardClients = this;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  /** Upgrades admitted but not yet open (they count towards maxClients). */
  private opening = 0;
  private thumbClients = 0;
  private readonly bufferedTimer: NodeJS.Timeout;
  /** Told when a client starts wanting stats (a dashboard connected): it sends the current state. */
  onStatsClient: ((send: ClientSend) => void) | undefined;

  constructor(private readonly config: WebsocketSinkConfig, private readonly metrics: Metrics) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.maxMessageBytes, handleProtocols });
    // What slow clients hold in this process, sampled off the send path; and a client that stays
    // behind is cut off even when nothing more is sent to it (it would keep its place otherwise).
    this.bufferedTimer = setInterval(() => {
      let bytes = 0;
      const now = performance.now();
      for (const c of this.clients) {
        const buffered = c.ws.bufferedAmount;
        bytes += buffered;
        if (buffered <= this.config.maxBufferedBytes) continue;
        if (c.skippingSince === 0) c.skippingSince = now;
        else if (now - c.skippingSince > this.config.slowClientTimeoutMs) this.cutOff(c);
      }
      metrics.wsBufferedBytes.set(bytes);
    }, 500);
    this.bufferedTimer.unref();
  }

  /** An upgrade request for this sink's path, its token already checked by the HTTP endpoint. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, principal: Principal = ANONYMOUS): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const a = admit(req, url, this.config, principal, this.clients.size + this.opening);
    if ('reason' in a) {
      this.metrics.wsRejected.inc({ reason: a.reason });
      socket.end(rawHttpResponse(a.status, a.reason, a.message));
      return;
    }
    // Counted from here, so a burst of handshakes cannot pass maxClients; a handshake ws
    // refuses (bad headers) never calls back, and gives its place back when its socket closes.
    let pending = true;
    const release = () => {
      if (pending) this.opening--;
      pending = false;
    };
    this.opening++;
    socket.once('close', release);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      release();
      socket.off('close', release);
      this.onConnection(ws, a, url.searchParams);
    });
  }

  private onConnection(ws: WebSocket, a: Admitted, p: URLSearchParams): void {
    const client: Client = {
      ws,
      streams: a.streams,
      principal: a.principal,
      subscribes: new RateLimit(this.config.subscribeRatePerSec, this.config.subscribeBurst),
      skippingSince: 0,
      labels: flag(p.get('labels'), true),
      stats: flag(p.get('stats'), false),
      thumbs: flag(p.get('thumbs'), false),
    };
    this.clients.add(client);
    if (client.thumbs) this.thumbClients++;
    this.metrics.wsClients.set(this.clients.size);
    if (client.stats) this.onStatsClient?.(this.senderFor(client));
    ws.on('message', (data) => this.onMessage(client, data));
    ws.on('close', () => {
      if (this.clients.delete(client) && client.thumbs) this.thumbClients--;
      this.metrics.wsClients.set(this.clients.size);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.metrics.wsRejected.inc({ reason: 'too-large' });
      ws.terminate();
    });
  }

  private onMessage(client: Client, data: unknown): void {
    const ws = client.ws;
    if (!client.subscribes.take()) {
      this.metrics.wsRejected.inc({ reason: 'rate-limited' });
      if (client.subscribes.refusedInARow >= this.config.subscribeBurst) ws.close(1008, 'subscribe rate limit');
      else ws.send(JSON.stringify({ type: 'error', error: 'rate-limited', message: `at most ${this.config.subscribeRatePerSec} subscribe messages a second` }));
      return;
    }
    let msg: { type?: string; streams?: unknown; labels?: unknown; stats?: unknown; thumbs?: unknown };
    try {
      msg = JSON.parse(String(data)) as typeof msg;
    } catch {
      ws.send(JSON.stringify({ type: 'error', error: 'messages must be JSON, e.g. {"type":"subscribe","streams":["cam-1"]}' }));
      return;
    }
    if (msg.type !== 'subscribe') return;
    if (Array.isArray(msg.streams)) {
      const wanted = msg.streams.map(String);
      const denied = forbiddenStreams(client.principal, wanted);
      if (denied.length) {
        this.metrics.wsRejected.inc({ reason: 'forbidden' });
        ws.send(JSON.stringify({ type: 'error', error: 'forbidden', streams: denied, message: 'this token may not see these streams; the subscription is unchanged' }));
        return;
      }
      client.streams = wanted.length ? new Set(wanted) : undefined;
    }
    if (typeof msg.labels === 'boolean') client.labels = msg.labels;
    const wantedStats = client.stats;
    if (typeof msg.stats === 'boolean') client.stats = msg.stats;
    if (typeof msg.thumbs === 'boolean' && msg.thumbs !== client.thumbs) {
      client.thumbs = msg.thumbs;
      this.thumbClients += msg.thumbs ? 1 : -1;
    }
    ws.send(JSON.stringify({ type: 'subscribed', streams: client.streams ? [...client.streams] : 'all', labels: client.labels, stats: client.stats, thumbs: client.thumbs }));
    if (client.stats && !wantedStats) this.onStatsClient?.(this.senderFor(client));
  }

  /** May the client get a message of this stream (undefined: of no stream)? */
  private sees(c: Client, stream: string | undefined): boolean {
    if (stream === undefined) return c.principal.streams === undefined;
    return (!c.streams || c.streams.has(stream)) && c.principal.allows(stream);
  }

  private senderFor(c: Client): ClientSend {
    return (stream, text) => {
      if (stream === null || this.sees(c, stream)) this.sendTo(c, text);
    };
  }

  /** Sends to the clients that may see the stream and pass `want`. */
  private broadcast(stream: string | undefined, text: string, want?: (c: Client) => boolean): void {
    for (const c of this.clients) {
      if (!this.sees(c, stream)) continue;
      if (want && !want(c)) continue;
      this.sendTo(c, text);
    }
  }

  private sendTo(c: Client, text: string): void {
    if (c.ws.readyState !== 1) return;
    const buffered = c.ws.bufferedAmount;
    if (buffered > this.config.maxBufferedBytes) {
      this.metrics.wsSkipped.inc();
      // Skipping alone keeps its buffer just over the limit for ever (and its place taken):
      // one that stays behind is cut off.
      const now = performance.now();
      if (c.skippingSince === 0) c.skippingSince = now;
      else if (now - c.skippingSince > this.config.slowClientTimeoutMs || buffered > 4 * this.config.maxBufferedBytes) this.cutOff(c);
      return;
    }
    c.skippingSince = 0;
    c.ws.send(text);
  }

  private cutOff(c: Client): void {
    if (c.ws.readyState > 1) return; // already closing: counted once
    this.metrics.wsRejected.inc({ reason: 'slow' });
    c.ws.terminate();
  }

  /** Some client wants stats (a dashboard is open). */
  get hasStatsClients(): boolean {
    for (const c of this.clients) if (c.stats) return true;
    return false;
  }

  /** Some client wants thumbnails of this stream (cheap when none wants any: one comparison). */
  wantsThumb(stream: string): boolean {
    if (this.thumbClients === 0) return false;
    for (const c of this.clients) if (c.thumbs && this.sees(c, stream)) return true;
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
    clearInterval(this.bufferedTimer);
    for (const c of this.clients) c.ws.close(1001, 'shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const isStats = (c: Client): boolean => c.stats;
const isThumbs = (c: Client): boolean => c.thumbs;
const wantsLabels = (c: Client): boolean => c.labels;
