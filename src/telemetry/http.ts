/**
 * The processor's HTTP listener. /metrics, /healthz and /readyz are its own routes; components
 * add theirs (the WebSocket sink its upgrade path) while the topology is built, before it listens.
 * With bearer tokens configured (src/telemetry/auth), every request and every upgrade passes the
 * token check before its handler, so a path a component adds is protected by default; an
 * upgrade handler is told whose token it was (what it may see).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { FramewireError } from '../core/errors.js';
import type { Metrics } from './metrics.js';
import { ANONYMOUS, isDenial, rawHttpResponse, type HttpAuth, type Principal } from './auth/auth.js';

export interface Readiness {
  /** Undefined when ready, else why not. */
  notReadyReason(): Promise<string | undefined>;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void;
/** `principal`: whose token the upgrade carried (ANONYMOUS without access control). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, principal: Principal) => void;

export class HttpEndpoint {
  private readonly routes = new Map<string, RouteHandler>();
  /** Paths served without a token: files that carry no data (the dashboard's script and style). */
  private readonly open = new Set<string>();
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private server: http.Server | undefined;

  constructor(
    readonly listen: string,
    /** Access control; undefined: open. */
    readonly auth?: HttpAuth,
    private readonly metrics?: Metrics,
  ) {}

  /**
   * Serves `path` (exact match, any method). With access control, it needs a token unless
   * `public` (for static files with no data in them: a browser fetches them without the token
   * the page URL carried).
   */
  route(path: string, handler: RouteHandler, opts: { public?: boolean } = {}): void {
    if (this.routes.has(path)) throw new FramewireError('TOPOLOGY_INVALID', 'config', `two components serve HTTP path ${path}`);
    this.routes.set(path, handler);
    if (opts.public) this.open.add(path);
  }

  /** Accepts WebSocket upgrades on `path`. */
  upgrade(path: string, handler: UpgradeHandler): void {
    if (this.upgrades.has(path)) throw new FramewireError('TOPOLOGY_INVALID', 'config', `two components accept WebSocket upgrades on ${path}`);
    this.upgrades.set(path, handler);
  }

  /** Binds the listener; a taken port is a start-up failure, not something to run without. */
  async start(): Promise<void> {
    const idx = this.listen.lastIndexOf(':');
    const host = this.listen.slice(0, idx);
    const port = Number(this.listen.slice(idx + 1));
    const server = http.createServer((req, res) => {
      const path = pathOf(req);
      if (this.auth && !this.open.has(path) && this.denied(req, res)) return;
      const handler = this.routes.get(path);
      if (handler) return handler(req, res);
      res.writeHead(404);
      res.end();
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const handler = this.upgrades.get(pathOf(req));
      if (!handler) return void socket.destroy();
      if (!this.auth) return handler(req, socket, head, ANONYMOUS);
      const who = this.auth.authenticateUpgrade(req, new URL(req.url ?? '/', 'http://x'));
      if (!isDenial(who)) return handler(req, socket, head, who);
      this.metrics?.wsRejected.inc({ reason: who.reason });
      socket.end(rawHttpResponse(who.status, who.reason, who.message));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new FramewireError('HTTP_LISTEN_FAILED', 'config', `cannot listen on ${this.listen} (http.listen): ${err.message}`, { cause: err })),
      );
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    this.server = server;
  }

  private denied(req: IncomingMessage, res: ServerResponse): boolean {
    const denial = this.auth!.checkRequest(req, new URL(req.url ?? '/', 'http://x'));
    if (!denial) return false;
    this.metrics?.httpRejected.inc({ reason: denial.reason });
    res.writeHead(denial.status, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="framewire"' });
    res.end(JSON.stringify({ error: denial.reason, message: denial.message }));
    return true;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** /metrics (Prometheus text), /healthz (the process is alive), /readyz (it can do its job). */
export function addTelemetryRoutes(endpoint: HttpEndpoint, metrics: Metrics, readiness: Readiness): void {
  endpoint.route('/metrics', (_req, res) => {
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      },
      (err: Error) => {
        res.writeHead(500);
        res.end(err.message);
      },
    );
  });
  endpoint.route('/healthz', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  });
  endpoint.route('/readyz', (_req, res) => {
    void readiness.notReadyReason().then((reason) => {
      res.writeHead(reason ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reason ? { status: 'not ready', reason } : { status: 'ready' }));
    });
  });
}
